"""``raydo deploy DIR --address ADDRESS``: ship the app's code to a Ray cluster and start or
update its hosts on it.

The app's folder travels as Ray's ``runtime_env`` ``working_dir`` (without its storage folder),
and its Python dependencies as Ray's ``pip`` (from ``requirements.txt`` or ``pyproject.toml``),
so hosts on nodes that have no copy of the folder import the same code from Ray's copy. Hosts
already on this code are kept; hosts on other code are drained and restarted on it, one at a
time (their objects come back from their files). Gateways are ``raydo serve``'s: they find
the deployed hosts by name and, once the deploy records its version, swap in its ``main``
(:mod:`.deploy_follow`).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from .cli_status import join_cluster
from .config import load_config
from .runtime import AppLoadError, runtime_spec


def add_commands(commands: Any) -> None:
    """Add ``raydo deploy`` to the top-level subparsers."""
    deploy = commands.add_parser(
        "deploy", help="ship the app's code to a Ray cluster and start or update its hosts"
    )
    deploy.set_defaults(handler=run)
    deploy.add_argument("dir", nargs="?", default=".", help="the app's folder (holding raydo.toml)")
    deploy.add_argument("--address", required=True, help="the Ray cluster ('auto' or host:port)")
    deploy.add_argument(
        "--hosts-bind",
        default="127.0.0.1",
        help="where hosts listen for gateways: 127.0.0.1 (one machine) or 'node' (the node's IP)",
    )


def run(args: argparse.Namespace) -> int:
    from raydo.actors.placement import (
        DependencyError,
        DeployError,
        app_code_version,
        app_package,
        deploy_hosts,
    )

    from .runtime import check_classes, load_app

    config = load_config(args.dir, dev_vars=False)
    if args.hosts_bind != "node":
        try:
            ipaddress.ip_address(args.hosts_bind)
        except ValueError:
            raise AppLoadError(
                f"--hosts-bind takes 127.0.0.1, 'node' or an IP address, not {args.hosts_bind!r}"
            ) from None
    spec = runtime_spec(config)
    load_app(config)  # mistakes fail here, once, before any host stops
    check_classes(config)
    try:
        package = app_package(spec)
    except DependencyError as exc:
        print(f"raydo: error: the app's dependencies: {exc}", file=sys.stderr)
        return 1
    wheels, lines = (
        len(package.get("py_modules", [])),
        len(package.get("pip", {}).get("packages", [])),
    )
    if wheels or lines:
        print(
            f"raydo: dependencies: {wheels} wheel(s) carried, {lines} line(s) for pip;"
            " each node installs them once"
        )
    if not join_cluster(args.address, runtime_env=package):
        return 1
    version = app_code_version(spec)
    print(f"raydo: deploying {config.name} (code version {version}) to {args.address}", flush=True)
    try:
        done = deploy_hosts(
            spec,
            package,
            bind=args.hosts_bind,
            on_host=lambda label, action: print(f"  {label}: {action}", flush=True),
        )
    except DeployError as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 1
    print(f"raydo: {len(done)} host(s) on code version {version}", flush=True)
    return 0
