"""The ``raydo`` command.

``raydo dev [DIR] [--port 8787]``
    Start an embedded local Ray and serve the app in DIR on 127.0.0.1.
``raydo serve [DIR] --address ADDRESS [--host 127.0.0.1] [--port 8787] [--workers N]``
    Join the Ray cluster at ADDRESS and serve the app with N gateway processes.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from storage.limits import Limits

from .config import ConfigError, load_config
from .runtime import AppLoadError

DEFAULT_PORT = 8787


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0-65535")
    return port


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError("--workers takes 1 to 64")
    return count


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="raydo", description="Durable-Objects-style backends on Ray."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="serve an app on 127.0.0.1 with an embedded local Ray")
    dev.add_argument("dir", nargs="?", default=".", help="the app's folder (holding raydo.toml)")
    dev.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port on 127.0.0.1 (8787)")
    dev.add_argument(
        "--in-process", action="store_true", help="host objects in the gateway process, without Ray"
    )
    dev.add_argument("--access-log", action="store_true", help="log every request")
    dev.add_argument(
        "--ws-compression", action="store_true", help="offer permessage-deflate to WebSockets"
    )

    serve = commands.add_parser("serve", help="serve an app on a running Ray cluster")
    serve.add_argument("dir", nargs="?", default=".", help="the app's folder (holding raydo.toml)")
    serve.add_argument("--address", required=True, help="the Ray cluster ('auto' or host:port)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (8787)")
    serve.add_argument("--workers", type=_workers, default=1, help="gateway processes (1)")
    serve.add_argument(
        "--hosts-bind",
        default="127.0.0.1",
        help="where hosts listen for gateways: 127.0.0.1 (one machine) or 'node' (the node's IP)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--ws-compression", action="store_true", help="offer permessage-deflate to WebSockets"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "dev":
            return _dev(args)
        return _serve(args)
    except (ConfigError, AppLoadError) as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2


def _uvicorn_options(args: argparse.Namespace, host: str, limits: Limits) -> dict[str, object]:
    return {
        # permessage-deflate keeps zlib state per socket (tens of KiB even when idle).
        "ws_per_message_deflate": args.ws_compression,
        # Bigger client messages close the socket with 1009 before reaching anyone; with
        # compression the frame may be a little larger than the message it carries, and the
        # gateway checks the message itself.
        "ws_max_size": limits.websocket_message_bytes + (64 * 1024 if args.ws_compression else 0),
        "host": host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "log_level": "warning",
        "access_log": args.access_log,
        "timeout_graceful_shutdown": 5,
    }


def _dev(args: argparse.Namespace) -> int:
    import uvicorn

    from actors.placement import LocalPlacement, ray_placement, start_local_ray

    from .app import Gateway

    config = load_config(args.dir)
    if args.in_process:
        gateway = Gateway(config, LocalPlacement)
    else:
        gateway = Gateway(config, ray_placement, on_start=start_local_ray)
    mode = "in-process hosts" if args.in_process else "embedded local Ray"
    print(f"raydo: serving {config.name} on http://127.0.0.1:{args.port} ({mode})", flush=True)
    uvicorn.run(gateway, **_uvicorn_options(args, "127.0.0.1", config.limits))  # type: ignore[arg-type]
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from . import _worker

    config = load_config(args.dir)
    if args.hosts_bind != "node":
        try:
            ipaddress.ip_address(args.hosts_bind)
        except ValueError:
            raise AppLoadError(
                f"--hosts-bind takes 127.0.0.1, 'node' or an IP address, not {args.hosts_bind!r}"
            ) from None
    os.environ[_worker.APP_DIR] = str(config.root)
    os.environ[_worker.RAY_ADDRESS] = args.address
    os.environ[_worker.HOSTS_BIND] = args.hosts_bind
    # Check the app imports before forking workers, so mistakes fail once, clearly.
    from .runtime import check_classes, import_attribute

    import_attribute(config, config.main, "the app (main)")
    check_classes(config)
    print(
        f"raydo: serving {config.name} on http://{args.host}:{args.port}"
        f" ({args.workers} gateway process(es), Ray at {args.address})",
        flush=True,
    )
    uvicorn.run(
        "gateway._worker:create_app",
        factory=True,
        workers=args.workers,
        **_uvicorn_options(args, args.host, config.limits),  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
