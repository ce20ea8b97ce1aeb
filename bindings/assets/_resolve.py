"""Which file a request path names, under wrangler's ``html_handling`` and
``not_found_handling`` (as Cloudflare's asset server decides it).

Pure logic over an ``exists(asset_path) -> bool`` callable: ``resolve`` answers a
:class:`Serve` (the asset path and the status), a :class:`Redirect` (a 307 to a canonical
path, e.g. ``/about.html`` -> ``/about``) or None (nothing here: the Worker's turn, or a 404).
A redirect is only given when the path it leads to would serve the very same file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

HTML_HANDLING = ("auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none")
NOT_FOUND_HANDLING = ("none", "single-page-application", "404-page")

Exists = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Serve:
    asset: str
    """The asset's path from the folder's root (``/docs/index.html``)."""
    status: int = 200


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str


Intent = Serve | Redirect | None


def resolve(path: str, html: str, not_found: str, exists: Exists) -> Intent:
    """What ``path`` (decoded, starting with ``/``) is answered with."""
    return _Resolver(html, not_found, exists).intent(path, redirects=True)


class _Resolver:
    def __init__(self, html: str, not_found: str, exists: Exists) -> None:
        if html not in HTML_HANDLING:
            raise ValueError(f"html_handling must be one of {HTML_HANDLING}, got {html!r}")
        if not_found not in NOT_FOUND_HANDLING:
            raise ValueError(
                f"not_found_handling must be one of {NOT_FOUND_HANDLING}, got {not_found!r}"
            )
        self.html, self.not_found, self.exists = html, not_found, exists

    def intent(self, path: str, *, redirects: bool) -> Intent:
        found: Intent
        if self.html == "auto-trailing-slash":
            found = self._auto(path, redirects)
        elif self.html == "force-trailing-slash":
            found = self._force(path, redirects)
        elif self.html == "drop-trailing-slash":
            found = self._drop(path, redirects)
        else:
            found = Serve(path) if self.exists(path) else None
        return found if found is not None else self._missing(path)

    def _serve(self, asset: str) -> Serve | None:
        return Serve(asset) if self.exists(asset) else None

    def _redirect(self, asset: str, to: str, redirects: bool) -> Redirect | None:
        """A redirect to ``to`` when ``asset`` exists and ``to`` (not itself a file) would
        serve it."""
        if not redirects or not to or not self.exists(asset) or self.exists(to):
            return None
        there = self.intent(to, redirects=False)
        return Redirect(to) if isinstance(there, Serve) and there.asset == asset else None

    # Each mode tries, in order, what Cloudflare's asset server tries; lazily, as a chain.

    def _auto(self, p: str, r: bool) -> Intent:
        exact = self.exists(p)
        found: Intent
        if p.endswith("/index"):
            if exact:
                return Serve(p)
            head = p[: -len("index")]
            found = self._redirect(p + ".html", head, r) or self._redirect(
                head[:-1] + ".html", head[:-1], r
            )
        elif p.endswith("/index.html"):
            head = p[: -len("index.html")]
            found = self._redirect(p, head, r) or self._redirect(head[:-1] + ".html", head[:-1], r)
        elif p.endswith("/"):
            found = self._serve(p + "index.html") or self._redirect(p[:-1] + ".html", p[:-1], r)
        elif p.endswith(".html"):
            stem = p[: -len(".html")]
            found = self._redirect(p, stem, r) or self._redirect(
                stem + "/index.html", stem + "/", r
            )
        else:
            found = None
        if found is not None:
            return found
        if exact:
            return Serve(p)
        return self._serve(p + ".html") or self._redirect(p + "/index.html", p + "/", r)

    def _force(self, p: str, r: bool) -> Intent:
        exact = self.exists(p)
        found: Intent
        if p.endswith("/index"):
            if exact:
                return Serve(p)
            head = p[: -len("index")]
            found = self._redirect(p + ".html", head, r) or self._redirect(
                head[:-1] + ".html", head, r
            )
        elif p.endswith("/index.html"):
            head = p[: -len("index.html")]
            found = self._redirect(p, head, r) or self._redirect(head[:-1] + ".html", head, r)
        elif p.endswith("/"):
            found = self._serve(p + "index.html") or self._serve(p[:-1] + ".html")
        elif p.endswith(".html"):
            stem = p[: -len(".html")]
            found = (
                self._redirect(p, stem + "/", r)
                or (Serve(p) if exact else None)
                or self._redirect(stem + "/index.html", stem + "/", r)
            )
        else:
            found = None
        if found is not None:
            return found
        if exact:
            return Serve(p)
        return self._redirect(p + ".html", p + "/", r) or self._redirect(
            p + "/index.html", p + "/", r
        )

    def _drop(self, p: str, r: bool) -> Intent:
        exact = self.exists(p)
        found: Intent
        if p.endswith("/index"):
            if exact:
                return Serve(p)
            head = p[: -len("/index")]
            if p == "/index":
                found = self._redirect("/index.html", "/", r)
            else:
                found = self._redirect(head + ".html", head, r) or self._redirect(
                    p + ".html", head, r
                )
        elif p.endswith("/index.html"):
            head = p[: -len("/index.html")]
            if p == "/index.html":
                found = self._redirect(p, "/", r)
            else:
                found = (
                    self._redirect(p, head, r)
                    or (Serve(p) if exact else None)
                    or self._redirect(head + ".html", head, r)
                )
        elif p == "/":
            found = self._serve("/index.html")
        elif p.endswith("/"):
            found = self._redirect(p[:-1] + ".html", p[:-1], r) or self._redirect(
                p + "index.html", p[:-1], r
            )
        elif p.endswith(".html"):
            stem = p[: -len(".html")]
            found = self._redirect(p, stem, r) or self._redirect(stem + "/index.html", stem, r)
        else:
            found = None
        if found is not None:
            return found
        if exact:
            return Serve(p)
        return self._serve(p + ".html") or self._serve(p + "/index.html")

    def _missing(self, path: str) -> Intent:
        if self.not_found == "single-page-application":
            return self._serve("/index.html")
        if self.not_found == "404-page":
            folder = path
            while folder:
                folder = folder[: folder.rfind("/")]
                if self.exists(folder + "/404.html"):
                    return Serve(folder + "/404.html", 404)
        return None
