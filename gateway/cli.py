"""The ``raydo`` command.

``raydo dev [DIR] [--port 8787] [--no-reload] [--no-inspector]``
    Start an embedded local Ray and serve the app in DIR on 127.0.0.1; swap in its new code
    when its files change; the inspector at ``/_raydo/inspector``.
``raydo serve [DIR] --address ADDRESS [--host 127.0.0.1] [--port 8787] [--workers N]``
    Join the Ray cluster at ADDRESS and serve the app with N gateway processes
    (``--inspector``: the inspector too, behind a token).
``raydo status [DIR] --address ADDRESS [--json]``
    The app's code version and its hosts on a Ray cluster (:mod:`.cli_status`).
``raydo deploy [DIR] --address ADDRESS [--hosts-bind 127.0.0.1|node]``
    Ship the app's code to the cluster (Ray's runtime_env) and start or update its hosts.
``raydo init DIR [--template counter|chat|tenants|seed-backend|jobs]``
    Make a new app in DIR from one of the examples.
``raydo objects list|show|sql|export|import BINDING ...``
    See inside objects, straight from the app's storage folder.
``raydo vectorize create|info|list|delete|insert|upsert|query|... NAME``
    The vector indexes, in wrangler's shape (:mod:`.cli_vectorize`).
``raydo d1 execute|migrations``, ``raydo kv key ...``, ``raydo r2 object ...``
    wrangler's commands for the D1, KV and R2 bindings (:mod:`.cli_wrangler`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from raydo.storage.errors import StorageError
from raydo.storage.folder_lock import FolderInUse, live_holder
from raydo.storage.limits import Limits

from . import (
    cli_db,
    cli_deploy,
    cli_init,
    cli_observe,
    cli_queues,
    cli_status,
    cli_storage,
    cli_time_travel,
    cli_vectorize,
    cli_wrangler,
)
from .config import AppConfig, ConfigError, load_config
from .runtime import AppLoadError

DEFAULT_PORT = 8787
KEEP_ALIVE_S = 30
LEAN_WEBSOCKETS = "raydo.gateway._ws_protocol:LeanWebSocketProtocol"
WORKER_APP = "raydo.gateway._worker:create_app"
BOUNDED_HTTP = "raydo.gateway._http_protocol:BoundedHttpProtocol"


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
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="swap in the app's new code when its files change (on; --no-reload: off)",
    )
    dev.add_argument(
        "--ws-compression", action="store_true", help="offer permessage-deflate to WebSockets"
    )
    dev.add_argument(
        "--inspector",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the inspector at /_raydo/inspector (on; --no-inspector: off)",
    )
    cli_observe.add_options(dev)

    serve = commands.add_parser("serve", help="serve an app on a running Ray cluster")
    serve.add_argument("dir", nargs="?", default=".", help="the app's folder (holding raydo.toml)")
    serve.add_argument("--address", required=True, help="the Ray cluster ('auto' or host:port)")
    serve.add_argument(
        "--deployed",
        metavar="APP",
        help="serve the app of that name as raydo deploy left it on the cluster (no DIR)",
    )
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
        "--inspector",
        action="store_true",
        help="serve the inspector at /_raydo/inspector, with a token, to 127.0.0.1 only",
    )
    serve.add_argument(
        "--inspector-token",
        metavar="TOKEN",
        help="the inspector's token (else RAYDO_INSPECTOR_TOKEN, else one made and printed)",
    )
    serve.add_argument(
        "--inspector-public",
        action="store_true",
        help="let clients beyond 127.0.0.1 reach the inspector (with its token)",
    )
    cli_observe.add_options(serve)
    _objects_parser(commands)
    cli_db.add_commands(commands)
    cli_queues.add_commands(commands)
    cli_storage.add_commands(commands)
    cli_status.add_commands(commands)
    cli_deploy.add_commands(commands)
    cli_init.add_commands(commands)
    cli_vectorize.add_commands(commands)
    cli_wrangler.add_commands(commands)
    serve.add_argument(
        "--ws-compression", action="store_true", help="offer permessage-deflate to WebSockets"
    )
    return top


def _objects_parser(commands: Any) -> None:
    objects = commands.add_parser("objects", help="see inside objects (from the storage folder)")
    actions = objects.add_subparsers(dest="action", required=True, metavar="ACTION")

    def target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("binding", help="the Durable Object binding, e.g. COUNTER")
        sub.add_argument("object", help="the object's name, or its 64-hex id")
        sub.add_argument("--name", action="store_true", help="take OBJECT as a name even if hex")
        sub.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")

    listing = actions.add_parser("list", help="objects with storage: id, size, last write, alarm")
    listing.add_argument("binding", help="the Durable Object binding, e.g. COUNTER")
    listing.add_argument("--dir", default=".", help="the app's folder (holding raydo.toml)")
    listing.add_argument(
        "--limit",
        type=_workers_like("--limit", 1, 1_000_000),
        default=100,
        help="objects per page (100)",
    )
    listing.add_argument("--after", help="the last id of the previous page")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    target(actions.add_parser("show", help="tables, key-value pairs, alarm, open sockets"))
    sql = actions.add_parser("sql", help="run SQL on an object's file (read-only by default)")
    target(sql)
    sql.add_argument("query", help="the SQL to run")
    sql.add_argument("--write", action="store_true", help="allow changes (stop the app first)")
    sql.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    export = actions.add_parser("export", help="dump an object's storage")
    target(export)
    export.add_argument(
        "--format",
        choices=("sql", "jsonl"),
        default="sql",
        help="a SQL dump (sql, the default; import reads it) or JSON lines",
    )
    imported = actions.add_parser("import", help="create an object from a SQL dump")
    target(imported)
    restored = actions.add_parser(
        "restore", help="restore an object to a bookmark or a time ([replication])"
    )
    target(restored)
    cli_time_travel.add_restore_arguments(restored, required=True)
    imported.add_argument("file", help="a dump made by `raydo objects export` ('-': stdin)")


def _workers_like(flag: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} takes {low} to {high}")
        return value

    return parse


def _objects(args: argparse.Namespace) -> int:
    from . import inspection

    config = load_config(args.dir)
    try:
        if args.action == "list":
            from tqdm import tqdm

            # A bar on a terminal only: piped output (``--json | jq``) stays clean.
            with tqdm(
                desc="objects", unit=" files", disable=not sys.stderr.isatty(), leave=False
            ) as bar:

                def progress(seen: int) -> None:
                    bar.update(seen - bar.n)

                rows = inspection.list_objects(
                    config, args.binding, after=args.after, limit=args.limit, progress=progress
                )
            for row in rows:
                alarm = "-" if row.alarm is None else row.alarm.isoformat(timespec="seconds")
                written = row.last_write.isoformat(timespec="seconds")
                if args.json:
                    print(
                        json.dumps(
                            {
                                "id": row.id,
                                "name": row.name,
                                "size_bytes": row.size_bytes,
                                "last_write": written,
                                "alarm": None if row.alarm is None else row.alarm.isoformat(),
                                "unreadable": row.unreadable,
                            }
                        )
                    )
                else:
                    name = "-" if row.name is None else json.dumps(row.name)
                    if row.unreadable is not None:
                        name = f"UNREADABLE: {row.unreadable}"
                    print(f"{row.id}  {row.size_bytes:>10,}  {written}  alarm {alarm}  {name}")
            if len(rows) == args.limit:
                print(f"(more: --after {rows[-1].id})", file=sys.stderr)
            return 0
        if args.action == "restore":
            return cli_time_travel.objects_restore(config, args)
        target = inspection.object_id(config, args.binding, args.object, by_name=args.name)
        if args.action == "show":
            print(json.dumps(inspection.show_object(config, target), indent=2))
        elif args.action == "sql":
            names, records = inspection.run_sql(config, target, args.query, write=args.write)
            for record in records:
                if args.json:
                    print(json.dumps(dict(zip(names, record, strict=True)), default=repr))
                else:
                    print("\t".join("NULL" if v is None else str(v) for v in record))
        elif args.action == "export":
            for chunk in inspection.export_object(config, target, args.format):
                sys.stdout.write(chunk)
        else:
            dump = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
            inspection.import_object(config, target, dump)
            print(f"imported into {inspection.object_path(config, target)}")
        return 0
    except BrokenPipeError:  # the reader stopped early (``| head``): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (inspection.InspectionError, ValueError, OSError, StorageError) as exc:
        print(f"raydo: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "dev":
            return _dev(args)
        if args.command == "objects":
            return _objects(args)
        handler = getattr(args, "handler", None)  # commands added by other modules
        if handler is not None:
            return int(handler(args))
        return _serve(args)
    except (ConfigError, AppLoadError, FolderInUse) as exc:
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
        # uvicorn's sans-I/O protocol, able to take accepted sockets out of ASGI (idle ones
        # then cost a few KiB instead of a whole call stack).
        "ws": LEAN_WEBSOCKETS,
        # uvicorn's httptools protocol with bounds on heads, stalls and connections.
        "http": BOUNDED_HTTP,
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,  # the gateway logs requests itself, with their duration
        "timeout_graceful_shutdown": 5,
        # Longer than clients keep an idle connection (httpx and requests: 5 s, uvicorn's own
        # default too): a server that closes first races a client sending its next request on
        # that connection, which then sees "disconnected without a response" for a request
        # never read. Idle connections count against limits.connections.
        "timeout_keep_alive": KEEP_ALIVE_S,
        **cli_observe.uvicorn_options(args),
    }


def _dev(args: argparse.Namespace) -> int:
    """Serve until stopped, then stop in order: the gateway, the hosts, the embedded Ray.

    A SIGINT or SIGTERM is a requested stop (exit 0, one line). When the embedded Ray loses
    its GCS or raylet, nothing can start or restart a host any more: the gateway stops, and
    the exit (1) names the Ray process that died and its log.
    """
    import uvicorn

    from raydo.actors.placement import (
        LocalPlacement,
        ray_placement,
        ray_runtime,
        start_local_ray,
        stop_local_ray,
        stop_ray_hosts,
    )

    from ._stopping import QuietServer, run_server, signal_name
    from .app import Gateway
    from .inspector import PREFIX as INSPECTOR_PREFIX
    from .inspector import InspectorSettings

    config = load_config(args.dir)
    _announce_ignored(config)
    _refuse_if_held(config.storage, same_cluster_may_share=False)
    metrics = cli_observe.setup(args)
    lost: list[str] = []

    def cluster_lost(reason: str) -> None:
        if not server.should_exit:  # a stop under way takes the embedded Ray down with it
            lost.append(reason)
            server.stop()

    inspector = InspectorSettings() if args.inspector else None
    if args.in_process:
        gateway = Gateway(config, LocalPlacement, dev_routes=True, inspector=inspector)
    else:
        gateway = Gateway(
            config,
            lambda spec: ray_placement(spec, on_cluster_lost=cluster_lost),
            on_start=start_local_ray,
            runtime=ray_runtime,
            dev_routes=True,
            inspector=inspector,
        )
    cli_observe.attach(gateway, metrics, access_log=args.access_log)
    if args.reload:
        from .reload import ReloadingApp

        ReloadingApp(gateway, lambda text, error: _tell(args, text, error=error))
    mode = "in-process hosts" if args.in_process else "embedded local Ray"
    reloading = ", reloading on changes" if args.reload else ""
    print(
        f"raydo: serving {config.name} on http://127.0.0.1:{args.port} ({mode}{reloading})",
        flush=True,
    )
    if inspector is not None:
        print(f"raydo: inspector on http://127.0.0.1:{args.port}{INSPECTOR_PREFIX}", flush=True)
    uvicorn_config = uvicorn.Config(gateway, **_uvicorn_options(args, "127.0.0.1", config.limits))  # type: ignore[arg-type]
    server = QuietServer(uvicorn_config)
    run_server(server, uvicorn_config.bind_socket())
    if not args.in_process:
        if not lost:
            stop_ray_hosts(gateway.spec)
        stop_local_ray()
    if lost:
        _tell(
            args,
            f"{lost[0]}. raydo dev cannot start or restart hosts without it, so it stopped.",
            error=True,
        )
        return 1
    if server.stopped_by is not None:
        _tell(args, f"stopped ({signal_name(server.stopped_by)})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve until stopped: a SIGINT or SIGTERM stops the workers (each gracefully), then
    this process, with exit 0 and one line. The hosts stay: they belong to the cluster."""
    import uvicorn

    from . import _worker
    from ._stopping import QuietServer, run_server, run_workers, signal_name
    from .inspector import PREFIX as INSPECTOR_PREFIX
    from .inspector import export as export_inspector
    from .inspector import serve_settings

    if args.deployed is not None:
        args.dir = str(_deployed_folder(args))
    config = load_config(args.dir, dev_vars=False)
    _announce_ignored(config)
    _refuse_if_held(config.storage, same_cluster_may_share=True)
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
    try:
        inspector, made = serve_settings(
            args.inspector, args.inspector_token, args.inspector_public
        )
    except ValueError as exc:
        raise AppLoadError(str(exc)) from None
    export_inspector(inspector)
    cli_observe.export(args, cli_observe.setup(args, ports=args.workers))
    # Check the app imports before forking workers, so mistakes fail once, clearly.
    from .runtime import check_classes, load_app

    load_app(config)
    check_classes(config)
    print(
        f"raydo: serving {config.name} on http://{args.host}:{args.port}"
        f" ({args.workers} gateway process(es), Ray at {args.address})",
        flush=True,
    )
    if inspector is not None:
        shown = f"?token={inspector.token}" if made else " (with the token you gave)"
        whom = "any client" if inspector.public else "clients on 127.0.0.1 only"
        print(
            f"raydo: inspector on http://{args.host}:{args.port}{INSPECTOR_PREFIX}{shown} ({whom})",
            flush=True,
        )
    options = _uvicorn_options(args, args.host, config.limits)
    stopped_by: int | None
    if args.workers > 1:  # the supervisor binds the port before starting its workers
        stopped_by = run_workers(
            uvicorn.Config(WORKER_APP, factory=True, workers=args.workers, **options)  # type: ignore[arg-type]
        )
    else:
        uvicorn_config = uvicorn.Config(WORKER_APP, factory=True, **options)  # type: ignore[arg-type]
        server = QuietServer(uvicorn_config)
        run_server(server, uvicorn_config.bind_socket())
        stopped_by = server.stopped_by
    if stopped_by is not None:
        _tell(args, f"stopped ({signal_name(stopped_by)})")
    return 0


def _deployed_folder(args: argparse.Namespace) -> Path:
    """``serve --deployed APP``: the app's deployed folder, fetched from the cluster and
    unpacked here (the gateways then follow later deploys as any do)."""
    from raydo.actors.placement import DeployError

    from .cli_status import join_cluster
    from .deploy_follow import fetch_deployed

    if args.dir != ".":
        raise AppLoadError("give the app's folder or --deployed APP, not both")
    if not join_cluster(args.address):
        raise AppLoadError(f"cannot fetch {args.deployed!r}: the cluster did not answer")
    try:
        folder = fetch_deployed(args.deployed)
    except DeployError as exc:
        raise AppLoadError(f"cannot serve the deployed {args.deployed!r}: {exc}") from None
    _tell(args, f"serving the deployed {args.deployed} from {folder}")
    return folder


def _tell(args: argparse.Namespace, text: str, *, error: bool = False) -> None:
    """One line for the operator on stderr (``raydo: ...``), or one record when the logs are
    JSON lines, so that stderr stays all JSON."""
    if args.log_format == "json":
        logging.getLogger("raydo.cli").log(logging.ERROR if error else logging.INFO, text)
    else:
        print(f"raydo: {'error: ' if error else ''}{text}", file=sys.stderr, flush=True)


def _announce_ignored(config: AppConfig) -> None:
    """A wrangler config's keys raydo does not use, and the required secrets dev found
    nowhere, said once at start (not errors)."""
    if config.ignored:
        print(
            f"raydo: {config.path.name}: ignored (raydo does not use them): "
            + ", ".join(config.ignored),
            file=sys.stderr,
            flush=True,
        )
    if config.missing_secrets:
        print(
            f"raydo: {config.path.name}: required secrets not in .dev.vars, .env or the"
            " environment (env has no such names): " + ", ".join(config.missing_secrets),
            file=sys.stderr,
            flush=True,
        )


def _refuse_if_held(folder: Path, *, same_cluster_may_share: bool) -> None:
    """Refuse at once, before a slow start-up, when another runtime holds the storage folder.

    The claim itself happens at start-up (``Gateway.start``), once the runtime is known; a
    ``serve`` beside other processes of its own cluster is let through to it.
    """
    holder = live_holder(folder)
    if holder is None or (same_cluster_may_share and holder.runtime.startswith("ray:")):
        return
    raise FolderInUse(folder, holder)


if __name__ == "__main__":
    sys.exit(main())
