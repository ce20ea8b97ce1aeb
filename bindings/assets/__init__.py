"""Static assets (``[assets]`` in ``raydo.toml``, ``assets`` in wrangler's files): a folder
served in front of the app as Cloudflare serves a Worker's assets, and ``env.ASSETS.fetch``.

::

    [assets]
    directory = "public"
    binding = "ASSETS"                    # env.ASSETS.fetch(request); optional
    html_handling = "auto-trailing-slash" # or force-/drop-trailing-slash, none
    not_found_handling = "none"           # or single-page-application, 404-page
    run_worker_first = false

``_resolve`` maps a path onto a file (the html handling and not-found rules), ``_server``
answers from the folder (content types from ``_content_types``, ETags, paths that never
leave the folder), ``_rules`` reads the folder's ``_redirects`` and ``_headers``,
``_plan`` makes the binding.
"""

from ._content_types import content_type
from ._plan import make_assets, plan
from ._resolve import HTML_HANDLING, NOT_FOUND_HANDLING, Redirect, Serve, resolve
from ._server import AssetServer, AssetSettings, check_routes, decode_path

__all__ = [
    "HTML_HANDLING",
    "NOT_FOUND_HANDLING",
    "AssetServer",
    "AssetSettings",
    "Redirect",
    "Serve",
    "check_routes",
    "content_type",
    "decode_path",
    "make_assets",
    "plan",
    "resolve",
]
