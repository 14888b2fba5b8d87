"""Errors of the durable store. Each is an :class:`iptflow.errors.IptflowError` with a code.

Rejections of events (including the store's ``conflict`` and ``no_course``) are not errors:
``Store.apply`` returns them. These exceptions are for a store that cannot be used or a stored
course that cannot be loaded as it was recorded.
"""

from __future__ import annotations

from iptflow.errors import IptflowError


class StoreError(IptflowError):
    """The store cannot do what was asked (the message says why)."""

    code = "store_error"


class NoDatabase(StoreError):
    """A command that only reads was pointed at a database file that does not exist."""

    code = "no_database"


class UnknownCourse(StoreError):
    """A course id the store does not hold (reading; ``apply`` returns ``no_course`` instead)."""

    code = "no_course"


class CourseExists(StoreError):
    """Importing a course whose id the store already holds."""

    code = "course_exists"


class ImportRefused(StoreError):
    """A course file replays with unexpected rejections or failed expectations."""

    code = "import_refused"


class IdempotencyKeyReused(StoreError):
    """An idempotency key already stored for this course with a different event."""

    code = "idempotency_key_reused"


class CorruptCourse(StoreError):
    """A stored course cannot be loaded as recorded: its log does not replay, its hash chain
    or derived row disagrees with the log, or its protocol fingerprint does not match."""

    code = "corrupt_course"


class MissingProtocol(CorruptCourse):
    """The resolved protocol a course was opened under is not in the store (or cannot be
    compiled with the installed plugins)."""

    code = "missing_protocol"
