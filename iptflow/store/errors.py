"""Errors of the durable store. Each is an :class:`iptflow.errors.IptflowError` with a code.

Rejections of events (including the store's ``conflict`` and ``no_course``) are not errors:
``Store.apply`` returns them. These exceptions are for a store that cannot be used, a stored
course that cannot be loaded as it was recorded, and arguments the store's API cannot take.
The store never lets a raw ``sqlite3`` error out: :mod:`iptflow.store.recorder` maps each to
one of the classes below (every one a :class:`StoreError`, so ``except StoreError`` catches
them all).
"""

from __future__ import annotations

from iptflow.errors import IptflowError


class StoreError(IptflowError):
    """The store cannot do what was asked (the message says why)."""

    code = "store_error"


class NoDatabase(StoreError):
    """A command that only reads was pointed at a database file that does not exist."""

    code = "no_database"


class StoreBusy(StoreError):
    """Another connection held the write lock for longer than the store's ``timeout``
    (details: ``waited`` and ``timeout``, in seconds)."""

    code = "store_busy"


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full: nothing of the write was stored."""

    code = "disk_full"


class StoreReadOnly(StoreError):
    """The database file, or its directory, cannot be written: nothing was stored."""

    code = "read_only"


class DamagedStore(StoreError):
    """The file is not a SQLite database, or SQLite finds it damaged (malformed pages, a
    table of the store missing or disagreeing with another)."""

    code = "damaged_store"


class NewerSchema(StoreError):
    """The database was written by a newer iptflow: it has migrations this release does not
    know (details: ``unknown`` and ``known``)."""

    code = "newer_schema"


class OlderSchema(StoreError):
    """Opened read-only, a store whose schema lacks migrations this release needs (opening it
    once for writing applies them; details: ``missing``)."""

    code = "older_schema"


class NotAnIptflowStore(StoreError):
    """Opened read-only, a SQLite file that holds none of iptflow's tables."""

    code = "not_an_iptflow_store"


class InvalidArgument(StoreError):
    """An argument of the store's API has the wrong type or value (e.g. ``expected_seq="1"``)."""

    code = "invalid_argument"


class UnknownCourse(StoreError):
    """A course id the store does not hold (reading; ``apply`` returns ``no_course`` instead)."""

    code = "no_course"


class CourseExists(StoreError):
    """Importing a course whose id the store already holds."""

    code = "course_exists"


class ImportRefused(StoreError):
    """A course file replays with unexpected rejections or failed expectations, or a source
    given to ``import_many`` is not a course (details name its ``position``)."""

    code = "import_refused"


class IdempotencyKeyReused(StoreError):
    """An idempotency key already stored for this course with a different event."""

    code = "idempotency_key_reused"


class CorruptCourse(StoreError):
    """A stored course cannot be loaded as recorded: its log does not replay, its hash chain
    or derived row disagrees with the log, or its protocol fingerprint does not match."""

    code = "corrupt_course"


class HashMismatch(CorruptCourse):
    """A read with ``verify=True`` found a stored event whose body, seq or link no longer
    matches its hash (details: ``course_id``, ``seq``)."""

    code = "hash_mismatch"


class MissingProtocol(CorruptCourse):
    """The resolved protocol a course was opened under is not in the store (or cannot be
    compiled with the installed plugins)."""

    code = "missing_protocol"
