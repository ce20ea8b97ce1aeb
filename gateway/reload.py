"""Hot reload for ``raydo dev``: the app's code swapped inside the running gateway.

:class:`ReloadingApp` stands in for the user's app inside the :class:`~.app.Gateway`. While
it serves it watches the app's folder (``watchfiles``: a ``.py`` file, ``raydo.toml`` or a
``.sql`` migration; never the storage folder). On a change, in order:

1. **Check** (:mod:`.reload_check`): a fresh process loads the config and imports the app and
   every object class. If that fails, the error is reported and the last good version keeps
   serving; the next change is checked again.
2. **Import** here: the app's modules are forgotten (:func:`actors.forget_app_modules`) and
   imported again. A change of the runtime spec (bindings, shards, storage, limits) cannot be
   swapped into running hosts: it is reported, and applies at the next start.
3. **Swap the app**: the old app's lifespan shuts down, the new one's starts (should that
   fail, the old app starts again and keeps serving), then requests reach the new app.
4. **Swap the classes**: every host takes its class again and deactivates its objects
   (``Placement.reload_code``); each is constructed from the new class on its next event,
   from its SQLite file. Ray and the hosts keep running; open WebSockets stay connected
   (their objects hibernate) and their next message reaches the new class.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from watchfiles import Change, DefaultFilter, awatch

from raydo.actors import forget_app_modules

from .app import Gateway, _install_error_handlers
from .config import AppConfig, ConfigError, load_config
from .reload_check import check_app
from .runtime import AppLoadError, check_classes, load_app, runtime_spec

log = logging.getLogger("raydo.reload")

Report = Callable[[str, bool], None]
"""Tells the developer what happened: ``(text, is_error)``."""

WATCH_STOP_S = 5.0


class ReloadState(Enum):
    """Where the reloader is; :meth:`to` is the only way it changes."""

    WAITING = "waiting"  # serving, watching for changes
    CHECKING = "checking"  # a change is being checked in a fresh process
    SWAPPING = "swapping"  # the new code replaces the old
    STOPPED = "stopped"  # the gateway shut down: no more reloads

    def to(self, target: ReloadState) -> ReloadState:
        if target not in _STEPS[self]:
            raise RuntimeError(f"a reload cannot go from {self.value} to {target.value}")
        return target


_STEPS: dict[ReloadState, frozenset[ReloadState]] = {
    ReloadState.WAITING: frozenset({ReloadState.CHECKING, ReloadState.STOPPED}),
    ReloadState.CHECKING: frozenset({ReloadState.WAITING, ReloadState.SWAPPING}),
    ReloadState.SWAPPING: frozenset({ReloadState.WAITING}),
    ReloadState.STOPPED: frozenset(),
}


class ReloadRefused(Exception):
    """The new code loads, but cannot be swapped in (the reason is the message)."""


#: raydo.toml, or wrangler's files (see :mod:`.wrangler_config`).
_CONFIG_FILES = ("raydo.toml", "wrangler.jsonc", "wrangler.json", "wrangler.toml")


class AppFiles(DefaultFilter):
    """The files whose change reloads the app: Python, ``raydo.toml``, SQL migrations; not
    what lives under the storage folder (objects' files, blobs)."""

    def __init__(self, config: AppConfig) -> None:
        super().__init__()
        self._storage = config.storage.resolve()
        self._storage_prefix = f"{self._storage}{os.sep}"

    def __call__(self, change: Change, path: str) -> bool:
        # Under load nearly every change is an object's SQLite file being written: a string
        # test turns those away before anything touches the filesystem (resolving each path
        # cost the gateway about a tenth of its CPU over 1,000 objects).
        if path.startswith(self._storage_prefix):
            return False
        if not super().__call__(change, path):
            return False
        file = Path(path)
        if file.resolve().is_relative_to(self._storage):
            return False
        return file.suffix in (".py", ".sql") or file.name in _CONFIG_FILES


class ReloadingApp:
    """The user's app, swapped for its new version when its files change (see the module)."""

    def __init__(self, gateway: Gateway, report: Report) -> None:
        self._gateway = gateway
        self._app: Any = gateway.app
        gateway.app = self
        self._report = report
        self.state = ReloadState.WAITING
        self.reloads = 0
        """How many reloads applied."""
        self._lifespan: _Lifespan | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _serve_lifespan(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()  # the gateway starts its placement on this message
        if message["type"] != "lifespan.startup":
            return
        self._lifespan = _Lifespan(self._app, scope)
        failure = await self._lifespan.startup()
        if failure is not None:
            await send({"type": "lifespan.startup.failed", "message": failure})
            return
        await send({"type": "lifespan.startup.complete"})
        self._watcher = asyncio.ensure_future(self._watch())
        message = await receive()
        await self._stop_watching()
        failure = await self._lifespan.shutdown()
        if failure is not None:
            log.error("the app's shutdown failed: %s", failure)
        await send({"type": "lifespan.shutdown.complete"})

    async def _stop_watching(self) -> None:
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            # A reload under way ends first (the check is bounded); the wait is too.
            done, _ = await asyncio.wait([watcher], timeout=WATCH_STOP_S)
            if not done:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        self.state = ReloadState.STOPPED if self.state is ReloadState.WAITING else self.state

    async def _watch(self) -> None:
        config = self._gateway.config
        root = config.root.resolve()
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we say what changed
        async for changes in awatch(
            root, watch_filter=AppFiles(config), stop_event=self._stop, debounce=400
        ):
            if self._stop.is_set():
                return
            changed = sorted({_shown(Path(path), root) for _, path in changes})
            try:
                await self.reload(changed)
            except Exception as exc:  # the watcher must outlive one bad reload
                log.exception("reload failed")
                self._report(f"reload failed: {exc!r}", True)

    async def reload(self, changed: Sequence[str] = ()) -> bool:
        """Check the app's code and, if it loads, swap it in (see the module); True when the
        new code serves. Every outcome is reported."""
        what = ", ".join(changed) if changed else "the app"
        live = await self._check_then_swap(
            self._gateway.config.root,
            self._swap,
            unloadable=f"{what} changed, but the app does not load; the last good version"
            " keeps serving",
            refused=f"{what} changed, but the last good version keeps serving",
        )
        if live is None:
            return False
        self._report(f"reloaded ({what} changed; {live} live object(s) deactivated)", False)
        return True

    async def _check_then_swap(
        self, folder: Path, swap: Callable[[], Awaitable[int]], *, unloadable: str, refused: str
    ) -> int | None:
        """Check the code in ``folder`` in a fresh process, then ``swap`` it in: the live
        objects deactivated, or None when it did not load or was refused (reported after
        ``unloadable`` or ``refused``; the code serving keeps serving)."""
        self.state = self.state.to(ReloadState.CHECKING)
        error = await check_app(folder)
        if error is not None:
            self.state = self.state.to(ReloadState.WAITING)
            self._report(f"{unloadable}:\n{error}", True)
            return None
        self.state = self.state.to(ReloadState.SWAPPING)
        try:
            live = await swap()
        except (ReloadRefused, ConfigError, AppLoadError) as exc:
            self._report(f"{refused}: {exc}", True)
            return None
        finally:
            self.state = self.state.to(ReloadState.WAITING)
        self.reloads += 1
        return live

    async def _swap(self) -> int:
        gateway = self._gateway
        config = load_config(gateway.config.root)
        check_same_runtime(gateway, config, restart="restart raydo dev to apply it")
        forget_app_modules(str(config.root))
        return await self._swap_app(config, tell_hosts=True)

    async def _swap_app(self, config: AppConfig, *, tell_hosts: bool) -> int:
        """Steps 3 and 4 of the module (4 only when ``tell_hosts``) for the app ``config``
        names, whose modules are to be imported afresh; the live objects deactivated."""
        gateway = self._gateway
        app = load_app(config)
        check_classes(config)
        _install_error_handlers(app)
        old = self._lifespan
        assert old is not None
        failure = await old.shutdown()
        if failure is not None:
            log.error("the old app's shutdown failed: %s", failure)
        new = _Lifespan(app, old.scope)
        failure = await new.startup()
        if failure is not None:
            self._lifespan = _Lifespan(self._app, old.scope)  # the old app serves on
            await self._lifespan.startup()
            raise ReloadRefused(f"the new app's startup failed: {failure}")
        self._lifespan, self._app = new, app
        if not tell_hosts:
            return 0
        gateway.config = config
        placement = gateway.placement
        return 0 if placement is None else await placement.reload_code()


def check_same_runtime(gateway: Gateway, config: AppConfig, *, restart: str) -> None:
    """Raise :class:`ReloadRefused` when ``config`` asks for other bindings or runtime
    settings than the gateway runs with (running hosts cannot take them)."""
    # The spec's extra settings come from the command line and its environment from the
    # process (hosts of dev inherit it), not from the config; the folder may be another
    # copy of the app's (a deploy's).
    made = runtime_spec(config)
    running = gateway.spec
    kept = dataclasses.replace(
        made,
        extra=running.extra,
        environ=running.environ,
        app_root=running.app_root,
        storage_root=running.storage_root,
    )
    if kept != running and _rebased(kept, config.root, gateway.config.root) != repr(running):
        raise ReloadRefused(
            "raydo.toml changed the bindings or the runtime's settings, which running"
            f" hosts cannot take: {restart}"
        )


def _rebased(spec: object, folder: Path, onto: Path) -> str:
    """``spec`` as it reads with the paths under ``folder`` (another copy of the app's)
    written as under ``onto``: equal settings of two copies compare equal."""
    text = repr(spec)
    return text if folder == onto else text.replace(str(folder), str(onto))


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class _Lifespan:
    """One app's ASGI lifespan, driven from here: :meth:`startup`, later :meth:`shutdown`.

    Each app gets the same ``state`` dict (emptied between apps), which uvicorn copies into
    every request's scope.
    """

    def __init__(self, app: Any, scope: Any) -> None:
        self._app = app
        self.scope = scope
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> str | None:
        """Start the app; None, or why it failed."""
        state = self.scope.get("state")
        if isinstance(state, dict):
            state.clear()
        self._task = asyncio.ensure_future(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        return await self._answer("lifespan.startup")

    async def shutdown(self) -> str | None:
        """Stop the app and wait for its lifespan to end; None, or why it failed."""
        task = self._task
        if task is None or task.done():
            return None
        await self._inbox.put({"type": "lifespan.shutdown"})
        failure = await self._answer("lifespan.shutdown")
        done, _ = await asyncio.wait([task], timeout=WATCH_STOP_S)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return failure

    async def _run(self) -> None:
        try:
            await self._app(self.scope, self._inbox.get, self._outbox.put)
        except Exception as exc:  # noqa: BLE001 - told to whoever waits for an answer
            await self._outbox.put({"type": "raydo.failed", "message": repr(exc)})
        else:
            await self._outbox.put({"type": "raydo.ended"})

    async def _answer(self, phase: str) -> str | None:
        message = await self._outbox.get()
        kind = message["type"]
        if kind == f"{phase}.failed" or kind == "raydo.failed":
            return str(message.get("message") or "failed")
        return None  # complete, or an app that ignores lifespan
