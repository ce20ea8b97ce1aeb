"""Per-object SQLite storage: key-value pairs, SQL, transactions, the codec and the limits.

Users meet :class:`ObjectStorage` (``ctx.storage``) and :class:`SqlStorage`
(``ctx.storage.sql``). :class:`StorageCore` is the transaction core under both faces, for
raydo's own packages: a host holds one per object, and tools open one on a file.
"""

from ._core import StorageCore, remove_partial_files
from .codec import DecodeError, EncodeError
from .errors import SqlError, StorageError, StorageFull, TransactionError
from .limits import DEFAULT_LIMITS, LimitExceeded, Limits
from .object_storage import ObjectStorage
from .sql import Cursor, SqlStorage

__all__ = [
    "DEFAULT_LIMITS",
    "Cursor",
    "DecodeError",
    "EncodeError",
    "LimitExceeded",
    "Limits",
    "ObjectStorage",
    "SqlError",
    "SqlStorage",
    "StorageCore",
    "StorageError",
    "StorageFull",
    "TransactionError",
    "remove_partial_files",
]
