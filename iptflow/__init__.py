"""iptflow: courses of Interpersonal Psychotherapy as finite-state machines.

The library API in one place::

    from iptflow import Course
    course = Course.open({...course_opened...})
    result = course.apply({...event...})     # Accepted or Rejection (changes nothing)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from iptflow.engine.agenda import AgendaItem
from iptflow.engine.course import Course
from iptflow.engine.events import Event, EventType
from iptflow.engine.hookspecs import hookimpl
from iptflow.engine.plugins import load_plugins
from iptflow.engine.registry import Registry, default_registry, load_adaptation, load_protocol_file
from iptflow.engine.results import Accepted, Deviation, Outcome, Rejection
from iptflow.errors import (
    CourseFileError,
    EventRejected,
    InvalidAsOf,
    IptflowError,
    PluginError,
    ProtocolConflict,
    ProtocolError,
    ProtocolFileError,
    UnknownAdaptation,
    UnknownEventType,
    UnknownProtocol,
    UnknownProtocolVersion,
)
from iptflow.protocol.models import AdaptationDef, ProtocolDef, ResolvedProtocol

try:
    __version__ = version("iptflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Accepted",
    "AdaptationDef",
    "AgendaItem",
    "Course",
    "CourseFileError",
    "Deviation",
    "Event",
    "EventRejected",
    "EventType",
    "InvalidAsOf",
    "IptflowError",
    "Outcome",
    "PluginError",
    "ProtocolConflict",
    "ProtocolDef",
    "ProtocolError",
    "ProtocolFileError",
    "Registry",
    "Rejection",
    "ResolvedProtocol",
    "UnknownAdaptation",
    "UnknownEventType",
    "UnknownProtocol",
    "UnknownProtocolVersion",
    "__version__",
    "default_registry",
    "hookimpl",
    "load_adaptation",
    "load_plugins",
    "load_protocol_file",
]
