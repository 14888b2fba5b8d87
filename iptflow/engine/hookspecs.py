"""Every hook a plugin can implement. Implement them with ``@iptflow.hookimpl``.

Registration hooks receive a ``register`` callback and call it once per thing they add;
they run once, when the registry is built (lazily, on first use). Observation hooks run
for every accepted event of every course: keep them fast, and do not change the course.
See docs/plugins.md for a step-by-step guide and docs/hooks.md for this reference.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from datetime import datetime

    from iptflow.engine.access import Principal
    from iptflow.engine.agenda import AgendaItem
    from iptflow.engine.course import Course
    from iptflow.engine.events import Event, EventType
    from iptflow.engine.results import Accepted
    from iptflow.protocol.models import AdaptationDef, ProtocolDef
    from iptflow.protocol.variants import VariantDef

hookspec = pluggy.HookspecMarker("iptflow")
hookimpl = pluggy.HookimplMarker("iptflow")


@hookspec
def register_protocols(
    register: Callable[[ProtocolDef | VariantDef | Path | str], None],
) -> None:
    """Register base protocols and variants.

    :param register: call with a :class:`~iptflow.ProtocolDef`, a
        :class:`~iptflow.protocol.variants.VariantDef`, or the path of a TOML file holding either
        (a file with ``extends`` is a variant). Ids must be unique across all plugins.
    """


@hookspec
def register_adaptations(register: Callable[[AdaptationDef], None]) -> None:
    """Register adaptations (IPT-A, IPSRT, ...) that courses can name in ``adaptations``.

    :param register: call with an :class:`~iptflow.AdaptationDef`: its states,
        transitions, requirements (named guards), instruments, problem areas, session range,
        review session, indications, formats, reviews, deviations and incompatibilities, and
        the versions of the base protocol it applies to (``base_versions``; register one per
        version of the adaptation). Use :func:`iptflow.load_adaptation` to read one from a TOML
        file next to your module.
    """


@hookspec
def register_guards(register: Callable[[str, Callable[..., str | None]], None]) -> None:
    """Register named guard functions that requirements in protocol data refer to.

    :param register: call as ``register(name, fn)``. ``fn(course, event, **params)`` returns
        ``None`` when the requirement holds, or what is missing in a clinician's words. It
        must only read the course. ``params`` come from the requirement's ``params`` table.
    """


@hookspec
def register_deviation_checks(register: Callable[..., None]) -> None:
    """Register named deviation checks that ``[[deviations]]`` entries refer to.

    :param register: call as ``register(name, fn)`` or ``register(name, fn, events=(...))``.
        ``fn(course, event, **params)`` runs for every event that passed its guards, before
        the event's effects, and returns a message when this event raises the deviation, else
        ``None``. ``events``, a collection of event types (e.g. ``("session_held",)``), are
        the only events it can raise a deviation on: it is not called for others. Without
        ``events`` it runs for every event.
    """


@hookspec
def register_events(register: Callable[[EventType], None]) -> None:
    """Register event types: a pydantic model (subclass of :class:`iptflow.Event`
    with ``type: Literal["name"]``) and optional ``check`` (protocol-dependent validation,
    failures are ``invalid_event``) and ``effect`` (how an accepted event changes facts).
    A later model of an existing event (more fields) is registered with ``revision=2`` (3...);
    a protocol uses it for the events its ``event_revisions`` table names.

    :param register: call with an :class:`~iptflow.EventType`.
    """


@hookspec
def event_accepted(course: Course, event: Event, result: Accepted) -> None:
    """Called after a course accepted an event (notifications, audit trails).

    Also called for ``course_opened``. Not called for rejected events, nor when a course is
    rebuilt with ``Course.replay(events, notify=False)``.
    If this hook raises, the event is undone (the course is as it was before it) and a
    :class:`~iptflow.errors.PluginError` names the plugin and the hook.

    :param course: the course, already changed by the event; read it, do not change it.
    :param event: the validated event model.
    :param result: what the event did (seq, state, deviations, reviews opened or closed).
    """


@hookspec
def state_changed(course: Course, source: str, dest: str, event_type: str) -> None:
    """Called when an accepted event moved a course from one state to another.

    Runs before ``event_accepted`` for the same event. If this hook raises, the event is undone
    and a :class:`~iptflow.errors.PluginError` names the plugin and the hook.

    :param course: the course, in its new state (read only).
    :param source: the state it left.
    :param dest: the state it entered.
    :param event_type: the event that moved it.
    """


@hookspec
def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem] | None:
    """Contribute items to a course's agenda (``Course.agenda``, the worklist).

    Called once per course each time its agenda is asked for, never for a closed course; the
    engine's own items (open reviews, overdue sessions, due measures, the next phase) are
    already derived. Return :class:`~iptflow.AgendaItem` objects (or ``None`` / ``[]`` for
    none); ``source`` is set to the plugin's name. Derive items from the course and its
    protocol data: :func:`iptflow.engine.agenda.requirement_items` turns the plugin's own
    requirements into items. If this hook raises or returns anything else, a
    :class:`~iptflow.errors.PluginError` names the plugin and the hook.

    :param course: the course (read only), not closed.
    :param as_of: the time the agenda is for: a timezone-aware datetime, not earlier than the
        course's last accepted event (the engine never reads the clock).
    """


@hookspec
def authorize(principal: Principal, action: str, course: Course | None) -> bool | None:
    """Decide whether a request to ``iptflow serve`` may do what it asks (docs/service.md#roles).

    Called once per request, before anything is written. Return ``True`` to allow, ``False``
    to deny (the request gets 403 and nothing is written), or ``None`` to leave the decision to
    the next plugin and, when every plugin abstains, to the default policy (clinicians open
    courses and record events; researchers read course summaries; auditors read and verify;
    admins manage tokens). The first answer that is not ``None`` wins, in pluggy's call order
    (the plugin registered last first). If this hook raises, the request fails with a 500
    problem naming the plugin and nothing is written.

    :param principal: who asks: an :class:`~iptflow.engine.access.Principal` with the token's
        ``token_id``, ``role`` (clinician, researcher, auditor, admin) and ``actor``.
    :param action: what is asked, one of :data:`iptflow.engine.access.ACTIONS` (e.g.
        ``record_event``, ``read_course``, ``manage_tokens``).
    :param course: the stored course the request is about, as it is now (read only), or
        ``None`` for requests about no single course (opening one, listing, protocols, tokens).
    """


HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, value in dict(globals()).items()
    if callable(value) and hasattr(value, "iptflow_spec")
)

__all__ = ["hookimpl", "hookspec", "HOOK_NAMES"]
