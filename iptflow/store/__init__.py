"""The durable store: courses as hash-chained, append-only event logs in SQLite.

>>> from iptflow.store import Store

:class:`Store` is the API; every SQL statement lives in :mod:`iptflow.store.recorder`, the
replay of stored logs and pinned protocols in :mod:`iptflow.store.loading`, what may be
imported in :mod:`iptflow.store.sources`, rows and reports in :mod:`iptflow.store.rows`,
hashing in :mod:`iptflow.store.hashing`, the chain check in :mod:`iptflow.store.verify`,
moving courses to another protocol in :mod:`iptflow.store.protocol_migration`,
the schema in :mod:`iptflow.store.migrations`, opening (read-only too) and reads in
:mod:`iptflow.store.reading`, and the SQLite boundary that maps every ``sqlite3`` error to a
typed one in :mod:`iptflow.store.connection`.
"""

from iptflow.store.api import Store
from iptflow.store.errors import (
    CorruptCourse,
    CourseExists,
    DamagedStore,
    HashMismatch,
    IdempotencyKeyReused,
    ImportRefused,
    InvalidArgument,
    MissingProtocol,
    NewerSchema,
    NoDatabase,
    NotAnIptflowStore,
    OlderSchema,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    UnknownCourse,
)
from iptflow.store.rows import (
    CourseRow,
    ImportResult,
    MigrationRecord,
    Problem,
    SimulationRun,
    StoredEvent,
    VerifyReport,
)

__all__ = [
    "CorruptCourse",
    "CourseExists",
    "CourseRow",
    "DamagedStore",
    "HashMismatch",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "InvalidArgument",
    "MigrationRecord",
    "MissingProtocol",
    "NewerSchema",
    "NoDatabase",
    "NotAnIptflowStore",
    "OlderSchema",
    "Problem",
    "SimulationRun",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreFull",
    "StoreReadOnly",
    "StoredEvent",
    "UnknownCourse",
    "VerifyReport",
]
