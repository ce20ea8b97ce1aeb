"""An object that logs and calls its peers, for the logging and tracing tests."""

import logging

from raydo import DurableObject

log = logging.getLogger(__name__)


class Noisy(DurableObject):
    async def speak(self, text: str) -> str:
        log.warning("said %s", text)
        return text

    async def relay(self, peer: str, text: str) -> str:
        """Ask another object to speak: a call inside this object's turn."""
        said: str = await self.env.NOISY.get_by_name(peer).speak(text)
        return said
