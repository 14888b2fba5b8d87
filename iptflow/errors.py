"""Typed errors. Every error carries a stable ``code`` and a one-line message.

Rejections of events are *not* errors: ``Course.apply`` returns a
:class:`iptflow.results.Rejection`. These exceptions are for input that cannot be
used at all (a broken protocol file, an unknown protocol, an unusable course file)
and for failures of plugins and of the store.
"""

from __future__ import annotations

from typing import Any


class IptflowError(Exception):
    """Base class of every error iptflow raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ProtocolError(IptflowError):
    """A protocol cannot be resolved or compiled."""

    code = "protocol_error"


class UnknownProtocol(ProtocolError):
    code = "unknown_protocol"


class UnknownProtocolVersion(UnknownProtocol):
    """``id@version`` names a version of a known protocol that is not installed."""

    code = "unknown_protocol_version"


class UnknownAdaptation(ProtocolError):
    code = "unknown_adaptation"


class ProtocolConflict(ProtocolError):
    """Adaptations that cannot be combined (empty session range, declared incompatibility)."""

    code = "protocol_conflict"


class ProtocolFileError(ProtocolError):
    """A protocol, adaptation or variant file does not validate.

    ``problems`` lists every problem as ``{"file", "line", "field", "message"}``.
    """

    code = "invalid_protocol_file"

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, problems=problems or [])
        self.problems = problems or []


class MissingExtra(IptflowError):
    """An optional feature needs a package that is not installed (e.g. ``iptflow[fhir]``)."""

    code = "missing_extra"

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package}: pip install 'iptflow[{extra}]'",
            extra=extra,
            package=package,
        )
        self.extra = extra


class CourseFileError(IptflowError):
    """A course file cannot be used at all (replay exits 2)."""

    code = "unusable_course_file"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = ":".join(str(p) for p in (file, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message, file=file, line=line)
        self.file = file
        self.line = line


class UnknownEventType(IptflowError):
    """An event type the course's protocol does not know, asked about by name (e.g.
    ``Course.unmet_requirements``); an *event* of an unknown type is rejected ``invalid_event``."""

    code = "unknown_event_type"


class EventRejected(IptflowError):
    """Raised by the raising variants of the API (``Course.open``) when an event is rejected.

    ``rejection`` holds the :class:`iptflow.results.Rejection`.
    """

    code = "event_rejected"

    def __init__(self, rejection: Any) -> None:
        super().__init__(f"{rejection.code}: {rejection.message}")
        self.rejection = rejection
        self.code = rejection.code


class PluginError(IptflowError):
    """A plugin failed: the message names the plugin and the hook."""

    code = "plugin_error"

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        super().__init__(message, plugin=plugin, hook=hook)
        self.plugin = plugin
        self.hook = hook


class InvalidAsOf(IptflowError):
    """The time a course's agenda (or a worklist) is asked for cannot be used: not an RFC 3339
    date-time with a time zone, or earlier than the course's last accepted event (the agenda
    looks forward from what the course knows; it never guesses what was due in the past)."""

    code = "invalid_as_of"
