"""``raydo status DIR --address ADDRESS``: the app's hosts on a running Ray cluster.

It joins the cluster as a driver (as ``raydo serve`` does), finds the app's hosts by their
actor names and asks each for its node, pid, code version, live objects and mailbox depth;
Ray's actor table gives the restarts. The app's code version is that of the folder DIR: a
host that loaded other files shows "older code". An embedded ``raydo dev`` has no cluster to
join, so it is not covered (its own inspector shows its hosts).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from .config import load_config
from .runtime import runtime_spec

CONNECT_CHECK_S = 5.0


class ClusterUnreachable(Exception):
    """Nothing answers at the cluster address given."""


def add_commands(commands: Any) -> None:
    """Add ``raydo status`` to the top-level subparsers."""
    status = commands.add_parser(
        "status", help="the app's code version and its hosts on a Ray cluster"
    )
    status.set_defaults(handler=run)
    status.add_argument("dir", nargs="?", default=".", help="the app's folder (holding raydo.toml)")
    status.add_argument(
        "--address",
        required=True,
        help="the Ray cluster ('auto' or host:port); raydo dev's embedded Ray is not covered",
    )
    status.add_argument("--json", action="store_true", help="print JSON")


def check_reachable(address: str) -> None:
    """Fail at once when a host:port address has nothing listening (Ray itself retries for
    a long while before giving up)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"--address takes 'auto' or host:port, not {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_CHECK_S):
            pass
    except OSError as exc:
        raise ClusterUnreachable(
            f"no Ray cluster answers at {address} ({exc.strerror or exc})"
        ) from None


def join_cluster(address: str, *, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join the Ray cluster at ``address`` as a driver (with ``runtime_env`` for the hosts it
    creates); False, with the reason on stderr, when nothing answers there or Ray refuses."""
    from raydo.actors.placement import join_ray

    try:
        check_reachable(address)
        join_ray(address, runtime_env=runtime_env)
    except ClusterUnreachable as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return False
    except Exception as exc:  # noqa: BLE001 - Ray's own errors (ConnectionError, auth...)
        print(f"raydo: error: cannot join the Ray cluster at {address}: {exc}", file=sys.stderr)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from raydo.actors.placement import app_code_version, host_status

    config = load_config(args.dir, dev_vars=False)
    spec = runtime_spec(config)
    if not join_cluster(args.address):
        return 1
    version = app_code_version(spec)
    hosts = host_status(spec)
    if not hosts:
        print(
            f"raydo: error: the app {config.name!r} has no hosts on the Ray cluster at"
            f" {args.address} (is `raydo serve` running it?)",
            file=sys.stderr,
        )
        return 1
    rows = [
        {
            **host.as_json(),
            "code": None
            if host.code_version is None
            else "current"
            if host.code_version == version
            else "older code",
        }
        for host in hosts
    ]
    if args.json:
        print(json.dumps({"app": config.name, "code_version": version, "hosts": rows}, indent=2))
        return 0
    print(f"app {config.name}  code version {version}  {len(rows)} host(s)")
    _table(rows)
    return 0


COLUMNS = [
    ("host", "host"),
    ("node", "node"),
    ("pid", "pid"),
    ("up", "up"),
    ("code", "code"),
    ("live_objects", "live objects"),
    ("mailbox_depth", "mailbox"),
    ("restarts", "restarts"),
]


def _cell(key: str, value: object) -> str:
    if value is None:
        return "-"
    if key == "node":
        return str(value)[:12]
    if key == "up":
        return "yes" if value else "no"
    return str(value)


def _table(rows: list[dict[str, Any]]) -> None:
    cells = [[_cell(key, row[key]) for key, _ in COLUMNS] for row in rows]
    heads = [head for _, head in COLUMNS]
    widths = [max(len(text) for text in column) for column in zip(heads, *cells, strict=True)]
    for line in [heads, *cells]:
        print(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        )
