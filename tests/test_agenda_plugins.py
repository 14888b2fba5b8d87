"""Agenda items contributed through the agenda_items hook: each shipped adaptation's own
requirements, and a third-party plugin (docs/worklist.md, docs/hooks.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import iptflow
from iptflow import Course
from iptflow.engine.agenda import AgendaItem, requirement_items
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.registry import Registry
from iptflow.errors import PluginError

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def ev(etype: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": etype, "at": at.isoformat().replace("+00:00", "Z"), **fields}


def assessed(adaptations: list[str], diagnosis: str, instrument: str = "phq9",
             score: int = 14, **opened: Any) -> list[dict[str, Any]]:
    measure: dict[str, Any] = {"instrument": instrument, "score": score}
    if instrument in ("phq9", "phq9a"):
        measure["items"] = [2, 2, 2, 2, 2, 2, 2, 0, 0]
    return [
        ev("course_opened", T0, course_id="c-a", protocol="ipt-depression", adaptations=adaptations,
           **opened),
        ev("measure_recorded", T0, **measure),
        ev("diagnosis_confirmed", T0, diagnosis=diagnosis),
    ]


def by_kind(course: Course, at: datetime) -> dict[str, AgendaItem]:
    return {i.kind: i for i in course.agenda(at)}


def test_adolescent_guardian_consent_and_parent_sessions() -> None:
    events = assessed(["adolescent"], "major_depressive_disorder", "phq9a", patient={"age": 15})
    course = Course.replay(events)
    item = by_kind(course, T0)["consent_missing"]
    assert (item.severity, item.source) == ("due", "adolescent")
    assert item.resolved_by == ("guardian_consent_recorded",)
    assert item.message == "no guardian consent has been recorded (needed for treatment_started)"
    assert "no guardian consent has been recorded" in by_kind(course, T0)["next_phase"].message
    course.apply(ev("guardian_consent_recorded", T0))
    assert "consent_missing" not in by_kind(course, T0)
    course.apply(ev("treatment_started", T0))
    course.apply(ev("session_held", T0 + timedelta(days=7), number=1))
    parent = by_kind(course, T0 + timedelta(days=7))["parent_session_due"]
    assert parent.resolved_by == ("parent_session_held",)
    assert parent.details == {"requirement": "parent_session_before_middle",
                              "needed_for": ["middle_phase_started"]}


def test_bipolar_pharmacotherapy_and_social_rhythm() -> None:
    course = Course.replay(assessed(["bipolar"], "bipolar_i"))
    item = by_kind(course, T0)["pharmacotherapy_missing"]
    assert item.source == "bipolar" and item.resolved_by == ("pharmacotherapy_confirmed",)
    assert "IPSRT is an adjunct to medication" in item.message
    course.apply(ev("pharmacotherapy_confirmed", T0, medication="lithium"))
    course.apply(ev("treatment_started", T0))
    srm = by_kind(course, T0)["social_rhythm_due"]
    assert srm.resolved_by == ("measure_recorded",) and "srm" in srm.message


def test_bipolar_mania_review_is_an_open_review() -> None:
    course = Course.replay(assessed(["bipolar"], "bipolar_i"))
    course.apply(ev("mania_flagged", T0 + timedelta(hours=1), reason="pressured speech"))
    first = course.agenda(T0 + timedelta(hours=2))[0]
    assert (first.kind, first.details["review"]) == ("review_open", "mania")
    assert first.resolved_by == ("mania_assessed",)
    assert "pressured speech" in first.message


def test_bulimia_medical_clearance_and_pre_group_meetings() -> None:
    events = assessed(["bulimia"], "bulimia_nervosa", "binge_episodes", 9, format="group")
    screen = [2, 2, 2, 1, 1, 1, 1, 0, 0]
    events.insert(2, ev("measure_recorded", T0, instrument="phq9", score=10, items=screen))
    course = Course.replay(events)
    clearance = by_kind(course, T0)["clearance_missing"]
    assert clearance.source == "bulimia" and clearance.resolved_by == ("medical_clearance_recorded",)
    course.apply(ev("medical_clearance_recorded", T0))
    assert course.apply(ev("treatment_started", T0)).state == "pre_group"
    items = by_kind(course, T0)
    meeting = items["pre_group_meeting_due"]
    assert meeting.resolved_by == ("pre_group_meeting_held",) and "group_started" in meeting.message
    assert items["next_phase"].severity == "due"  # pre_group holds no sessions: it must move on
    course.apply(ev("pre_group_meeting_held", T0 + timedelta(days=1)))
    items = by_kind(course, T0 + timedelta(days=1))
    assert "pre_group_meeting_due" not in items
    assert items["next_phase"].message == "group_started can be recorded now"


def test_ptsd_affect_attunement() -> None:
    events = assessed(["ptsd"], "ptsd", "pcl5", 50)
    events[1]["items"] = [3] * 10 + [2] * 10
    events.insert(2, ev("measure_recorded", T0, instrument="phq9", score=8, items=[1] * 8 + [0]))
    course = Course.replay(events + [ev("treatment_started", T0)])
    item = by_kind(course, T0)["affect_attunement_due"]
    assert item.source == "ptsd" and item.resolved_by == ("affect_attunement_introduced",)


def test_an_adaptation_adds_nothing_to_courses_without_it() -> None:
    course = Course.replay(assessed([], "major_depressive_disorder"))
    sources = {i.source for i in course.agenda(T0)}
    assert sources <= {None, "iptflow.builtins"}


# -- a third-party plugin --------------------------------------------------------------------------
def _registry(plugin: object) -> Registry:
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"clinic-extras": plugin})
    return Registry(pm)


def test_a_third_party_plugin_contributes_an_item_through_the_hook() -> None:
    seen: list[datetime] = []

    @iptflow.hookimpl
    def agenda_items(course: Course, as_of: datetime) -> list[AgendaItem]:
        seen.append(as_of)
        if course.facts.diagnosis is None:
            return []
        return [AgendaItem("letter_to_gp", "due", f"send the GP letter for {course.course_id}",
                           due=as_of - timedelta(days=1))]

    registry = _registry(SimpleNamespace(agenda_items=agenda_items))
    course = Course.replay(assessed([], "major_depressive_disorder"), registry)
    items = course.agenda("2025-01-07T09:00:00Z")
    letter = next(i for i in items if i.kind == "letter_to_gp")
    assert letter.source == "clinic-extras" and letter.message == "send the GP letter for c-a"
    assert seen == [datetime(2025, 1, 7, 9, tzinfo=UTC)]  # the engine passes the parsed time
    assert items.index(letter) == 0  # due a day ago: before the next phase (due, no time)
    closed = Course.replay(assessed([], "major_depressive_disorder")
                           + [ev("course_discontinued", T0, reason="moved away")], registry)
    assert closed.agenda(T0) == [] and len(seen) == 1  # the hook is not called for a closed course


@pytest.mark.parametrize(("returned", "text"), [
    ("not a list", "must return a list of iptflow.AgendaItem"),
    ([{"kind": "x"}], "must return a list of iptflow.AgendaItem"),
])
def test_a_plugin_returning_something_else_is_a_plugin_error(returned: Any, text: str) -> None:
    @iptflow.hookimpl
    def agenda_items(course: Course, as_of: datetime) -> Any:
        return returned

    course = Course.replay(assessed([], "major_depressive_disorder"),
                           _registry(SimpleNamespace(agenda_items=agenda_items)))
    with pytest.raises(PluginError) as info:
        course.agenda(T0)
    assert (info.value.plugin, info.value.hook) == ("clinic-extras", "agenda_items")
    assert text in info.value.message


def test_a_plugin_that_raises_is_named() -> None:
    @iptflow.hookimpl
    def agenda_items(course: Course, as_of: datetime) -> Any:
        raise KeyError("oops")

    course = Course.replay(assessed([], "major_depressive_disorder"),
                           _registry(SimpleNamespace(agenda_items=agenda_items)))
    with pytest.raises(PluginError, match="plugin clinic-extras: hook agenda_items raised KeyError"):
        course.agenda(T0)


def test_requirement_items_finds_a_plugins_requirement_by_name() -> None:
    course = Course.replay(assessed(["adolescent"], "major_depressive_disorder", "phq9a",
                                    patient={"age": 13}))
    items = requirement_items(course, T0, {"guardian_consent": "consent_missing"}, severity="urgent")
    assert [(i.kind, i.severity) for i in items] == [("consent_missing", "urgent")]
    assert requirement_items(course, T0, {"no_such_requirement": "x"}) == []


def test_an_item_with_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity must be one of urgent, due, info"):
        AgendaItem("x", "soon", "message")
