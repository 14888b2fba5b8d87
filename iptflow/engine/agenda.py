"""A course's agenda: what it needs next, as of a given time (docs/worklist.md).

The engine never reads the clock: the time is a parameter. Every item is derived from the
course's resolved protocol and its facts, never from rules written per protocol:

* ``review_open``: each open review (``[reviews]``), with the event that opened it, or the
  measure whose instrument's ``opens_reviews`` trigger fired;
* ``session_overdue``: a state that holds sessions (it allows ``session_held`` and the
  session's requirements hold) whose next session is due (``[agenda] session_every_days``
  after the last one, or the maintenance frequency); urgent once the protocol's
  ``session_gap`` deviation parameter has elapsed in a state where that deviation is raised;
* ``measure_due``: the outcome instrument not measured for ``[agenda] outcome_every_days``
  in a state that holds sessions;
* ``next_phase``: each phase-advancing event the state allows, with its unmet requirements
  (evaluated at ``as_of``); due when the state cannot go on without it.

Plugins add items through the ``agenda_items`` hook (:func:`requirement_items` turns a
plugin's own requirements into items). :meth:`iptflow.engine.registry.Registry.agenda` puts
them together; ``Course.agenda`` is the public entry point.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from iptflow.errors import InvalidAsOf, PluginError

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.machine import BoundRequirement, Route

SEVERITIES: tuple[str, ...] = ("urgent", "due", "info")
"""Item severities, most pressing first (the order of a worklist)."""

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_FAR = datetime.max


@dataclass(frozen=True, slots=True)
class AgendaItem:
    """One thing a course needs.

    :param kind: a stable name (``review_open``, ``session_overdue``, ``measure_due``,
        ``next_phase``, ``contract_missing``, or a plugin's own).
    :param severity: ``urgent``, ``due`` or ``info``.
    :param message: what to do, in a clinician's words.
    :param resolved_by: the event types that would resolve it.
    :param due: when it fell (or falls) due, if it has a time.
    :param details: JSON-ready specifics (e.g. the review and what opened it).
    :param source: the plugin that contributed it (set when the agenda is assembled).
    """

    kind: str
    severity: str
    message: str
    resolved_by: tuple[str, ...] = ()
    due: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"an agenda item's kind must be a non-empty string, got {self.kind!r}")
        if self.severity not in _RANK:
            raise ValueError(
                f"agenda item {self.kind}: severity must be one of {', '.join(SEVERITIES)}, "
                f"got {self.severity!r}"
            )
        if self.due is not None and (not isinstance(self.due, datetime) or self.due.tzinfo is None):
            raise ValueError(f"agenda item {self.kind}: due must be a datetime with a time zone")
        object.__setattr__(self, "resolved_by", tuple(self.resolved_by))

    def sort_key(self) -> tuple[int, bool, bool, datetime, str]:
        """Urgent first, then due, then info; open safety reviews first among the urgent;
        within that by due time (none last)."""
        due = self.due.astimezone(UTC).replace(tzinfo=None) if self.due else _FAR
        return (_RANK[self.severity], self.kind != "review_open", self.due is None, due, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "resolved_by": list(self.resolved_by),
            "due": _iso(self.due) if self.due else None,
            "details": dict(self.details),
            "source": self.source,
        }


def _iso(at: datetime) -> str:
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_as_of(as_of: datetime | str) -> datetime:
    """``as_of`` as an aware datetime; :class:`InvalidAsOf` for anything else."""
    if isinstance(as_of, str):
        try:
            parsed = datetime.fromisoformat(as_of.strip())
        except ValueError:
            raise InvalidAsOf(
                f"as-of time {as_of!r} is not an RFC 3339 date-time (e.g. 2025-03-03T08:00:00Z)"
            ) from None
        as_of = parsed
    if not isinstance(as_of, datetime):
        raise InvalidAsOf(f"as-of time must be a datetime or an RFC 3339 string, got {type(as_of).__name__}")
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise InvalidAsOf(f"as-of time {as_of.isoformat()} has no time zone (add Z or +hh:mm)")
    return as_of


def check_as_of(course: Course, as_of: datetime | str) -> datetime:
    """``as_of`` parsed, and not earlier than the course's last accepted event."""
    when = parse_as_of(as_of)
    last = course.facts.last_at
    if last is not None and when < last:
        raise InvalidAsOf(
            f"course {course.course_id}: as-of time {_iso(when)} is earlier than its last accepted "
            f"event ({_iso(last)}); ask for the agenda at or after that time",
            course_id=course.course_id,
            last_at=_iso(last),
        )
    return when


# -- evaluating requirements at a time -----------------------------------------------------------
class _Probe:
    """An event of ``type`` at ``at`` whose data is unknown: a requirement that reads event
    data (a session number, a level) cannot be judged and is left out."""

    __slots__ = ("type", "at")

    def __init__(self, event_type: str, at: datetime) -> None:
        self.type = event_type
        self.at = at

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def unmet(course: Course, event_type: str, as_of: datetime) -> list[tuple[BoundRequirement, str]]:
    """Requirements of the route ``event_type`` would take now that fail at ``as_of``
    (the route the engine would choose: :meth:`CompiledProtocol.route`)."""
    route = course.compiled.route(course.state, event_type, course.facts)
    return [] if route is None else _unmet_of(course, route, event_type, as_of)


def _unmet_of(
    course: Course, route: Route, event_type: str, as_of: datetime
) -> list[tuple[BoundRequirement, str]]:
    probe = _Probe(event_type, as_of)
    out = []
    for req in route.requires:
        try:
            msg = req.failure(course, probe)
        except (AttributeError, PluginError):
            continue  # it reads event data the agenda does not have
        if msg:
            out.append((req, msg))
    return out


def resolving_event(req: BoundRequirement) -> str | None:
    """The event that meets a requirement, when its data names one (``event_type``)."""
    value = req.params.get("event_type")
    return value if isinstance(value, str) else None


def requirement_items(
    course: Course,
    as_of: datetime,
    kinds: Mapping[str, str],
    *,
    severity: str = "due",
    resolved_by: Mapping[str, tuple[str, ...]] | None = None,
) -> list[AgendaItem]:
    """Items for a plugin's requirements that an event the course's state allows still needs.

    :param kinds: requirement name (as in the plugin's protocol data) -> item kind.
    :param resolved_by: requirement name -> the events that meet it, for requirements whose
        data names no ``event_type`` (e.g. a measure of an instrument).
    :returns: one item per unmet requirement, its message the requirement's own (from the
        protocol data or its guard), naming the events that need it; ``resolved_by`` is the
        event the requirement's ``event_type`` parameter names, else ``resolved_by[name]``.
    """
    found: dict[str, tuple[BoundRequirement, str, list[str]]] = {}
    for event_type in _events_with_routes(course):
        for req, msg in unmet(course, event_type, as_of):
            if req.name in kinds:
                entry = found.setdefault(req.name, (req, msg, []))
                entry[2].append(event_type)
    items = []
    for name, (req, msg, needed_for) in found.items():
        event = resolving_event(req)
        events = (event,) if event else tuple((resolved_by or {}).get(name, ()))
        items.append(AgendaItem(
            kinds[name], severity, f"{msg} (needed for {' and '.join(needed_for)})", events,
            details={"requirement": name, "needed_for": needed_for},
        ))
    return items


def _events_with_routes(course: Course) -> list[str]:
    compiled = course.compiled
    return [e for e in compiled.allowed_lists.get(course.state, ())
            if compiled.route(course.state, e, course.facts) is not None]


# -- the items the engine derives ---------------------------------------------------------------
def core_items(course: Course, as_of: datetime) -> list[AgendaItem]:
    """review_open, session_overdue, measure_due and next_phase items (none once closed)."""
    if course.is_closed:
        return []
    session_unmet = _session_unmet(course, as_of)
    items = _review_items(course)
    items += _session_items(course, as_of, session_unmet)
    items += _measure_items(course, as_of, session_unmet)
    items += _next_phase_items(course, as_of, session_unmet)
    return items


def _session_unmet(course: Course, as_of: datetime) -> list[tuple[BoundRequirement, str]] | None:
    """None when the state holds no sessions; else the session's unmet requirements."""
    route = course.compiled.route(course.state, "session_held", course.facts)
    return None if route is None else _unmet_of(course, route, "session_held", as_of)


def _at(raw: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(raw["at"])


def _review_items(course: Course) -> list[AgendaItem]:
    """Each open review, with what opened it (replaying which events opened and closed it)."""
    open_now = course.facts.open_reviews
    if not open_now:
        return []
    compiled = course.compiled
    protocol = course.protocol
    measures = {m.seq: m for m in course.facts.measures}
    opened: dict[str, tuple[int, Mapping[str, Any], str]] = {}
    for seq, raw in enumerate(course.history, start=1):
        etype = raw.get("type")
        openers = [(review, str(etype)) for review in compiled.review_openers.get(etype, ())]
        measure = measures.get(seq) if etype == "measure_recorded" else None
        if measure is not None:
            openers += _measure_openers(course, measure)
        for review in compiled.review_closers.get(etype, ()):
            opened.pop(review, None)
        for review, what in openers:
            opened.setdefault(review, (seq, raw, what))
    items = []
    for review in sorted(open_now):
        rdef = protocol.reviews.get(review)
        title = rdef.title if rdef else f"{review} review"
        closers = tuple(rdef.closed_by) if rdef else ()
        details: dict[str, Any] = {"review": review}
        due = None
        if review in opened:
            seq, raw, what = opened[review]
            due = _at(raw)
            reason = raw.get("reason")
            if isinstance(reason, str) and reason:
                what += f": {reason}"
            details.update(opened_by=raw.get("type"), opened_seq=seq, opened_at=_iso(due))
            message = f"{title} open since {_short(due)} (opened by {what})"
        else:
            message = f"{title} open"
        if closers:
            message += f"; close it with {' or '.join(closers)}"
        items.append(AgendaItem("review_open", "urgent", message, closers, due, details))
    return items


def _measure_openers(course: Course, measure: Any) -> list[tuple[str, str]]:
    """The reviews a measure opened, each with what fired (the instrument's ``opens_reviews``)."""
    instrument = course.protocol.instruments.get(measure.instrument)
    out = []
    for trigger in instrument.opens_reviews if instrument else ():
        if not trigger.fires(measure.score, measure.items, measure.item9):
            continue
        what = f"{measure.instrument} score {measure.score:g}"
        if trigger.item is not None:
            items = measure.items
            value = items[trigger.item - 1] if items and len(items) >= trigger.item else None
            if value is None and trigger.item == 9:
                value = measure.item9
            what += f", item {trigger.item} " + ("unknown" if value is None else f"{value:g}")
        out.append((trigger.review, what))
    return out


def _short(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M") + ("" if at.utcoffset() == timedelta(0) else at.strftime(" %z"))


def _span(delta: timedelta) -> str:
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours = rest // 3600
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if hours or not parts:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts)


def check_param(course: Course, code: str, name: str) -> Any:
    """A deviation's parameter as compiled for this course (a variant's value counts), or the
    check function's default when the protocol data leaves it out; None without the deviation."""
    for check in course.compiled.checks:
        if check.code == code:
            if name in check.params:
                return check.params[name]
            param = inspect.signature(check.fn).parameters.get(name)
            return None if param is None or param.default is inspect.Parameter.empty else param.default
    return None


def _entered_at(course: Course) -> datetime:
    """When the course entered its current state (the last event whose route leads there)."""
    compiled = course.compiled
    into = {ev for routes in compiled.allowed.values() for ev, rs in routes.items()
            if any(r.dest == course.state for r in rs)}
    for raw in reversed(course.history):
        if raw.get("type") in into:
            return _at(raw)
    return _at(course.history[0])


def _session_items(
    course: Course, as_of: datetime, session_unmet: list[tuple[BoundRequirement, str]] | None
) -> list[AgendaItem]:
    if session_unmet is None or session_unmet:
        return []  # no sessions here, or none allowed now (next_phase says why)
    facts = course.facts
    agenda = course.protocol.agenda
    every = agenda.session_every_days
    acute = course.state in course.protocol.acute_states
    if not acute and facts.maintenance:
        every = agenda.maintenance_frequency_days.get(facts.maintenance.get("frequency"), every)
    last = facts.last_session_at
    since = last if last is not None else _entered_at(course)
    due = since + timedelta(days=every)
    if as_of < due:
        return []
    gap = check_param(course, "session_gap", "days") if acute and last is not None else None
    details: dict[str, Any] = {"last_session_at": _iso(last) if last else None,
                               "every_days": every}
    what = (f"no session for {_span(as_of - since)} (last {_short(since)})" if last is not None
            else f"no session since {course.state} started {_short(since)}")
    message = f"{what}; the next session was due {_short(due)}"
    severity = "due"
    if gap is not None:
        limit = last + timedelta(days=gap)
        details.update(gap_days=gap, deviation_after=_iso(limit))
        if as_of >= limit:
            severity = "urgent"
            message += f"; a session from now on raises session_gap (more than {gap:g} days)"
        else:
            message += f"; a session after {_short(limit)} raises session_gap"
    return [AgendaItem("session_overdue", severity, message, ("session_held",), due, details)]


def _measure_items(
    course: Course, as_of: datetime, session_unmet: list[tuple[BoundRequirement, str]] | None
) -> list[AgendaItem]:
    facts = course.facts
    if session_unmet is None or facts.baseline is None:
        return []
    names = [facts.baseline.instrument]
    names += [i for i in course.protocol.outcome_measure_also if i not in names]
    latest = next((m for m in reversed(facts.measures) if m.instrument in names), facts.baseline)
    every = course.protocol.agenda.outcome_every_days
    due = latest.at + timedelta(days=every)
    if as_of < due:
        return []
    title = course.protocol.instruments[facts.baseline.instrument].title
    message = (f"measure {facts.baseline.instrument} ({title}): last measured {_short(latest.at)}, "
               f"{_span(as_of - latest.at)} ago (due every {every:g} days)")
    details = {"instrument": facts.baseline.instrument, "instruments": names,
               "last_measured_at": _iso(latest.at), "every_days": every}
    return [AgendaItem("measure_due", "due", message, ("measure_recorded",), due, details)]


def phase_events(course: Course) -> list[str]:
    """Events that move the course on from its state: a route with a destination, other than
    the exits every active state allows (discontinuation, referral)."""
    compiled = course.compiled
    active = compiled.allowed
    out = []
    for event in compiled.allowed_lists.get(course.state, ()):
        route = compiled.route(course.state, event, course.facts)
        if route is None or route.dest is None:
            continue
        if route.dest in compiled.final_states and all(event in allowed for allowed in active.values()):
            continue
        out.append(event)
    return out


def _next_phase_items(
    course: Course, as_of: datetime, session_unmet: list[tuple[BoundRequirement, str]] | None
) -> list[AgendaItem]:
    blocked = session_unmet is None or bool(session_unmet)
    severity = "due" if blocked else "info"
    items = []
    for event in phase_events(course):
        failing = unmet(course, event, as_of)
        details: dict[str, Any] = {
            "event": event,
            "unmet": [{"requirement": r.name, "message": m, "resolved_by": resolving_event(r)}
                      for r, m in failing],
        }
        window = _window(course, event)
        if failing:
            message = f"{event} is not possible yet: " + "; ".join(m for _, m in failing)
        else:
            message = f"{event} can be recorded now"
        if window is not None:
            details.update(window)
            message += _window_text(window, not failing)
        if session_unmet:
            message += (f" (no more sessions in {course.state}: "
                        + "; ".join(m for _, m in session_unmet) + ")")
        items.append(AgendaItem("next_phase", severity, message, (event,), None, details))
    return items


def _window(course: Course, event: str) -> dict[str, Any] | None:
    """Where an event's route has a 'remaining sessions at most N' requirement (the termination
    window), the remaining sessions and N."""
    route = course.compiled.route(course.state, event, course.facts)
    planned = course.facts.planned_sessions
    if route is None or planned is None:
        return None
    for req in route.requires:
        if req.guard == "remaining_sessions_at_most" and isinstance(req.params.get("sessions"), int):
            return {"remaining_sessions": planned - course.facts.acute_sessions,
                    "window_at_remaining": req.params["sessions"]}
    return None


def _window_text(window: Mapping[str, Any], open_now: bool) -> str:
    remaining, at_most = window["remaining_sessions"], window["window_at_remaining"]
    if open_now:
        return f" ({remaining} contracted sessions remain: the window opened at {at_most})"
    more = remaining - at_most
    return f" (the window opens after {more} more session{'s' if more != 1 else ''})"


def assemble(items: Iterable[AgendaItem]) -> list[AgendaItem]:
    """Items in worklist order: urgent, due, info; by due time within each."""
    return sorted(items, key=AgendaItem.sort_key)
