"""The durable store: courses as hash-chained, append-only event logs in SQLite.

>>> from iptflow.store import Store

:class:`Store` is the API; every SQL statement lives in :mod:`iptflow.store.recorder`, the
replay of stored logs and pinned protocols in :mod:`iptflow.store.loading`, what may be
imported in :mod:`iptflow.store.sources`, rows and reports in :mod:`iptflow.store.rows`,
hashing in :mod:`iptflow.store.hashing`, the chain check in :mod:`iptflow.store.verify` and
the schema in :mod:`iptflow.store.migrations`.
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
from iptflow.store.rows import (
    CourseRow,
    ImportResult,
    Problem,
    SimulationRun,
    StoredEvent,
    VerifyReport,
)

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
    "SimulationRun",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]
