"""raydo: Durable-Objects-style backends in Python, on Ray.

The names an app constructs or catches live here; the packages underneath are
``raydo.actors`` (the object model and its hosts), ``raydo.storage`` (per-object SQLite),
``raydo.bindings`` (the platform bindings) and ``raydo.gateway`` (the HTTP front, the config
and the CLI).
"""

from raydo.actors import (
    CallRefused,
    DurableObject,
    HostUnavailable,
    ObjectError,
    ObjectId,
    ObjectReset,
    Overloaded,
    RaydoError,
    RemoteLimitExceeded,
    RemoteStorageFull,
    StreamBroken,
)
from raydo.storage import LimitExceeded, SqlError, StorageError, StorageFull, TransactionError

__all__ = [
    "CallRefused",
    "DurableObject",
    "HostUnavailable",
    "LimitExceeded",
    "ObjectError",
    "ObjectId",
    "ObjectReset",
    "Overloaded",
    "RaydoError",
    "RemoteLimitExceeded",
    "RemoteStorageFull",
    "SqlError",
    "StorageError",
    "StorageFull",
    "StreamBroken",
    "TransactionError",
]
