import os

from raydo import DurableObject

# Read at import, as apps read their settings: the host must have it before it loads.
GREETING_AT_IMPORT = os.environ.get("APP_GREETING")


class Reader(DurableObject):
    """What an object sees of its environment: variables, and the app's secrets on env."""

    async def read(self) -> dict[str, object]:
        return {
            "greeting": os.environ.get("APP_GREETING"),
            "greeting_at_import": GREETING_AT_IMPORT,
            "secret": getattr(self.env, "APP_API_KEY", None),
        }
