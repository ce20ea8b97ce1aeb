"""Fresh names, so tests that share an app (and its hosts) never share an object."""

from __future__ import annotations

import uuid


def fresh_name() -> str:
    return uuid.uuid4().hex[:12]
