"""Property tests over random event streams drawn from the base vocabulary (SPEC §1, §5).

(a) a rejected event leaves the course's full observable state (``snapshot()``) as it was;
(b) replaying only the accepted events reproduces the same state, deviations and outcome;
(c) nothing but a typed Rejection ever comes out of ``apply`` for a bad event (no exceptions).

Every property runs on both protocol versions: streams start from a random prefix of the demo
course (2.0.0) or of its 1.0.0 twin (``ipt-depression@1.0.0``, without ``ending_discussed``), or
of their maintenance variants (so every phase is reached), and go on with random events (2.0.0
fields included, which 1.0.0 must reject as unknown): valid and invalid payloads, plausible times
that mostly move forward and sometimes go back, offsets other than Z, and now and then a time
that is not RFC 3339.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iptflow import Course
from iptflow.engine.results import REJECTION_CODES, Accepted, Rejection
from iptflow.research.demo import demo_events

DEMO = demo_events("prop-1")
DEMO_1 = [{**DEMO[0], "protocol": "ipt-depression@1.0.0"}] + [
    e for e in DEMO[1:] if e["type"] != "ending_discussed"]


def _maintenance(course: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return course[:-1] + [{"type": "maintenance_started", "at": course[-1]["at"],
                           "frequency": "monthly", "planned_sessions": 3}]


MAINTENANCE = _maintenance(DEMO)
MAINTENANCE_1 = _maintenance(DEMO_1)
VERSIONS = {"2.0.0": DEMO, "1.0.0": DEMO_1}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TYPES = [
    "measure_recorded", "risk_flagged", "risk_assessed", "diagnosis_confirmed", "treatment_started",
    "session_held", "session_missed", "sick_role_given", "interpersonal_inventory_completed",
    "problem_area_selected", "formulation_agreed", "middle_phase_started", "termination_started",
    "progress_reviewed", "relapse_plan_recorded", "maintenance_started", "course_completed",
    "course_discontinued", "course_referred", "course_opened", "session_cancelled",
    "ending_discussed",
]
WEIGHTED_TYPES = TYPES + ["session_held"] * 6 + ["measure_recorded"] * 3 + ["session_missed"] * 2

junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 30), st.floats(allow_nan=False),
                 st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3))


@st.composite
def measure(draw: st.DrawFn) -> dict[str, Any]:
    instrument = draw(st.sampled_from(["phq9", "phq9", "hamd17", "hamd17", "phq9a", "bdi2"]))
    count, top = (17, 4) if instrument == "hamd17" else (9, 3)
    if draw(st.booleans()):
        items = draw(st.lists(st.integers(0, top), min_size=count, max_size=count))
        fields: dict[str, Any] = {"instrument": instrument, "score": sum(items)}
        if draw(st.integers(0, 3)) > 0:
            fields["items"] = items
        if draw(st.integers(0, 2)) == 0:
            fields["item9"] = draw(st.one_of(st.just(items[-1]), st.integers(-1, 4), st.none()))
        return fields
    score = draw(st.one_of(st.integers(-2, 60), st.floats(-1, 60, allow_nan=False), st.booleans()))
    fields = {"instrument": instrument, "score": score}
    if draw(st.booleans()):
        fields["items"] = draw(st.lists(st.integers(-1, 5), max_size=18))
    return fields


def payload(etype: str) -> st.SearchStrategy[dict[str, Any]]:
    fixed: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "measure_recorded": measure(),
        "risk_flagged": st.fixed_dictionaries({"reason": st.text(max_size=8)}),
        "risk_assessed": st.fixed_dictionaries(
            {"level": st.sampled_from(["low", "moderate", "high"]), "safety_plan": st.booleans()},
            optional={"no_plan_reason": st.one_of(st.text(max_size=6), st.none())}),
        "diagnosis_confirmed": st.fixed_dictionaries(
            {"diagnosis": st.sampled_from(["major_depressive_disorder"] * 3 + ["ptsd"])},
            optional={"psychotic_features": st.booleans()}),
        "session_held": st.fixed_dictionaries(
            {}, optional={"number": st.integers(0, 20),
                          "techniques": st.lists(st.sampled_from(["role_play", "exposure"]), max_size=2)}),
        "problem_area_selected": st.one_of(
            st.fixed_dictionaries({"area": st.sampled_from(
                ["grief", "role_transition", "interpersonal_deficits", "loneliness"])},
                optional={"replace": st.one_of(st.booleans(), st.none())}),
            st.fixed_dictionaries({"area": st.just("role_dispute"),
                                   "stage": st.sampled_from(["renegotiation", "impasse", "dissolution"])}),
        ),
        "formulation_agreed": st.fixed_dictionaries({"planned_sessions": st.integers(10, 18)}),
        "relapse_plan_recorded": st.fixed_dictionaries(
            {"warning_signs": st.lists(st.text(min_size=1, max_size=6), max_size=2)}),
        "maintenance_started": st.fixed_dictionaries(
            {"frequency": st.sampled_from(["weekly", "biweekly", "monthly", "daily"]),
             "planned_sessions": st.integers(0, 4)}),
        "course_discontinued": st.fixed_dictionaries(
            {"reason": st.text(max_size=6)}, optional={"handover": st.text(max_size=6)}),
        "course_referred": st.fixed_dictionaries(
            {"reason": st.text(max_size=6)},
            optional={"to": st.text(max_size=6), "handover": st.text(max_size=6)}),
        "course_opened": st.fixed_dictionaries(
            {"course_id": st.text(max_size=4),
             "protocol": st.sampled_from(["ipt-depression", "ipt-depression@1.0.0", "nope"])},
            optional={"format": st.sampled_from(["individual", "group"])}),
    }
    return fixed.get(etype, st.just({}))


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """Usually the body as it is; sometimes with an unknown field, a field dropped or retyped."""
    choice = draw(st.integers(0, 9))
    body = dict(body)
    if choice == 0:
        body[draw(st.sampled_from(["colour", "Number", "item"]))] = draw(junk)
    elif choice == 1 and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    elif choice == 2 and body:
        body[draw(st.sampled_from(sorted(body)))] = draw(junk)
    return body


def stamp(moment: datetime, style: int) -> Any:
    if style == 0:
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    if style == 1:
        return moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()
    if style == 2:
        return moment.replace(tzinfo=None).isoformat()  # naive: invalid
    if style == 3:
        return "not a time"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    course = draw(st.sampled_from([DEMO, DEMO, MAINTENANCE, DEMO_1, DEMO_1, MAINTENANCE_1]))
    prefix = course[: draw(st.integers(1, len(course)))]
    now = datetime.fromisoformat(prefix[-1]["at"].replace("Z", "+00:00"))
    events = []
    for _ in range(draw(st.integers(1, 25))):
        etype = draw(st.sampled_from(WEIGHTED_TYPES))
        body = draw(mutated(draw(payload(etype))))
        step = draw(st.one_of(st.integers(0, 60 * 24 * 9), st.integers(-60 * 48, 0),
                              st.integers(60 * 24 * 14, 60 * 24 * 30)))
        now += timedelta(minutes=step)
        style = draw(st.integers(0, 30))
        event = {"type": etype, "at": stamp(now, style), **body}
        if draw(st.integers(0, 40)) == 0:
            del event["at"]
        events.append(event)
    return prefix, events


def run(prefix: list[dict[str, Any]], events: list[dict[str, Any]]) -> Course:
    course = Course.replay(prefix)
    for event in events:
        before = course.snapshot()
        history = list(course.history)
        result = course.apply(event)  # (c): an exception here fails the test
        assert isinstance(result, Accepted | Rejection)
        if not result.ok:
            assert result.code in REJECTION_CODES
            assert result.code not in ("no_course", "conflict")
            assert result.message
            assert bool(result.guards) == (result.code == "guard_failed")
            assert course.snapshot() == before  # (a)
            assert course.history == history
        else:
            assert course.history[-1] == event
    return course


@SETTINGS
@given(streams())
def test_a_rejected_event_leaves_the_snapshot_unchanged(stream):
    run(*stream)


def test_the_streams_start_on_both_versions():
    assert Course.replay(DEMO).protocol.version == "2.0.0"
    assert Course.replay(DEMO_1).protocol.version == "1.0.0"
    assert Course.replay(MAINTENANCE_1).state == Course.replay(MAINTENANCE).state == "maintenance"


@SETTINGS
@given(streams())
def test_replaying_the_accepted_events_reproduces_the_course(stream):
    course = run(*stream)
    again = Course.replay(course.history)
    assert again.snapshot() == course.snapshot()
    assert again.deviations == course.deviations
    assert again.outcome == course.outcome
    assert again.state == course.state


@SETTINGS
@given(st.lists(st.one_of(junk, st.dictionaries(st.sampled_from(["type", "at", "score", "items"]), junk),
                          st.builds(lambda t, b: {"type": t, **b}, st.sampled_from(TYPES),
                                    st.dictionaries(st.text(max_size=4), junk, max_size=3))),
                max_size=10),
       st.sampled_from(sorted(VERSIONS)), st.integers(1, len(DEMO_1)))
def test_nothing_but_a_rejection_comes_out_of_apply_for_garbage(garbage, version, cut):
    course = Course.replay(VERSIONS[version][:cut])
    before = course.snapshot()
    for raw in garbage:
        result = course.apply(raw)  # type: ignore[arg-type]
        assert isinstance(result, Rejection)
        assert result.code in ("invalid_event", "course_closed")
    assert course.snapshot() == before
