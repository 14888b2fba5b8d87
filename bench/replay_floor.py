"""Run: python bench/replay_floor.py [PASSES].

The floor of replay: what any engine running these rules must do per event: validate (shared
with the baseline), route, the guards, the deviation checks, the protocol check, the effect,
the counts guards read, and the machine on state changes; opening and the outcome per course.
No limits pass, no history copy, no SPEC-order rejections, no result object. Prints the engine,
the floor and the baseline (bench/baseline.py) in us/event, timed in interleaved chunks of 40
courses (min of PASSES passes per chunk), and each one's ratio to the baseline.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline  # noqa: E402
import workload  # noqa: E402
from engine_figures import _engine_replay  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from iptflow import Course, default_registry  # noqa: E402
from iptflow.engine.applying import _deviations  # noqa: E402
from iptflow.engine.rejecting import failures  # noqa: E402

courses, _ = workload.build(2000)
reg = default_registry()


def floor(courses):
    for events in courses:
        course, _ = Course.try_open(events[0], reg)
        if course is None:
            continue
        compiled = course.compiled
        facts = course.facts
        for raw in events[1:]:
            if course.state in compiled.final_states:
                continue
            etype = raw.get("type")
            plan = compiled.plans.get(etype)
            if plan is None:
                continue
            try:
                event = compiled.validate(raw)
            except ValidationError:
                continue
            if plan.check is not None and plan.check(course, event):
                continue
            route = compiled.route(course.state, etype, facts)
            if route is None or (route.requires and failures(route.requires, course, event)):
                continue
            seq = course.seq + 1
            raised = _deviations(course, event, seq, etype, plan.checks) if plan.checks else ()
            course.seq = seq
            if plan.effect is not None:
                plan.effect(course, event)
            key = (etype, course.state)
            facts.event_counts[key] = facts.event_counts.get(key, 0) + 1
            if plan.task:
                facts.tasks.add(etype)
            for r in plan.opens:
                facts.open_reviews.add(r)
            for r in plan.closes:
                facts.open_reviews.discard(r)
            facts.last_at = event.at
            if raised:
                course.deviations.extend(raised)
            if route.dest is not None:
                compiled.step(course, etype, route)
        course.outcome  # noqa: B018 - part of the work measured


def main(passes: int) -> None:
    floor(courses[:50])
    _engine_replay(courses[:50])
    baseline.replay(courses[:50], reg)
    n = sum(len(c) for c in courses)
    chunks = [courses[i:i + 40] for i in range(0, len(courses), 40)]
    runs = {"engine": _engine_replay, "floor": floor,
            "base": lambda ch: baseline.replay(ch, reg)}
    times: dict[str, list[list[float]]] = {k: [[] for _ in chunks] for k in runs}
    for _ in range(passes):
        for i, ch in enumerate(chunks):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run(ch)
                times[name][i].append(time.perf_counter() - t0)
    tot = {k: sum(min(x) for x in v) for k, v in times.items()}
    for k, v in tot.items():
        print(f"{k:7s} {v / n * 1e6:6.2f} us/event  ratio to base {v / tot['base']:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
