"""iptflow: courses of Interpersonal Psychotherapy as finite-state machines.

The library API in one place::

    from iptflow import Course
    course = Course.open({...course_opened...})
    result = course.apply({...event...})     # Accepted or Rejection (changes nothing)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .course import Course
from .errors import (
    CourseFileError,
    EventRejected,
    IptflowError,
    PluginError,
    ProtocolConflict,
    ProtocolError,
    ProtocolFileError,
    UnknownAdaptation,
    UnknownProtocol,
)
from .events import Event, EventType
from .hookspecs import hookimpl
from .plugins import load_plugins
from .protocol import AdaptationDef, ProtocolDef, ResolvedProtocol
from .registry import Registry, default_registry, load_adaptation, load_protocol_file
from .results import Accepted, Deviation, Outcome, Rejection

try:
    __version__ = version("iptflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Accepted",
    "AdaptationDef",
    "Course",
    "CourseFileError",
    "Deviation",
    "Event",
    "EventRejected",
    "EventType",
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
    "UnknownProtocol",
    "__version__",
    "default_registry",
    "hookimpl",
    "load_adaptation",
    "load_plugins",
    "load_protocol_file",
]
