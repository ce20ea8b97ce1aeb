"""Does an app's code load? Asked in a fresh process before ``raydo dev`` swaps code in.

``python -m raydo.gateway.reload_check DIR`` reads the app's ``raydo.toml``, imports the app
named by ``main`` and every object class and queue handler (as the gateway does at start-up),
and exits 0; else it prints why on stderr and exits 1. A fresh process sees the files as they
are now, and a broken edit (a syntax error, a bad import, a bad config) never reaches the
serving process: the last good version keeps serving.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .runtime import AppLoadError, check_classes, load_app, runtime_spec

CHECK_TIMEOUT_S = 60.0


def check(folder: str) -> None:
    """Load the app in ``folder`` as the gateway would; raise what stops it."""
    config = load_config(folder)
    load_app(config)
    check_classes(config)
    runtime_spec(config)


async def check_app(folder: Path) -> str | None:
    """Check the app in ``folder`` in a fresh process: None when it loads, else why not."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-B",  # no bytecode written: a later edit within the same second is read again
        "-m",
        "raydo.gateway.reload_check",
        str(folder),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, errors = await asyncio.wait_for(process.communicate(), CHECK_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"loading the app took over {CHECK_TIMEOUT_S:.0f} s (does it block at import?)"
    if process.returncode == 0:
        return None
    text = errors.decode(errors="replace").strip()
    return text or f"the check exited with {process.returncode}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m raydo.gateway.reload_check DIR", file=sys.stderr)
        return 2
    try:
        check(argv[0])
    except (ConfigError, AppLoadError) as exc:
        cause = exc.__cause__
        if isinstance(cause, SyntaxError):  # where, as Python shows it
            print(str(exc).partition(f": {cause!r}")[0] + ":", file=sys.stderr)
            print(_syntax_error(cause), file=sys.stderr)
        else:
            print(str(exc), file=sys.stderr)
        return 1
    return 0


def _syntax_error(exc: SyntaxError) -> str:
    """Where the syntax error is, as Python shows it."""
    lines = [f'  File "{exc.filename}", line {exc.lineno}']
    text = (exc.text or "").rstrip("\n")
    if text.strip():
        lines.append(f"    {text}")
        lines.append("    " + " " * max((exc.offset or 1) - 1, 0) + "^")
    lines.append(f"{type(exc).__name__}: {exc.msg}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
