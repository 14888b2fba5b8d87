"""Generated course files: model-based tests derived from the compiled protocol.

``cover_transitions`` writes courses that together take every transition of the compiled
machine (every route of every (state, event) pair in ``CompiledProtocol.allowed``, internal
ones included) and make every requirement (guard) fail at least once, with the rejected event
marked ``"expect_error": "guard_failed"``. ``random_courses`` writes random but valid courses:
mostly the events a protocol-following clinician records, now and then an event the course
rejects (marked ``expect_error`` with the code the engine gives).

Courses are built by running the engine while writing, so every expectation in a generated
file is exact. Time comes from a fixed start and a step per event, randomness only from
``random.Random(seed)``: the same arguments always give the same files, byte for byte.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.events import CourseOpened
from iptflow.engine.machine import CompiledProtocol, Route
from iptflow.engine.results import Rejection
from iptflow.research.clinician import SESSION, Clinician, Stuck, copy_course

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
STEP = timedelta(hours=12)
MAX_STEPS = 400
REPEAT_LIMIT = 30

RouteKey = tuple[str, str, int]  # (state, event, index of the route in allowed[state][event])


def route_targets(compiled: CompiledProtocol) -> list[RouteKey]:
    """Every transition of the compiled machine, internal ones included."""
    return [
        (state, event, i)
        for state, events in compiled.allowed.items()
        for event, routes in sorted(events.items())
        for i in range(len(routes))
    ]


def requirement_targets(compiled: CompiledProtocol) -> list[str]:
    """Every requirement a transition or ``course_opened`` checks."""
    names = {r.name for r in compiled.open_requires}
    for events in compiled.allowed.values():
        for routes in events.values():
            for route in routes:
                names.update(r.name for r in route.requires)
    return sorted(names)


def effective_route(compiled: CompiledProtocol, attrs: dict[str, Any], state: str, event: str) -> int | None:
    """Which route (its index) an event takes for a course with these opening attributes, as
    the engine decides it (``CompiledProtocol.route``); None: the event is not allowed."""
    route = compiled.route(state, event, SimpleNamespace(**attrs))
    if route is None:
        return None
    return next(i for i, r in enumerate(compiled.allowed[state][event]) if r is route)


def state_path(compiled: CompiledProtocol, attrs: dict[str, Any], target: str) -> list[str] | None:
    """The shortest list of state-changing events from the initial state to ``target``."""
    start = compiled.protocol.initial_state
    seen = {start: []}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == target:
            return seen[state]
        for event, routes in sorted(compiled.allowed.get(state, {}).items()):
            i = effective_route(compiled, attrs, state, event)
            dest = routes[i].dest if i is not None else None
            if dest is None or dest in compiled.final_states or dest in seen:
                continue
            seen[dest] = seen[state] + [event]
            queue.append(dest)
    return None


@dataclass
class GeneratedCourse:
    """One course file: its name and its lines (events, possibly with expect_error, and expects)."""

    name: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines)


class _Builder:
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


def _opening_fields(compiled: CompiledProtocol, attrs: dict[str, Any]) -> dict[str, Any]:
    """course_opened fields for a course whose facts should match ``attrs``."""
    protocol = compiled.protocol
    fields: dict[str, Any] = {"protocol": protocol.id, "adaptations": list(protocol.adaptations)}
    if protocol.variant is not None:
        fields["adaptations"] = []
    for req in compiled.open_requires:
        params = compiled.protocol.requirements[req.name].params
        if {"min", "max"} <= set(params) and req.fn.__name__ == "patient_age_between":
            fields["patient"] = {"age": (params["min"] + params["max"]) // 2}
    for key, value in attrs.items():
        if key in CourseOpened.model_fields:
            fields[key] = value
    return fields


def _attr_sets(compiled: CompiledProtocol) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{}]
    for events in compiled.allowed.values():
        for routes in events.values():
            for route in routes:
                if route.when and dict(route.when) not in out:
                    out.append(dict(route.when))
    return out


def _variants(compiled: CompiledProtocol, clinician: Clinician, course: Course,
              etype: str, route: Route | None) -> Iterator[dict[str, Any]]:
    """The valid payload of an event, then well-formed payloads that may break its requirements."""
    at = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    for payload in _candidates(compiled, clinician, course, etype, route):
        if not isinstance(compiled.parse({**payload, "at": at}), str):
            yield payload


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
    if etype == "measure_recorded":
        for review in sorted(protocol.reviews):
            opener = clinician.review_opener(course, review)
            if opener and opener["type"] == "measure_recorded":
                yield opener


def _break_requirement(b: _Builder, event: str, name: str) -> bool:
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

    for payload in _variants(compiled, b.clinician, course, event, route):
        if fails(course, payload):
            b.fire(payload)
            return True
    for other in compiled.allowed_lists[course.state]:
        if any(r.dest for r in compiled.allowed[course.state][other]):
            continue
        for payload in _variants(compiled, b.clinician, course, other, None):
            trial = copy_course(course)
            steps: list[dict[str, Any]] = []
            for _ in range(REPEAT_LIMIT):
                step = _renumber(payload, course, trial)
                if not trial.apply({**step, "at": (trial.facts.last_at or START).isoformat()}).ok:
                    break
                steps.append(step)
                broken = next((v for v in _variants(compiled, b.clinician, trial, event, route)
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


def cover_transitions(compiled: CompiledProtocol, prefix: str | None = None) -> tuple[
        list[GeneratedCourse], list[RouteKey], list[str]]:
    """Courses covering every route and every requirement failure.

    Returns ``(courses, uncovered_routes, unfailed_requirements)``; the two lists are empty
    when everything was covered.
    """
    prefix = prefix or _prefix(compiled)
    clinician = Clinician(compiled)
    courses: list[GeneratedCourse] = []
    covered: set[RouteKey] = set()
    failed: set[str] = set()
    attr_sets = _attr_sets(compiled)

    def new_builder(attrs: dict[str, Any]) -> _Builder:
        n = len(courses) + 1
        b = _Builder(compiled, clinician, f"{prefix}-{n:03d}", f"{prefix}-{n:03d}.course.jsonl")
        b.open(_opening_fields(compiled, attrs))
        return b

    def walk_to(b: _Builder, attrs: dict[str, Any], state: str) -> bool:
        path = state_path(compiled, attrs, state)
        if path is None:
            return False
        for event in path:
            take_loops(b)
            if not b.advance(event) or not b.fire(b.clinician.payload(b.course, event)):
                return False
        return True

    def take_loops(b: _Builder) -> None:
        """Take the uncovered internal transitions of the current state."""
        course = b.course
        assert course is not None
        for event in list(compiled.allowed_lists[course.state]):
            routes = compiled.allowed[course.state][event]
            route = compiled.route(course.state, event, course.facts)
            if route is None:  # no route of this event fits the course (its when conditions)
                continue
            key = (course.state, event, routes.index(route))
            if route.dest is not None or key in covered or key in b.routes:
                continue
            if b.advance(event, 60):
                b.fire(b.clinician.payload(course, event))

    def done(b: _Builder) -> None:
        covered.update(b.routes)
        failed.update(b.failed)
        courses.append(b.finish())

    def reachable(state: str, event: str, index: int) -> Iterator[dict[str, Any]]:
        """Course attributes under which ``state`` is reachable and takes route ``index``."""
        for attrs in attr_sets:
            if (effective_route(compiled, attrs, state, event) == index
                    and state_path(compiled, attrs, state) is not None):
                yield attrs

    def break_somewhere(name: str) -> bool:
        """Write a course in which requirement ``name`` fails; False if none could be built."""
        for state, events in compiled.allowed.items():
            for event, routes in sorted(events.items()):
                for index, route in enumerate(routes):
                    if name not in {r.name for r in route.requires}:
                        continue
                    for attrs in reachable(state, event, index):
                        b = new_builder(attrs)
                        if b.course is None or not walk_to(b, attrs, state):
                            continue
                        hit = _break_requirement(b, event, name)
                        if not hit and b.advance(event):
                            hit = _break_requirement(b, event, name)
                        if hit:
                            done(b)
                            return True
        return False

    for target in route_targets(compiled):
        if target in covered:
            continue
        state, event, index = target
        for attrs in reachable(state, event, index):
            b = new_builder(attrs)
            if b.course is not None and walk_to(b, attrs, state):
                take_loops(b)
                if b.course.state == state and b.advance(event):
                    b.fire(b.clinician.payload(b.course, event))
            done(b)
            break

    # opening requirements: variants of course_opened
    for req in compiled.open_requires:
        if req.name in failed:
            continue
        for fields in _opening_variants(compiled):
            probe = Course.try_open({"type": "course_opened", "at": START.isoformat(),
                                     "course_id": "probe", **fields}, compiled.registry,
                                    notify=False, compiled=compiled)[1]
            if isinstance(probe, Rejection) and req.name in probe.guards:
                b = new_builder({})
                b.out.lines.clear()
                b.clock = START
                b.open(fields)
                done(b)
                break

    for name in requirement_targets(compiled):
        if name not in failed:
            break_somewhere(name)
    uncovered = [t for t in route_targets(compiled) if t not in covered]
    unfailed = [n for n in requirement_targets(compiled) if n not in failed]
    return courses, uncovered, unfailed


def _opening_variants(compiled: CompiledProtocol) -> Iterator[dict[str, Any]]:
    base = _opening_fields(compiled, {})
    for fmt in ("group", "individual"):
        yield {**base, "format": fmt}
    for age in (5, 40, 90):
        yield {**base, "patient": {"age": age}}
    yield {k: v for k, v in base.items() if k != "patient"}


def random_courses(compiled: CompiledProtocol, n: int, seed: int, prefix: str | None = None,
                   reject_rate: float = 0.08, stop_rate: float = 0.01) -> list[GeneratedCourse]:
    """``n`` random valid courses; the same seed gives the same courses."""
    prefix = prefix or _prefix(compiled)
    rnd = random.Random(seed)
    clinician = Clinician(compiled)
    attr_sets = _attr_sets(compiled)
    final_goal = "course_completed"
    out = []
    for i in range(1, n + 1):
        attrs = rnd.choice(attr_sets)
        b = _Builder(compiled, clinician, f"{prefix}-random-{i:03d}", f"{prefix}-random-{i:03d}.course.jsonl")
        b.clock = START + timedelta(days=rnd.randrange(365))
        b.open(_opening_fields(compiled, attrs))
        course = b.course
        steps = 0
        while course is not None and not course.is_closed and steps < MAX_STEPS:
            steps += 1
            allowed = compiled.allowed_lists[course.state]
            roll = rnd.random()
            if roll < stop_rate:
                ending = rnd.choice([e for e in ("course_discontinued", "course_referred") if e in allowed])
                b.fire(clinician.payload(course, ending))
                break
            if roll < stop_rate + reject_rate:
                event = rnd.choice(sorted(compiled.event_types.keys() - {"course_opened"}))
                if event in ("course_discontinued", "course_referred"):
                    continue
                variants = list(_variants(compiled, clinician, course, event,
                                          compiled.route(course.state, event, course.facts)))
                b.fire(rnd.choice(variants))
                continue
            goal = _next_goal(compiled, attrs, course.state, final_goal)
            if goal is None:
                break
            try:
                step = clinician.next_step(course, goal)
            except Stuck:
                break
            if step is None and rnd.random() < 0.3:
                routine = rnd.choice([e for e in ("session_held", "session_missed", "measure_recorded")
                                      if e in allowed])
                if not b.fire(clinician.payload(course, routine)) and routine == "session_held":
                    b.fire(clinician.payload(course, goal))
            elif step is None:
                b.fire(clinician.payload(course, goal))
            elif step == SESSION:
                b.fire(clinician.payload(course, "session_held"))
            else:
                b.fire(step)
        out.append(b.finish())
    return out


def _next_goal(compiled: CompiledProtocol, attrs: dict[str, Any], state: str, final: str) -> str | None:
    """The next state-changing event on the shortest way to completing the course."""
    if final in compiled.allowed.get(state, {}):
        return final
    best: tuple[int, str] | None = None
    for event, routes in sorted(compiled.allowed.get(state, {}).items()):
        i = effective_route(compiled, attrs, state, event)
        dest = routes[i].dest if i is not None else None
        if dest is None or dest in compiled.final_states:
            continue
        rest = _distance(compiled, attrs, dest, final)
        if rest is not None and (best is None or rest + 1 < best[0]):
            best = (rest + 1, event)
    return best[1] if best else None


def _distance(compiled: CompiledProtocol, attrs: dict[str, Any], start: str, final: str) -> int | None:
    seen = {start: 0}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        events = compiled.allowed.get(state, {})
        if final in events:
            return seen[state]
        for event, routes in sorted(events.items()):
            i = effective_route(compiled, attrs, state, event)
            dest = routes[i].dest if i is not None else None
            if dest is None or dest in compiled.final_states or dest in seen:
                continue
            seen[dest] = seen[state] + 1
            queue.append(dest)
    return None


def _prefix(compiled: CompiledProtocol) -> str:
    protocol = compiled.protocol
    return "-".join([protocol.id, *protocol.adaptations])


def write_courses(courses: list[GeneratedCourse], out_dir: Path | str) -> list[Path]:
    """Write course files (LF line endings, UTF-8); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for course in courses:
        path = out / course.name
        path.write_bytes(course.text().encode("utf-8"))
        paths.append(path)
    return paths
