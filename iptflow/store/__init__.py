"""The durable store: courses as hash-chained, append-only event logs in SQLite.

>>> from iptflow.store import Store

:class:`Store` is the API; the SQL lives in :mod:`iptflow.store.recorder`, rows and reports
in :mod:`iptflow.store.rows`, hashing in :mod:`iptflow.store.hashing`, the chain check in
:mod:`iptflow.store.verify` and the schema in :mod:`iptflow.store.migrations`.
"""

from iptflow.store.api import Store
from iptflow.store.errors import (
    CorruptCourse,
    CourseExists,
    IdempotencyKeyReused,
    ImportRefused,
    MissingProtocol,
    NoDatabase,
    StoreError,
    UnknownCourse,
)
from iptflow.store.rows import CourseRow, ImportResult, Problem, StoredEvent, VerifyReport

__all__ = [
    "CorruptCourse",
    "CourseExists",
    "CourseRow",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "MissingProtocol",
    "NoDatabase",
    "Problem",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]
