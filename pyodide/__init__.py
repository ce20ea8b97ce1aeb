"""Pyodide is not part of raydo: Python Workers run here on CPython."""

raise ImportError(
    "pyodide (and pyodide.ffi) is not available: raydo runs Python Workers on CPython,"
    " without a JavaScript runtime. Use the workers module (Request, Response, fetch,"
    " FormData, Blob, WebSocketPair) and Python packages; to_js/create_proxy have no use here"
)
