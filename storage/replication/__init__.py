"""Storage that outlives a node: every object's write-ahead log shipped to an S3-compatible
store as fenced, immutable entries, and restored from there on any node.

One module per concept: :mod:`.settings` (the ``[replication]`` config), :mod:`.store` (the
S3 calls and the start-up check), :mod:`.wal` (reading frames, writing pages),
:mod:`.journal` (the host log: one stream of slots per host), :mod:`.carry` (a version
carried from a host log into an object's own log),
:mod:`.segments` (entries as sealed bytes), :mod:`.log` (one object's linear log and its
fencing), :mod:`.local_mark` (what the local file holds of the log), :mod:`.snapshots`,
:mod:`.restore`, :mod:`.shipper` (group shipping and the output gate's futures) and
:mod:`.replica` (one object's replica and a host's set of them).
"""

from .carry import carry_over_sealing
from .local_mark import LocalMark, read_mark
from .log import Fenced, ObjectLog
from .replica import ObjectReplica, Replication, ReplicationStats
from .restore import Restored, restore
from .segments import CorruptEntry, Entry, EntryKind
from .settings import MODES, ReplicationSettings, parse_store_url
from .shipper import Shipper, ShippingFailed
from .store import ObjectStore, S3Store, StoreFailure, StoreUnusable, check_store

__all__ = [
    "MODES",
    "CorruptEntry",
    "Entry",
    "EntryKind",
    "Fenced",
    "LocalMark",
    "ObjectLog",
    "ObjectReplica",
    "ObjectStore",
    "Replication",
    "ReplicationSettings",
    "ReplicationStats",
    "Restored",
    "S3Store",
    "Shipper",
    "ShippingFailed",
    "StoreFailure",
    "StoreUnusable",
    "carry_over_sealing",
    "check_store",
    "parse_store_url",
    "read_mark",
    "restore",
]
