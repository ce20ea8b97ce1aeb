"""The folder's ``_redirects`` and ``_headers`` files, as Cloudflare reads them for a
Worker's assets (path rules only).

``_redirects``: one rule a line, ``FROM TO [STATUS]`` (301, 302 (the default), 303, 307,
308, or 200: serve the asset at ``TO`` under ``FROM``'s URL); ``*`` in ``FROM`` is
``:splat`` in ``TO``, ``:name`` matches one path segment. A rule without either is static;
static rules win over dynamic ones, then the earlier line. At most 2,000 static and 100
dynamic rules.

``_headers``: a line with no indent is a path pattern (the same syntax), each indented line
under it ``Name: value`` to add (values of several matching rules are joined with ``, ``)
or ``! Name`` to remove; applied to every answer from the folder. At most 100 rules.

A line that cannot be read is left out and reported once (logged), not an error: as on the
platform, where it is a warning at deploy. Rules for other hosts (``https://...``) are left
out the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger("raydo.assets")

REDIRECT_STATUSES = (200, 301, 302, 303, 307, 308)
MAX_STATIC_REDIRECTS = 2000
MAX_DYNAMIC_REDIRECTS = 100
MAX_HEADER_RULES = 100
MAX_LINE = 1000
_PLACEHOLDER = re.compile(r":([A-Za-z]\w*)")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def pattern(rule: str) -> re.Pattern[str]:
    """``/blog/:year/*`` -> a regex with named groups (``year``: one segment, ``splat``)."""
    parts = [re.escape(p) for p in rule.split("*")]
    text = "(?P<splat>.*)".join(parts) if len(parts) == 2 else ".*".join(parts)
    text = re.sub(r":([A-Za-z]\w*)", lambda m: f"(?P<{m.group(1)}>[^/]+)", text)
    return re.compile(text, re.DOTALL)


def _is_dynamic(rule: str) -> bool:
    return "*" in rule or _PLACEHOLDER.search(rule) is not None


def _replace(target: str, groups: dict[str, str]) -> str:
    for name, value in groups.items():
        if value is not None:
            target = target.replace(f":{name}", value)
    return target


@dataclass(frozen=True, slots=True)
class Redirect:
    source: str
    to: str
    status: int
    line: int
    regex: re.Pattern[str] | None = None
    """For a dynamic rule; None for a static one (matched by equality)."""


@dataclass(frozen=True, slots=True)
class HeaderRule:
    source: str
    regex: re.Pattern[str]
    set: list[tuple[str, str]] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)


@dataclass
class Rules:
    """What the two files say; ``problems`` lists the lines left out."""

    static: dict[str, Redirect] = field(default_factory=dict)
    dynamic: list[Redirect] = field(default_factory=list)
    headers: list[HeaderRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def redirect(self, path: str) -> tuple[int, str] | None:
        """``(status, target)`` of the rule that matches ``path``, or None."""
        found = self.static.get(path)
        if found is not None:
            return found.status, found.to
        for rule in self.dynamic:
            assert rule.regex is not None
            match = rule.regex.fullmatch(path)
            if match is not None:
                target = _replace(rule.to, match.groupdict())
                if "://" not in target:
                    target = re.sub(r"/+", "/", target)
                return rule.status, target
        return None

    def headers_for(self, path: str) -> Iterator[HeaderRule]:
        for rule in self.headers:
            match = rule.regex.fullmatch(path)
            if match is not None:
                groups = match.groupdict()
                yield HeaderRule(
                    rule.source,
                    rule.regex,
                    [(name, _replace(value, groups)) for name, value in rule.set],
                    rule.unset,
                )


def read_rules(redirects: str | None, headers: str | None) -> Rules:
    rules = Rules()
    if redirects is not None:
        _read_redirects(redirects, rules)
    if headers is not None:
        _read_headers(headers, rules)
    for problem in rules.problems:
        log.warning("assets: %s", problem)
    return rules


def _read_redirects(text: str, rules: Rules) -> None:
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"_redirects:{n}"
        fields = line.split()
        if len(raw) > MAX_LINE or not 2 <= len(fields) <= 3:
            rules.problems.append(f"{where}: expected FROM TO [STATUS], left out")
            continue
        source, to = fields[0], fields[1]
        status_text = fields[2] if len(fields) == 3 else "302"
        status = int(status_text) if status_text.isdigit() else 0
        if status not in REDIRECT_STATUSES:
            rules.problems.append(f"{where}: status {status_text!r} is not one of 200, 301-308")
            continue
        if not source.startswith("/"):
            rules.problems.append(f"{where}: {source!r}: only path rules (starting with /)")
            continue
        if status == 200 and (not to.startswith("/") or "://" in to):
            rules.problems.append(f"{where}: a 200 rule serves a path of the folder, not {to!r}")
            continue
        if source in seen:
            rules.problems.append(f"{where}: {source!r} already has a rule, left out")
            continue
        seen.add(source)
        if _is_dynamic(source):
            if len(rules.dynamic) >= MAX_DYNAMIC_REDIRECTS:
                rules.problems.append(f"{where}: over {MAX_DYNAMIC_REDIRECTS} dynamic rules")
                continue
            rules.dynamic.append(Redirect(source, to, status, n, pattern(source)))
        else:
            if len(rules.static) >= MAX_STATIC_REDIRECTS:
                rules.problems.append(f"{where}: over {MAX_STATIC_REDIRECTS} static rules")
                continue
            rules.static[source] = Redirect(source, to, status, n)


def _read_headers(text: str, rules: Rules) -> None:
    current: HeaderRule | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.strip().startswith("#"):
            continue
        where = f"_headers:{n}"
        if len(raw) > MAX_LINE:
            rules.problems.append(f"{where}: over {MAX_LINE} characters, left out")
            continue
        if not raw[0].isspace():
            current = None
            source = raw.strip()
            if not source.startswith("/"):
                rules.problems.append(f"{where}: {source!r}: only path rules (starting with /)")
            elif len(rules.headers) >= MAX_HEADER_RULES:
                rules.problems.append(f"{where}: over {MAX_HEADER_RULES} rules")
            else:
                current = HeaderRule(source, pattern(source))
                rules.headers.append(current)
            continue
        if current is None:
            rules.problems.append(f"{where}: a header line with no path above it")
            continue
        line = raw.strip()
        if line.startswith("!"):
            name = line[1:].strip()
            if _HEADER_NAME.fullmatch(name):
                current.unset.append(name.lower())
            else:
                rules.problems.append(f"{where}: {name!r} is not a header name")
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.fullmatch(name) or any(c in value for c in "\r\n\0"):
            rules.problems.append(f"{where}: expected 'Name: value' or '! Name'")
            continue
        current.set.append((name.lower(), value))


@dataclass(frozen=True, slots=True)
class Ignore:
    """``.assetsignore``: files of the folder never served (gitignore's syntax: ``*`` within a
    segment, ``**`` across them, a leading or inner ``/`` anchors to the folder, a trailing
    ``/`` names folders, ``!`` takes a path back; the last matching line wins)."""

    rules: tuple[tuple[bool, bool, re.Pattern[str]], ...] = ()

    def __contains__(self, asset: str) -> bool:
        path = asset.lstrip("/")
        segments = path.split("/")
        folders = ["/".join(segments[:n]) for n in range(1, len(segments))]
        ignored = False
        for negated, folder_only, regex in self.rules:
            hit = any(regex.fullmatch(f) for f in folders) or (
                not folder_only and regex.fullmatch(path) is not None
            )
            if hit:
                ignored = not negated
        return ignored


def read_ignore(text: str | None) -> Ignore:
    if text is None:
        return Ignore()
    rules = []
    for raw in text.splitlines()[:MAX_STATIC_REDIRECTS]:
        line = raw.strip()
        if not line or line.startswith("#") or len(line) > MAX_LINE:
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!")
        folder_only = line.endswith("/")
        line = line.strip("/") if "/" in line.rstrip("/") else line.rstrip("/")
        anchored = "/" in raw.strip().removeprefix("!").rstrip("/")
        body = ""
        i = 0
        while i < len(line):
            if line.startswith("**", i):
                body, i = body + ".*", i + 2
            elif line[i] == "*":
                body, i = body + "[^/]*", i + 1
            elif line[i] == "?":
                body, i = body + "[^/]", i + 1
            else:
                body, i = body + re.escape(line[i]), i + 1
        if not body:
            continue
        regex = re.compile(body if anchored else f"(?:.*/)?{body}", re.DOTALL)
        rules.append((negated, folder_only, regex))
    return Ignore(tuple(rules))
