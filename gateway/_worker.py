"""The ASGI app factory uvicorn workers import for ``raydo serve`` (settings come from env vars)."""

from __future__ import annotations

import logging
import os
import sys

from raydo.actors.placement import join_ray, ray_placement, ray_runtime

from . import cli_observe, inspector
from .app import Gateway
from .config import load_config
from .deploy_follow import FollowingApp

APP_DIR = "RAYDO_APP_DIR"
RAY_ADDRESS = "RAYDO_RAY_ADDRESS"
HOSTS_BIND = "RAYDO_HOSTS_BIND"


def _report(text: str, error: bool) -> None:
    """A line on stderr as ``raydo serve`` writes its own, or a record when logs are JSON."""
    if os.environ.get(cli_observe.LOG_FORMAT) == "json":
        logging.getLogger("raydo.deploy").log(logging.ERROR if error else logging.INFO, text)
    else:
        print(f"raydo: {'error: ' if error else ''}{text}", file=sys.stderr, flush=True)


def create_app() -> Gateway:
    """A gateway joined to the Ray cluster named in the environment. When the cluster is lost
    it lets go of the storage folder, and claims it again once it has rejoined."""
    config = load_config(os.environ[APP_DIR], dev_vars=False)
    address = os.environ[RAY_ADDRESS]
    bind = os.environ.get(HOSTS_BIND, "127.0.0.1")
    gateway: Gateway | None = None

    def cluster_lost(reason: str) -> None:
        # The runtime that held the folder may be gone: the cluster rejoined claims it anew.
        assert gateway is not None
        gateway.release_folder()

    def rejoined() -> None:
        assert gateway is not None
        gateway.claim_folder()

    gateway = Gateway(
        config,
        lambda spec: ray_placement(
            spec, bind=bind, on_cluster_lost=cluster_lost, on_rejoined=rejoined
        ),
        on_start=lambda: join_ray(address),
        runtime=ray_runtime,  # every gateway worker and host of the cluster shares the folder
        inspector=inspector.settings_from_environment(),
    )
    FollowingApp(gateway, _report)
    return cli_observe.attach(
        gateway,
        cli_observe.from_environment(),
        access_log=cli_observe.access_log_from_environment(),
    )
