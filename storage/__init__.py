"""Per-object SQLite storage: key-value pairs, SQL, transactions, the codec and the limits."""

from .codec import DecodeError, EncodeError
from .errors import SqlError, StorageError, TransactionError
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
    "StorageError",
    "TransactionError",
]
