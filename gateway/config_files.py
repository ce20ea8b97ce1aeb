"""What every config file shares: :class:`ConfigError` and reading a file's text.

``raydo.toml`` (:mod:`.config`) and wrangler's files (:mod:`.wrangler_config`) are read the
same way: at most 1 MiB, UTF-8 (a BOM allowed).
"""

from __future__ import annotations

from pathlib import Path

from raydo.storage.limits import MiB

CONFIG_NAME = "raydo.toml"
MAX_CONFIG_BYTES = 1 * MiB


class ConfigError(ValueError):
    """``raydo.toml`` cannot be used. ``key`` is the dotted key at fault, "" for the whole file."""

    def __init__(self, path: Path, key: str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason
        self.line = line
        """The line of the file at fault, when known (wrangler configs)."""

    def __reduce__(self) -> tuple[type[ConfigError], tuple[Path, str, str, int | None]]:
        return (type(self), (self.path, self.key, self.reason, self.line))


def read_text(path: Path) -> str:
    """A config file's text: at most 1 MiB, UTF-8 (a BOM allowed); else :class:`ConfigError`."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file: {e.strerror or e}") from e
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            path,
            "",
            f"file is larger than 1 MiB ({MAX_CONFIG_BYTES} bytes); refusing it",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        bad = raw[e.start : e.start + 1]
        raise ConfigError(path, "", f"not valid UTF-8: byte {bad!r} on line {line}") from e
