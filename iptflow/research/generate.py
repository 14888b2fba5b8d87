"""Generated course files: model-based tests derived from the compiled protocol.

``cover_transitions`` writes courses that together take every transition of the compiled
machine (every route of every (state, event) pair in ``CompiledProtocol.allowed``, internal
ones included) and make every requirement (guard) fail at least once, with the rejected event
marked ``"expect_error": "guard_failed"``. ``random_courses`` writes random but valid courses:
mostly the events a protocol-following clinician records, now and then an event the course
rejects (marked ``expect_error`` with the code the engine gives).

Courses are built by running the engine while writing (``iptflow.research.coverage``), so
every expectation in a generated file is exact. Time comes from a fixed start and a step per
event, randomness only from ``random.Random(seed)``: the same arguments always give the same
files, byte for byte.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.events import CourseOpened
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.results import Rejection
from iptflow.errors import IptflowError
from iptflow.research.clinician import SESSION, Clinician, Stuck
from iptflow.research.coverage import (
    MAX_STEPS,
    START,
    CourseBuilder,
    GeneratedCourse,
    RouteKey,
    break_requirement,
    payload_variants,
)


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


class _Coverage:
    """The courses written so far for ``cover_transitions``, and what they covered."""

    def __init__(self, compiled: CompiledProtocol, prefix: str) -> None:
        self.compiled = compiled
        self.prefix = prefix
        self.clinician = Clinician(compiled)
        self.courses: list[GeneratedCourse] = []
        self.covered: set[RouteKey] = set()
        self.failed: set[str] = set()
        self.attr_sets = _attr_sets(compiled)

    def new_builder(self, attrs: dict[str, Any]) -> CourseBuilder:
        n = len(self.courses) + 1
        b = CourseBuilder(self.compiled, self.clinician, f"{self.prefix}-{n:03d}",
                          f"{self.prefix}-{n:03d}.course.jsonl")
        b.open(_opening_fields(self.compiled, attrs))
        return b

    def walk_to(self, b: CourseBuilder, attrs: dict[str, Any], state: str) -> bool:
        path = state_path(self.compiled, attrs, state)
        if path is None:
            return False
        for event in path:
            self.take_loops(b)
            if not b.advance(event) or not b.fire(b.clinician.payload(b.course, event)):
                return False
        return True

    def take_loops(self, b: CourseBuilder) -> None:
        """Take the uncovered internal transitions of the current state."""
        compiled = self.compiled
        course = b.course
        assert course is not None
        for event in list(compiled.allowed_lists[course.state]):
            routes = compiled.allowed[course.state][event]
            route = compiled.route(course.state, event, course.facts)
            if route is None:  # no route of this event fits the course (its when conditions)
                continue
            key = (course.state, event, routes.index(route))
            if route.dest is not None or key in self.covered or key in b.routes:
                continue
            if b.advance(event, 60):
                b.fire(b.clinician.payload(course, event))

    def done(self, b: CourseBuilder) -> None:
        self.covered.update(b.routes)
        self.failed.update(b.failed)
        self.courses.append(b.finish())

    def reachable(self, state: str, event: str, index: int) -> Iterator[dict[str, Any]]:
        """Course attributes under which ``state`` is reachable and takes route ``index``."""
        for attrs in self.attr_sets:
            if (effective_route(self.compiled, attrs, state, event) == index
                    and state_path(self.compiled, attrs, state) is not None):
                yield attrs

    def take_route(self, target: RouteKey) -> None:
        """Write a course that takes ``target`` (the first set of attributes that reaches it)."""
        state, event, index = target
        for attrs in self.reachable(state, event, index):
            b = self.new_builder(attrs)
            if b.course is not None and self.walk_to(b, attrs, state):
                self.take_loops(b)
                if b.course.state == state and b.advance(event):
                    b.fire(b.clinician.payload(b.course, event))
            self.done(b)
            break

    def fail_at_opening(self, name: str) -> None:
        """Write a course whose course_opened fails opening requirement ``name``, if one does."""
        compiled = self.compiled
        for fields in _opening_variants(compiled):
            probe = Course.try_open({"type": "course_opened", "at": START.isoformat(),
                                     "course_id": "probe", **fields}, compiled.registry,
                                    notify=False, compiled=compiled)[1]
            if isinstance(probe, Rejection) and name in probe.guards:
                b = self.new_builder({})
                b.out.lines.clear()
                b.clock = START
                b.open(fields)
                self.done(b)
                break

    def break_somewhere(self, name: str) -> bool:
        """Write a course in which requirement ``name`` fails; False if none could be built."""
        for state, events in self.compiled.allowed.items():
            for event, routes in sorted(events.items()):
                for index, route in enumerate(routes):
                    if name not in {r.name for r in route.requires}:
                        continue
                    for attrs in self.reachable(state, event, index):
                        b = self.new_builder(attrs)
                        if b.course is None or not self.walk_to(b, attrs, state):
                            continue
                        hit = break_requirement(b, event, name)
                        if not hit and b.advance(event):
                            hit = break_requirement(b, event, name)
                        if hit:
                            self.done(b)
                            return True
        return False


def cover_transitions(compiled: CompiledProtocol, prefix: str | None = None) -> tuple[
        list[GeneratedCourse], list[RouteKey], list[str]]:
    """Courses covering every route and every requirement failure.

    Returns ``(courses, uncovered_routes, unfailed_requirements)``; the two lists are empty
    when everything was covered.
    """
    cov = _Coverage(compiled, prefix or _prefix(compiled))
    for target in route_targets(compiled):
        if target not in cov.covered:
            cov.take_route(target)
    for req in compiled.open_requires:  # opening requirements: variants of course_opened
        if req.name not in cov.failed:
            cov.fail_at_opening(req.name)
    for name in requirement_targets(compiled):
        if name not in cov.failed:
            cov.break_somewhere(name)
    uncovered = [t for t in route_targets(compiled) if t not in cov.covered]
    unfailed = [n for n in requirement_targets(compiled) if n not in cov.failed]
    return cov.courses, uncovered, unfailed


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
        name = f"{prefix}-random-{i:03d}"
        b = CourseBuilder(compiled, clinician, name, f"{name}.course.jsonl")
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
                variants = list(payload_variants(compiled, clinician, course, event,
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
    """Write course files (LF line endings, UTF-8) into ``out_dir``; returns their paths.

    Ids are validated where they are declared (a safe character set), and still no file is
    written unless every name stays directly inside ``out_dir`` once resolved: an
    :class:`~iptflow.errors.IptflowError` names the first that does not, and nothing is written.
    """
    out = Path(out_dir)
    root = out.resolve()
    for course in courses:
        if (root / course.name).resolve().parent != root:
            raise IptflowError(f"refusing to write course file {course.name!r}: it would land "
                               f"outside {out}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for course in courses:
        path = out / course.name
        path.write_bytes(course.text().encode("utf-8"))
        paths.append(path)
    return paths
