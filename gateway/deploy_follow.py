"""Gateways of ``raydo serve`` follow ``raydo deploy``: the app's new code swapped in place.

A deploy restarts the app's hosts on the new code, then records its version on the cluster
(:func:`raydo.actors.placement.deployed_version`). :class:`FollowingApp` stands in for the
user's app inside each gateway of ``raydo serve`` (as :class:`~.reload.ReloadingApp` does in
dev) and, while it serves, in order:

1. **Looks** at the recorded version: at start, then each time the record is replaced
   (a new deploy; :func:`~raydo.actors.placement.await_deployment` returns at once) and at
   least every :data:`LOOK_S` seconds.
2. **Fetches** a version it does not run: the deployed files (the same Ray shipped to the
   hosts) are unpacked into a folder named by the app and the version, under the machine's
   temporary folder, written whole before it is used (a half-written one is never read).
3. **Checks** that copy in a fresh process, as dev's reload does: an app that does not load
   here is reported, and the code serving keeps serving.
4. **Swaps** the app's ``main`` for the deployed one (the old app's lifespan ends, the new
   one's starts; should that fail, the old app serves on). Bindings and runtime settings come
   from the gateway's own ``raydo.toml``: a deploy that changes them is reported and applies
   when the gateway restarts. The hosts are not touched (the deploy restarted them); open
   WebSockets stay connected.

What stays the gateway's own folder's: its configuration, its static assets, and the code of
dedicated hosts it makes on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from raydo.actors import forget_app_modules
from raydo.actors.placement import (
    DeployError,
    app_code_version,
    await_deployment,
    deployed_archive,
    deployed_files,
    deployed_version,
)

from .app import Gateway
from .config import load_config
from .reload import ReloadingApp, Report, check_same_runtime

log = logging.getLogger("raydo.deploy")

LOOK_S = 30.0
"""The longest a gateway goes without looking at the deployed version (a replaced record is
noticed at once; this covers a record replaced while the gateway's link to Ray was down)."""
ARCHIVE_ENTRIES_MAX = 100_000
_VERSION = re.compile(r"[0-9a-f]{8,64}")


class FollowingApp(ReloadingApp):
    """The user's app, swapped for the deployed version whenever ``raydo deploy`` records a
    new one (see the module)."""

    def __init__(self, gateway: Gateway, report: Report) -> None:
        super().__init__(gateway, report)
        self.code_root = gateway.config.root
        """The folder the serving app's code came from: the gateway's own, or a deploy's."""
        self.version: str | None = None
        """The deployed version the gateway serves; None while it serves its own folder."""

    async def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                await self.follow()
            except Exception as exc:  # the follower must outlive one bad deploy
                log.exception("following the deploy failed")
                self._report(f"following the deploy failed: {exc!r}", True)
                # Not again at once: a failure that repeats is said once a LOOK_S.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), LOOK_S)
                continue
            waiting = asyncio.ensure_future(await_deployment(self._gateway.spec, LOOK_S))
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in (waiting, stopping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def follow(self) -> bool:
        """Look at the deployed version and, when it is one this gateway does not serve,
        fetch, check and swap it in; True when a new version was swapped in."""
        spec = self._gateway.spec
        version = await deployed_version(spec)
        if version is None or version == self.version:
            return False
        if self.version is None and version == await asyncio.to_thread(app_code_version, spec):
            self.version = version  # the gateway's own folder holds the deployed code
            return False
        if not _VERSION.fullmatch(version):
            raise DeployError(f"the cluster's deployment record holds no version: {version!r}")
        archive = await deployed_archive(spec)
        if archive is None:
            return False  # replaced meanwhile: the next look finds the newer one
        folder = await asyncio.to_thread(unpack, archive, _deploys_folder(spec.app_name), version)
        self.version = version  # tried once: a failure is reported once, not at every look
        live = await self._check_then_swap(
            folder,
            lambda: self._swap_deployed(folder),
            unloadable=f"deploy {version} does not load in this gateway; the code serving"
            " keeps serving",
            refused=f"deploy {version}: the code serving keeps serving",
        )
        if live is None:
            return False
        self._report(f"serving deploy {version}", False)
        return True

    async def _swap_deployed(self, folder: Path) -> int:
        gateway = self._gateway
        deployed = load_config(folder, dev_vars=False)
        check_same_runtime(gateway, deployed, restart="restart raydo serve to apply it")
        forget_app_modules(str(self.code_root))
        live = await self._swap_app(deployed, tell_hosts=False)
        self.code_root = folder
        return live


def fetch_deployed(app_name: str) -> Path:
    """The folder of the app named ``app_name`` as last deployed to the cluster this process
    joined, unpacked on this machine (``raydo serve --deployed``). Raises
    :class:`DeployError` when the cluster holds no deploy of that name."""
    found = deployed_files(app_name)
    if found is None:
        raise DeployError(
            f"no app named {app_name!r} was deployed to this cluster"
            " (raydo deploy DIR --address ADDRESS deploys one)"
        )
    version, archive = found
    if not _VERSION.fullmatch(version):
        raise DeployError(f"the cluster's deployment record holds no version: {version!r}")
    return unpack(archive, _deploys_folder(app_name), version)


def _deploys_folder(app_name: str) -> Path:
    """Where this machine keeps the deploys its gateways unpacked: per user, per app (by a
    digest of its name: names never become paths)."""
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:16]
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"raydo-deploys-{user}" / digest


def unpack(archive: bytes, under: Path, version: str) -> Path:
    """Unpack a deployed folder's zip into ``under/version`` (kept when already there) and
    return that folder. Entries that would land outside it (absolute, ``..``), links and
    archives over :data:`ARCHIVE_ENTRIES_MAX` entries raise :class:`DeployError`."""
    target = under / version
    if target.is_dir():
        return target
    under.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=under))
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            entries = zipped.infolist()
            if len(entries) > ARCHIVE_ENTRIES_MAX:
                raise DeployError(f"the deployed folder has over {ARCHIVE_ENTRIES_MAX} files")
            for entry in entries:
                name = PurePosixPath(entry.filename)
                if name.is_absolute() or ".." in name.parts or "\\" in entry.filename:
                    raise DeployError(f"the deployed folder holds a path outside it: {name}")
                if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DeployError(f"the deployed folder holds a link: {name}")
                zipped.extract(entry, staging)
        try:
            staging.rename(target)
        except OSError:  # another gateway process on this machine unpacked it first
            if not target.is_dir():
                raise
    except zipfile.BadZipFile as exc:
        raise DeployError(f"the deployed folder's archive is damaged: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
