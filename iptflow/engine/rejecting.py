"""What the engine answers when an event cannot go on: the rejections a course builds in more
than one place, the error naming a plugin whose event code raised, and :class:`NoEventData`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iptflow.engine.jsonio import value_problem
from iptflow.engine.results import Rejection
from iptflow.errors import PluginError

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.machine import BoundRequirement, CompiledProtocol

__all__ = ["NoEventData", "failures", "guard_rejection", "limit_rejection", "plugin_error"]


class NoEventData:
    """Stands in for an event of ``event_type`` whose data is not known (asking which
    requirements are unmet): it has a ``type`` and raises AttributeError for any field."""

    def __init__(self, event_type: str) -> None:
        self.type = event_type

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def plugin_error(
    compiled: CompiledProtocol, etype: str, part: str, exc: Exception
) -> PluginError:
    plugin = compiled.registry.event_plugins.get(etype)
    return PluginError(
        f"plugin {plugin}: the {part} of event {etype} (hook register_events) raised "
        f"{type(exc).__name__}: {exc}",
        plugin=plugin,
        hook="register_events",
    )


def failures(
    requires: tuple[BoundRequirement, ...], course: Course, event: Any
) -> list[tuple[str, str]]:
    """``(name, message)`` of every requirement that does not hold, in protocol order (what
    :meth:`BoundRequirement.failure` gives, without a method call per requirement)."""
    out: list[tuple[str, str]] = []
    for r in requires:
        try:
            failed = r.fn(course, event, **r.params) if r.params else r.fn(course, event)
        except Exception as exc:  # a plugin's guard failed: name it, change nothing
            raise r.error(exc) from exc
        if failed:
            out.append((r.name, r.message or failed))
    return out


def limit_rejection(etype: str | None, problem: str) -> Rejection:
    """The ``invalid_event`` of an event beyond the JSON limits (:mod:`iptflow.engine.jsonio`)."""
    named = etype is not None and value_problem(etype) is None  # not a type holding a surrogate
    return Rejection("invalid_event", f"{etype}: {problem}" if named else problem, etype)


def guard_rejection(etype: str, failed: list[tuple[str, str]]) -> Rejection:
    lead = (
        "the course cannot be opened: " if etype == "course_opened" else f"{etype} is not possible yet: "
    )
    return Rejection(
        "guard_failed",
        lead + "; ".join(m for _, m in failed),
        etype,
        tuple(name for name, _ in failed),
    )
