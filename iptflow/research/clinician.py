"""A protocol-following clinician: what to record next to make an event possible.

Used by course generation (``iptflow generate``) and cohort simulation (``iptflow simulate``).
Nothing here is written per adaptation: what a course needs comes from the resolved
protocol's requirements. Each requirement names a guard; :data:`GUARD_ACTIONS` (data) says
which event satisfies a guard, with ``{param}`` placeholders filled from the requirement's
parameters. A requirement whose guard is not in the table (a plugin's own guard) is probed:
every event the state allows is tried on a copy of the course, and the first one that makes
the requirement hold, or changes what it reports, is remembered for that protocol.

Event payloads are built from the event's pydantic model (required fields get plain values)
and from the protocol (indications, problem areas, the session range, instrument ranges).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from iptflow.engine.course import Course, NoEventData
from iptflow.engine.machine import CompiledProtocol

#: guard name -> the action that satisfies it ("event:TYPE", "measure:INSTRUMENT",
#: "session", "close_reviews", "open_review:REVIEW"); ``{param}`` is a requirement parameter.
GUARD_ACTIONS: Mapping[str, str] = {
    "event_recorded": "event:{event_type}",
    "sessions_held_at_least": "session",
    "remaining_sessions_at_most": "session",
    "measure_recorded": "measure:{instrument}",
    "measure_in_state": "measure:{instrument}",
    "outcome_measure_in_state": "measure:baseline",
    "no_recurrence_in_progress": "measure:below_recurrence",
    "suicide_screen": "measure:screen",
    "baseline_recorded": "measure:primary",
    "diagnosis_indicated": "event:diagnosis_confirmed",
    "no_psychotic_features": "event:diagnosis_confirmed",
    "problem_area_chosen": "event:problem_area_selected",
    "contract_agreed": "event:formulation_agreed",
    "no_open_review": "close_reviews",
    "review_open": "open_review:{review}",
}

#: Fixed values for fields whose meaning the model's type alone does not give.
FIELD_VALUES: Mapping[str, Any] = {
    "warning_signs": ["sleeping badly", "withdrawing from friends"],
    "frequency": "monthly",
    "reason": "synthetic course: reason recorded by the clinician",
    "medication": "lithium",
    "level": "low",
    "safety_plan": True,
    "handover": "the referring clinician",
}

SESSION = "session"


def _plain_value(annotation: Any, name: str) -> Any:
    """A valid plain value for a required model field."""
    if name in FIELD_VALUES:
        return FIELD_VALUES[name]
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _plain_value(get_args(annotation)[0], name)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _plain_value(options[0], name)
    if origin is list:
        return [_plain_value(get_args(annotation)[0], name)]
    if annotation is bool:
        return False
    if annotation is int:
        return 1
    if annotation is float:
        return 0.0
    return f"{name.replace('_', ' ')} recorded"


def mid_score(compiled: CompiledProtocol, instrument: str) -> int | float:
    inst = compiled.protocol.instruments[instrument]
    value = inst.min + 1 if inst.max is None else inst.min + (inst.max - inst.min) / 2
    return int(value) if inst.integer else round(float(value), 1)


@dataclass
class Clinician:
    """Decides the next event that brings a course closer to a goal event."""

    compiled: CompiledProtocol
    score: Callable[[Course, str], int | float] | None = None
    planned_sessions: Callable[[Course], int] | None = None
    preferred_instruments: tuple[str, ...] = ()
    _probed: dict[tuple[str, str], str | None] = field(default_factory=dict)

    # -- payloads ------------------------------------------------------------------------------
    def primary_instrument(self) -> str:
        primaries = self.compiled.protocol.primary_instruments
        for name in self.preferred_instruments:
            if name in primaries:
                return name
        return primaries[0]

    def measure(self, course: Course, instrument: str) -> dict[str, Any]:
        """A measure. ``baseline``/``primary``: of the outcome instrument (a primary one before
        there is a baseline); ``screen``: a suicide screen (an instrument that takes item9);
        ``below_recurrence``: of the outcome instrument, below its recurrence threshold."""
        instruments = self.compiled.protocol.instruments
        below = instrument == "below_recurrence"
        if instrument in ("baseline", "primary", "below_recurrence"):
            base = course.facts.baseline
            instrument = base.instrument if base is not None else self.primary_instrument()
        elif instrument == "screen":
            base = course.facts.baseline
            screens = [n for n in self.compiled.protocol.primary_instruments if instruments[n].item9]
            screens += sorted(n for n, i in instruments.items() if i.item9 and n not in screens)
            instrument = base.instrument if base and base.instrument in screens else screens[0]
        value = self.score(course, instrument) if self.score else mid_score(self.compiled, instrument)
        threshold = instruments[instrument].recurrence_at_least
        if below and threshold is not None and value >= threshold:
            value = type(value)(max(instruments[instrument].min, threshold - 1))
        out: dict[str, Any] = {"type": "measure_recorded", "instrument": instrument, "score": value}
        if instruments[instrument].item9:  # protocol 2.0.0: the suicide item is known (0)
            out["item9"] = 0
        return out

    def payload(self, course: Course, etype: str) -> dict[str, Any]:
        """A valid payload (without ``at``) for an event type in this course."""
        protocol = self.compiled.protocol
        if etype == "measure_recorded":
            return self.measure(course, "primary")
        if etype == "session_held":
            return {"type": etype, "number": course.facts.sessions_held + 1}
        if etype == "diagnosis_confirmed":
            return {"type": etype, "diagnosis": protocol.indications[0]}
        if etype == "problem_area_selected":
            chosen = {a["area"] for a in course.facts.problem_areas}
            for area in protocol.problem_areas:
                if area not in chosen:
                    out = {"type": etype, "area": area}
                    if area == "role_dispute":
                        out["stage"] = "renegotiation"
                    return out
            return {"type": etype, "area": protocol.problem_areas[0]}
        if etype == "formulation_agreed":
            rng = protocol.session_range
            planned = self.planned_sessions(course) if self.planned_sessions else rng.min
            planned = max(planned, course.facts.acute_sessions, rng.min)
            return {"type": etype, "planned_sessions": min(planned, rng.max)}
        if etype == "maintenance_started":
            return {"type": etype, "frequency": "monthly", "planned_sessions": 2}
        model = self.compiled.event_types[etype].model
        out: dict[str, Any] = {"type": etype}
        for name, info in model.model_fields.items():
            if name in ("type", "at", "actor") or not info.is_required():
                continue
            out[name] = _plain_value(info.annotation, name)
        if "handover" in model.model_fields and course.facts.open_reviews:
            out["handover"] = FIELD_VALUES["handover"]  # protocol 2.0.0: who holds the review
        return out

    # -- deciding ------------------------------------------------------------------------------
    def allows(self, course: Course, etype: str) -> bool:
        return etype in self.compiled.allowed.get(course.state, {})

    def next_step(self, course: Course, goal: str) -> dict[str, Any] | str | None:
        """The next event (payload without ``at``) towards ``goal``.

        Returns ``None`` when the goal's requirements hold now, :data:`SESSION` when only more
        sessions will make them hold, or an event payload. Raises :class:`Stuck` when no
        event the state allows can help.
        """
        unmet = course.unmet_requirements(goal)
        if not unmet:
            return None
        if unmet[0][0] in ("not_allowed", "course_closed"):  # no requirement: the state itself
            raise Stuck(f"{goal} in {course.state}: {unmet[0][1]}")
        needs_session = False
        for name, message in unmet:
            step = self._action(course, name, message)
            if step == SESSION:
                needs_session = True
                continue
            if step is not None:
                return step
        if needs_session:
            return SESSION
        raise Stuck(f"{goal} in {course.state}: cannot satisfy {', '.join(n for n, _ in unmet)}")

    def _action(self, course: Course, name: str, message: str) -> dict[str, Any] | str | None:
        req = self.compiled.requirements[name]
        template = GUARD_ACTIONS.get(self.compiled.protocol.requirements[name].guard)
        try:
            action = template.format(**{"instrument": "baseline", **req.params}) if template else None
        except KeyError:
            action = None
        if action is None:
            return self._probe(course, name, message)
        if action == SESSION:
            return SESSION if self.allows(course, "session_held") else None
        kind, _, arg = action.partition(":")
        if kind == "measure":
            return self.measure(course, arg) if self.allows(course, "measure_recorded") else None
        if kind == "event":
            return self.payload(course, arg) if self.allows(course, arg) else None
        if kind == "close_reviews":
            for review in sorted(course.facts.open_reviews):
                rdef = self.compiled.protocol.reviews.get(review)
                for closer in rdef.closed_by if rdef else ():
                    if self.allows(course, closer):
                        return self.payload(course, closer)
            return None
        if kind == "open_review":
            return self.review_opener(course, arg)
        return None  # pragma: no cover - GUARD_ACTIONS only holds the kinds above

    def review_opener(self, course: Course, review: str) -> dict[str, Any] | None:
        """An event that opens a review: one of its ``opened_by`` events or a measure."""
        protocol = self.compiled.protocol
        rdef = protocol.reviews.get(review)
        for opener in rdef.opened_by if rdef else ():
            if self.allows(course, opener):
                return self.payload(course, opener)
        if not self.allows(course, "measure_recorded"):
            return None
        for name, inst in sorted(protocol.instruments.items()):
            for trig in inst.opens_reviews:
                if trig.review != review:
                    continue
                if trig.score_at_least is not None:
                    score = trig.score_at_least
                    score = int(score) if inst.integer and float(score).is_integer() else score
                    return {"type": "measure_recorded", "instrument": name, "score": score}
                if trig.item is not None and inst.items >= trig.item:
                    items = [inst.item_bounds(i)[0] for i in range(1, inst.items + 1)]
                    lo, hi = inst.item_bounds(trig.item)
                    items[trig.item - 1] = min(hi, int(trig.above or 0) + 1)
                    return {"type": "measure_recorded", "instrument": name, "score": sum(items),
                            "items": items}
        return None

    def _probe(self, course: Course, name: str, message: str) -> dict[str, Any] | None:
        key = (course.state, name)
        if key not in self._probed:
            self._probed[key] = None
            req = self.compiled.requirements[name]
            for etype in self.compiled.allowed_lists.get(course.state, ()):
                if any(r.dest is not None for r in self.compiled.allowed[course.state][etype]):
                    continue
                trial = copy_course(course)
                payload = self.payload(trial, etype)
                payload["at"] = trial.facts.last_at.isoformat() if trial.facts.last_at else None
                if not trial.apply(payload).ok:
                    continue
                try:
                    after = req.failure(trial, NoEventData(etype))
                except AttributeError:
                    continue
                if after != message:
                    self._probed[key] = etype
                    break
        etype = self._probed[key]
        return self.payload(course, etype) if etype is not None else None


class Stuck(Exception):
    """The clinician cannot make the goal event possible from here."""


def copy_course(course: Course) -> Course:
    """An independent copy of a course (rebuilt from its history, no observers)."""
    return Course.replay(course.history, course.compiled.registry, notify=False, compiled=course.compiled)
