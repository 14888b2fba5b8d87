"""Building courses for generated course files, and making a requirement fail.

A :class:`CourseBuilder` runs the engine while it writes one course file, so every
expectation in it is exact, and records which routes the course took and which requirements
failed. :func:`break_requirement` searches well-formed payloads (and repeats of internal
events) for one that makes a given requirement fail. ``iptflow.research.generate`` uses both
to cover every transition and requirement, and to write random courses.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.machine import CompiledProtocol, Route
from iptflow.engine.results import Rejection
from iptflow.research.clinician import SESSION, Clinician, Stuck, copy_course

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
STEP = timedelta(hours=12)
MAX_STEPS = 400
REPEAT_LIMIT = 30

RouteKey = tuple[str, str, int]  # (state, event, index of the route in allowed[state][event])



@dataclass
class GeneratedCourse:
    """One course file: its name and its lines (events, possibly with expect_error, and expects)."""

    name: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines)


class CourseBuilder:
    """Builds one course by running the engine; records what it covered."""

    def __init__(self, compiled: CompiledProtocol, clinician: Clinician, course_id: str,
                 name: str) -> None:
        self.compiled = compiled
        self.clinician = clinician
        self.course_id = course_id
        self.out = GeneratedCourse(name)
        self.course: Course | None = None
        self.clock = START
        self.routes: set[RouteKey] = set()
        self.failed: set[str] = set()

    def _at(self) -> str:
        self.clock += STEP
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def open(self, fields: dict[str, Any]) -> bool:
        event = {"type": "course_opened", "at": self._at(), "course_id": self.course_id, **fields}
        course, result = Course.try_open(event, self.compiled.registry, notify=False,
                                         compiled=self.compiled)
        line = dict(event)
        if course is None:
            line["expect_error"] = result.code
            self.failed.update(getattr(result, "guards", ()))
        self.out.lines.append(line)
        self.course = course
        return course is not None

    def fire(self, payload: dict[str, Any]) -> bool:
        course = self.course
        assert course is not None
        event = {"type": payload["type"], "at": self._at(), **{k: v for k, v in payload.items()
                                                               if k != "type"}}
        routes = self.compiled.allowed.get(course.state, {}).get(event["type"])
        key = None
        if routes:
            key = (course.state, event["type"],
                   routes.index(self.compiled.route(course.state, event["type"], course.facts)))
        before = course.state
        result = course.apply(event)
        line = dict(event)
        if isinstance(result, Rejection):
            line["expect_error"] = result.code
            self.failed.update(result.guards)
            self.out.lines.append(line)
            return False
        if key is not None:
            self.routes.add(key)
        self.out.lines.append(line)
        if course.state != before:
            self.out.lines.append({"expect": {"state": course.state}})
        return True

    def advance(self, goal: str, limit: int = MAX_STEPS) -> bool:
        """Record what the goal needs (sessions included); True when the goal is possible."""
        course = self.course
        assert course is not None
        for _ in range(limit):
            if goal not in self.compiled.allowed.get(course.state, {}):
                return False
            try:
                step = self.clinician.next_step(course, goal)
            except Stuck:
                return False
            if step is None:
                return True
            payload = self.clinician.payload(course, "session_held") if step == SESSION else step
            if not self.fire(payload):  # pragma: no cover - the clinician only proposes valid steps
                return False
        return False

    def finish(self) -> GeneratedCourse:
        course = self.course
        if course is not None:
            outcome = course.outcome
            codes = [d.code for d in course.deviations]
            self.out.lines.append({"expect": {
                "state": course.state,
                "sessions_held": course.sessions_held,
                "outcome_status": outcome.status if outcome else None,
                "deviations": codes,
                "open_reviews": course.open_reviews,
            }})
        return self.out


def payload_variants(compiled: CompiledProtocol, clinician: Clinician, course: Course,
              etype: str, route: Route | None) -> Iterator[dict[str, Any]]:
    """The valid payload of an event, then well-formed payloads that may break its requirements."""
    at = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    for payload in _candidates(compiled, clinician, course, etype, route):
        if not isinstance(compiled.parse({**payload, "at": at}), str):
            yield payload


def _literal_options(annotation: Any) -> list[Any]:
    """The values a ``Literal`` annotation (possibly inside Annotated or a union) allows."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [v for arg in typing.get_args(annotation) for v in _literal_options(arg)]


def _candidates(compiled: CompiledProtocol, clinician: Clinician, course: Course,
                etype: str, route: Route | None) -> Iterator[dict[str, Any]]:
    base = clinician.payload(course, etype)
    yield base
    protocol = compiled.protocol
    rng = protocol.session_range
    numbers = sorted({0, 1, rng.min - 1, rng.max + 1, course.facts.sessions_held + 5,
                      course.facts.acute_sessions - 1} - {-1})
    strings = sorted({v for r in (route.requires if route else ()) for v in r.params.values()
                      if isinstance(v, str)})
    model = compiled.event_types[etype].model
    for name, info in model.model_fields.items():
        if name in ("type", "at", "actor"):
            continue
        text = repr(info.annotation)
        if name in ("planned_sessions", "number"):
            for n in numbers:
                yield {**base, name: n}
        elif name == "techniques":
            for s in strings:
                yield {**base, name: [s]}
        elif name == "area":
            for area in course.facts.problem_areas:
                yield {"type": etype, **area}
            for area in protocol.problem_areas:
                yield {k: v for k, v in base.items() if k != "stage"} | {"area": area} | (
                    {"stage": "impasse"} if area == "role_dispute" else {})
        elif name == "diagnosis":
            yield {**base, name: "adjustment_disorder"}
        elif name == "psychotic_features" or "bool" in text and name not in base:
            yield {**base, name: True}
        elif "Literal" in text and name in base:  # every option, also with the flags flipped
            flipped = {k: not v for k, v in base.items() if isinstance(v, bool)}
            for option in _literal_options(info.annotation):
                yield {**base, name: option}
                yield {**base, **flipped, name: option}
        if name in base and not info.is_required():  # an optional field left out
            yield {k: v for k, v in base.items() if k != name}
    if etype == "measure_recorded":
        for review in sorted(protocol.reviews):
            opener = clinician.review_opener(course, review)
            if opener and opener["type"] == "measure_recorded":
                yield opener


def break_requirement(b: CourseBuilder, event: str, name: str) -> bool:
    """Make ``name`` fail for ``event`` here, and record the rejected event."""
    course = b.course
    compiled = b.compiled
    assert course is not None
    route = compiled.route(course.state, event, course.facts)
    if route is None or name not in {r.name for r in route.requires}:
        return False
    req = compiled.requirements[name]

    def fails(c: Course, payload: dict[str, Any]) -> bool:
        parsed = compiled.parse({**payload, "at": START.isoformat()})
        if isinstance(parsed, str):
            return False
        r = compiled.route(c.state, event, c.facts)
        return r is not None and name in {x.name for x in r.requires} and bool(req.failure(c, parsed))

    for payload in payload_variants(compiled, b.clinician, course, event, route):
        if fails(course, payload):
            b.fire(payload)
            return True
    for other in compiled.allowed_lists[course.state]:
        if any(r.dest for r in compiled.allowed[course.state][other]):
            continue
        for payload in payload_variants(compiled, b.clinician, course, other, None):
            trial = copy_course(course)
            steps: list[dict[str, Any]] = []
            for _ in range(REPEAT_LIMIT):
                step = _renumber(payload, course, trial)
                if not trial.apply({**step, "at": (trial.facts.last_at or START).isoformat()}).ok:
                    break
                steps.append(step)
                broken = next((v for v in payload_variants(compiled, b.clinician, trial, event, route)
                               if fails(trial, v)), None)
                if broken is not None:
                    for step in steps:
                        b.fire(step)
                    b.fire(broken)
                    return True
    return False


def _renumber(payload: dict[str, Any], original: Course, course: Course) -> dict[str, Any]:
    """A repeated session_held keeps its number valid (or keeps it wrong by the same amount)."""
    if payload.get("type") != "session_held" or "number" not in payload:
        return dict(payload)
    shift = payload["number"] - original.facts.sessions_held
    return {**payload, "number": course.facts.sessions_held + shift}
