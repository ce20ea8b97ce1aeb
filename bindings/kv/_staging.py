"""A value on its way to its owning object in segments: :class:`Upload`.

A value longer than one RPC message travels as segments staged in the owning object
(``KVStore.stage``), then one ``put`` joins them with the last segment. An upload whose put
never happens (its source raised, a limit refused it midway, the put itself failed, the caller
was cancelled) discards what it staged at once, so the segments do not count against the
namespace's storage until the hourly sweep (which remains for a process that died midway).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import anyio

from raydo.actors import Stub
from raydo.storage.limits import Limits

log = logging.getLogger("raydo.kv")

#: How long a failed put waits for its staged segments to be discarded (the sweep is the
#: backstop when the owning object does not answer in time).
DISCARD_SECONDS = 10.0


class Upload:
    """The segments of one value staged under a fresh id. :meth:`discard` when the put that
    would finish it does not happen."""

    def __init__(self, owner: Callable[[], Stub], segment: int) -> None:
        self.id = secrets.token_hex(16)
        self._owner = owner
        self._segment = segment
        self.staged = 0
        self._sent = False

    @property
    def used(self) -> bool:
        """Whether any segment was sent (or is on its way) to the owning object."""
        return self._sent

    async def stage_bytes(self, data: bytes) -> bytes:
        """Stage every segment of ``data`` but the last, and return the last."""
        segment = self._segment
        if len(data) <= segment:
            return data
        last = (len(data) - 1) // segment * segment
        for start in range(0, last, segment):
            await self._stage(data[start : start + segment])
        return data[last:]

    async def stage_stream(
        self, value: AsyncIterable[Any], limits: Limits, what: str, keep: int
    ) -> tuple[bytes, bytes | None]:
        """Stage segments as the pieces arrive, checking the size as it grows: ``(last
        segment, whole value)``, the whole kept only while it is at most ``keep`` bytes."""
        segment = self._segment
        buffer = bytearray()
        kept: bytearray | None = bytearray()
        async for piece in _pieces(value):
            buffer += piece
            limits.check("kv_value_bytes", self.staged + len(buffer), what)
            while len(buffer) > segment:
                chunk = bytes(buffer[:segment])
                del buffer[:segment]
                await self._stage(chunk)
                if kept is not None:
                    kept += chunk
                    kept = kept if len(kept) <= keep else None
        last = bytes(buffer)
        return last, None if kept is None else bytes(kept) + last

    async def _stage(self, chunk: bytes) -> None:
        self._sent = True  # before the call: a call cut off midway may still have staged
        await self._owner().stage(self.id, chunk)
        self.staged += len(chunk)

    async def discard(self) -> None:
        """Drop what was staged, if anything, even while the caller is being cancelled; a
        failure is logged, not raised (the error that ended the put is the one to tell)."""
        if not self._sent:
            return
        with anyio.move_on_after(DISCARD_SECONDS, shield=True):
            try:
                await self._owner().discard(self.id)
            except Exception as exc:  # noqa: BLE001 - the sweep drops them within the hour
                log.warning("cannot discard the staged segments of upload %s: %s", self.id, exc)


async def _pieces(value: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for piece in value:
        if not isinstance(piece, bytes | bytearray | memoryview):
            raise TypeError(f"a streamed value yields bytes, got {type(piece).__name__}")
        yield bytes(piece)
