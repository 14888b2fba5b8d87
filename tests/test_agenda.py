"""Course.agenda(as_of): each item kind at its boundaries, ordering, both protocol versions,
the as-of rules and a closed course (docs/worklist.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iptflow import Course
from iptflow.engine.agenda import AgendaItem
from iptflow.engine.registry import Registry, load_protocol_file
from iptflow.errors import InvalidAsOf
from iptflow.protocol.compose import compose

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PHQ9_NO_RISK = [2, 2, 2, 2, 2, 2, 2, 2, 0]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def ev(etype: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": etype, "at": iso(at), **fields}


def opening(protocol: str = "ipt-depression", adaptations: tuple[str, ...] = (),
            **extra: Any) -> list[dict[str, Any]]:
    """course_opened and a complete assessment (baseline with item 9, diagnosis)."""
    return [
        ev("course_opened", T0, course_id="c-1", protocol=protocol, adaptations=list(adaptations),
           actor="clin-1", **extra),
        ev("measure_recorded", T0 + timedelta(minutes=10), instrument="phq9", score=16,
           items=PHQ9_NO_RISK),
        ev("diagnosis_confirmed", T0 + timedelta(minutes=20), diagnosis="major_depressive_disorder"),
    ]


def to_middle(start: datetime, sessions: int = 3, planned: int = 12) -> list[dict[str, Any]]:
    """treatment_started at ``start``, weekly sessions, the initial tasks, the middle phase."""
    out = [ev("treatment_started", start)]
    for n in range(1, sessions + 1):
        out.append(ev("session_held", start + timedelta(days=7 * n), number=n))
    last = start + timedelta(days=7 * sessions, minutes=30)
    out += [
        ev("sick_role_given", last),
        ev("interpersonal_inventory_completed", last),
        ev("problem_area_selected", last, area="grief"),
        ev("formulation_agreed", last, planned_sessions=planned),
        ev("middle_phase_started", last),
    ]
    return out


def middle_course(protocol: str = "ipt-depression", registry: Registry | None = None,
                  sessions: int = 3, planned: int = 12) -> Course:
    return Course.replay(opening(protocol) + to_middle(T0 + timedelta(hours=1), sessions, planned),
                         registry)


def kinds(items: list[AgendaItem]) -> dict[str, AgendaItem]:
    return {i.kind: i for i in items}


def last_session(course: Course) -> datetime:
    at = course.facts.last_session_at
    assert at is not None
    return at


# -- session_overdue -----------------------------------------------------------------------------
@pytest.fixture
def short_gap_dir(tmp_path: Path) -> Path:
    """A variant of the base protocol whose session_gap deviation is raised after 10 days."""
    (tmp_path / "ipt-tight.toml").write_text(
        'id = "ipt-tight"\nversion = "1.0.0"\ntitle = "IPT with a 10-day gap"\n'
        'extends = "ipt-depression@2.0.0"\n\n[deviations.session_gap]\ndays = 10\n',
        encoding="utf-8",
    )
    return tmp_path


@pytest.mark.parametrize(("protocol", "gap_days"), [("ipt-depression", 14), ("ipt-tight", 10)])
def test_session_overdue_is_due_after_a_week_and_urgent_at_the_protocols_gap(
    protocol: str, gap_days: int, short_gap_dir: Path
) -> None:
    course = middle_course(protocol, Registry(protocol_dirs=[short_gap_dir]))
    last = last_session(course)
    assert "session_overdue" not in kinds(course.agenda(last + timedelta(days=6, hours=23)))
    due = kinds(course.agenda(last + timedelta(days=7)))["session_overdue"]
    assert (due.severity, due.due, due.resolved_by) == ("due", last + timedelta(days=7), ("session_held",))
    before = kinds(course.agenda(last + timedelta(days=gap_days) - timedelta(hours=1)))
    assert before["session_overdue"].severity == "due"
    at_gap = kinds(course.agenda(last + timedelta(days=gap_days)))["session_overdue"]
    assert at_gap.severity == "urgent"
    assert f"session_gap (more than {gap_days} days)" in at_gap.message
    assert at_gap.details["gap_days"] == gap_days


def test_a_session_at_the_urgent_boundary_is_the_first_that_raises_the_deviation() -> None:
    course = middle_course()
    limit = last_session(course) + timedelta(days=14)
    assert kinds(course.agenda(limit))["session_overdue"].severity == "urgent"
    result = course.apply(ev("session_held", limit + timedelta(seconds=1), number=4))
    assert result.deviations[0].code == "session_gap"


def test_maintenance_sessions_follow_the_contracts_frequency_and_never_turn_urgent() -> None:
    events = opening() + to_middle(T0 + timedelta(hours=1), sessions=8, planned=12)
    t = T0 + timedelta(days=60)
    events += [ev("termination_started", t)]
    for n in (9, 10):
        events.append(ev("session_held", t + timedelta(days=n - 8), number=n))
    t += timedelta(days=3)
    events += [
        ev("progress_reviewed", t), ev("relapse_plan_recorded", t, warning_signs=["sleep"]),
        ev("ending_discussed", t),
        ev("measure_recorded", t, instrument="phq9", score=4, items=[1, 1, 1, 1, 0, 0, 0, 0, 0]),
        ev("maintenance_started", t, frequency="monthly", planned_sessions=6),
    ]
    course = Course.replay(events)
    last = last_session(course)
    assert "session_overdue" not in kinds(course.agenda(last + timedelta(days=27)))
    item = kinds(course.agenda(last + timedelta(days=60)))["session_overdue"]
    assert item.severity == "due" and item.due == last + timedelta(days=28)


# -- measure_due ---------------------------------------------------------------------------------
def test_measure_due_after_the_cadence_from_the_latest_outcome_measure() -> None:
    course = middle_course()
    baseline = course.facts.baseline
    assert baseline is not None
    every = course.protocol.agenda.outcome_every_days
    assert every == 28  # the documented default: the shipped protocol has no [agenda] table
    before = course.agenda(baseline.at + timedelta(days=28) - timedelta(seconds=1))
    assert "measure_due" not in kinds(before)
    item = kinds(course.agenda(baseline.at + timedelta(days=28)))["measure_due"]
    assert item.severity == "due" and item.resolved_by == ("measure_recorded",)
    assert item.details["instrument"] == "phq9" and "phq9" in item.message
    later = baseline.at + timedelta(days=30)
    course.apply(ev("measure_recorded", later, instrument="hamd17", score=10))
    assert "measure_due" in kinds(course.agenda(later))  # another instrument does not count
    course.apply(ev("measure_recorded", later, instrument="phq9", score=9, items=[1] * 9))
    assert "measure_due" not in kinds(course.agenda(later))


def test_no_measure_due_in_assessment() -> None:
    course = Course.replay(opening())
    assert "measure_due" not in kinds(course.agenda(T0 + timedelta(days=90)))


# -- review_open ---------------------------------------------------------------------------------
def test_review_open_names_the_measure_that_opened_it_and_comes_first() -> None:
    course = middle_course()
    at = last_session(course) + timedelta(days=10)
    course.apply(ev("measure_recorded", at, instrument="phq9", score=14, items=[2, 2, 2, 2, 2, 1, 1, 0, 2]))
    items = course.agenda(at + timedelta(hours=1))
    first = items[0]
    assert (first.kind, first.severity, first.due) == ("review_open", "urgent", at)
    assert first.details == {"review": "risk", "opened_by": "measure_recorded",
                             "opened_seq": course.seq, "opened_at": iso(at)}
    assert "item 9 2" in first.message and first.resolved_by == ("risk_assessed",)
    # the overdue session has an earlier due time, yet comes after the urgent review
    assert [i.kind for i in items[:2]] == ["review_open", "session_overdue"]


def test_review_open_by_risk_flagged_quotes_the_reason_and_closes_with_the_assessment() -> None:
    course = middle_course()
    at = last_session(course) + timedelta(days=1)
    course.apply(ev("risk_flagged", at, reason="says life is not worth living"))
    item = kinds(course.agenda(at))["review_open"]
    assert "says life is not worth living" in item.message
    course.apply(ev("risk_assessed", at, level="low", safety_plan=True))
    assert "review_open" not in kinds(course.agenda(at))


# -- next_phase and the termination window --------------------------------------------------------
def test_next_phase_lists_unmet_requirements_in_the_initial_phase() -> None:
    events = opening() + [ev("treatment_started", T0 + timedelta(hours=1)),
                          ev("session_held", T0 + timedelta(days=7), number=1)]
    course = Course.replay(events)
    items = kinds(course.agenda(T0 + timedelta(days=8)))
    item = items["next_phase"]
    assert item.resolved_by == ("middle_phase_started",) and item.severity == "info"
    unmet = {u["requirement"] for u in item.details["unmet"]}
    assert {"sick_role_given", "problem_area_chosen", "contract_agreed"} <= unmet
    contract = items["contract_missing"]
    assert contract.resolved_by == ("formulation_agreed",) and contract.source == "iptflow.builtins"


@pytest.mark.parametrize(("sessions", "severity", "text"), [
    (7, "info", "the window opens after 1 more session"),
    (8, "info", "termination_started can be recorded now (4 contracted sessions remain"),
    (10, "due", "no more sessions in middle: only 2 contracted sessions remain"),
])
def test_termination_window_opens_at_4_remaining_and_must_open_at_2(
    sessions: int, severity: str, text: str
) -> None:
    course = middle_course(sessions=3)
    t = last_session(course)
    for n in range(4, sessions + 1):
        t += timedelta(days=7)
        assert course.apply(ev("session_held", t, number=n)).ok
    item = kinds(course.agenda(t + timedelta(hours=1)))["next_phase"]
    assert item.severity == severity and text in item.message
    assert item.details["window_at_remaining"] == 4
    if sessions == 10:
        assert "session_overdue" not in kinds(course.agenda(t + timedelta(days=20)))


def test_assessment_ready_to_start_is_due() -> None:
    item = kinds(Course.replay(opening()).agenda(T0 + timedelta(hours=1)))["next_phase"]
    assert (item.severity, item.message) == ("due", "treatment_started can be recorded now")


# -- both versions -------------------------------------------------------------------------------
def test_both_protocol_versions_give_their_own_requirements() -> None:
    unscreened = [
        ev("course_opened", T0, course_id="c-v", protocol="PROTOCOL"),
        ev("measure_recorded", T0, instrument="phq9", score=12),
        ev("diagnosis_confirmed", T0, diagnosis="major_depressive_disorder"),
    ]
    by_version = {}
    for version in ("1.0.0", "2.0.0"):
        events = [dict(e) for e in unscreened]
        events[0]["protocol"] = f"ipt-depression@{version}"
        if version == "2.0.0":
            events[1]["item9"] = 0
        course = Course.replay(events)
        by_version[version] = kinds(course.agenda(T0 + timedelta(hours=1)))
    assert by_version["1.0.0"]["next_phase"].message == "treatment_started can be recorded now"
    assert by_version["2.0.0"]["next_phase"].message == "treatment_started can be recorded now"
    v1 = Course.replay(opening("ipt-depression@1.0.0") + to_middle(T0 + timedelta(hours=1)))
    v2 = middle_course()
    for course in (v1, v2):
        at = last_session(course) + timedelta(days=14)
        assert kinds(course.agenda(at))["session_overdue"].severity == "urgent"
    # 2.0.0 asks for a suicide screen before treatment; 1.0.0 never did
    bare = [ev("course_opened", T0, course_id="c-s", protocol="P"),
            ev("measure_recorded", T0, instrument="hamd17", score=20),
            ev("diagnosis_confirmed", T0, diagnosis="major_depressive_disorder")]
    for version, screened in (("1.0.0", True), ("2.0.0", False)):
        bare[0]["protocol"] = f"ipt-depression@{version}"
        item = kinds(Course.replay(bare).agenda(T0))["next_phase"]
        unmet = [u["requirement"] for u in item.details["unmet"]]
        assert ("suicide_screen" not in unmet) is screened


# -- as_of and closed courses --------------------------------------------------------------------
def test_as_of_earlier_than_the_last_event_is_a_typed_error_naming_the_course() -> None:
    course = middle_course()
    last = course.facts.last_at
    assert last is not None
    with pytest.raises(InvalidAsOf) as info:
        course.agenda(last - timedelta(seconds=1))
    assert info.value.code == "invalid_as_of"
    assert "c-1" in info.value.message and "earlier than its last accepted event" in info.value.message
    assert course.agenda(last) is not None  # the last event's own time is fine


@pytest.mark.parametrize("bad", ["2025-03-03T08:00:00", "yesterday", datetime(2025, 3, 3, 8)])
def test_as_of_without_a_time_zone_or_unreadable_is_a_typed_error(bad: Any) -> None:
    with pytest.raises(InvalidAsOf):
        middle_course().agenda(bad)


def test_as_of_as_an_rfc3339_string_with_an_offset() -> None:
    course = middle_course()
    last = last_session(course)
    text = (last + timedelta(days=15)).astimezone(datetime.now(UTC).astimezone().tzinfo).isoformat()
    assert kinds(course.agenda(text))["session_overdue"].severity == "urgent"


def test_a_closed_course_has_nothing() -> None:
    course = middle_course()
    at = last_session(course) + timedelta(days=1)
    course.apply(ev("risk_flagged", at, reason="concern"))
    assert course.agenda(at)
    course.apply(ev("course_referred", at, reason="inpatient care", handover="crisis team"))
    assert course.is_closed and course.open_reviews == ["risk"]
    assert course.agenda(at + timedelta(days=100)) == []


def test_items_are_ordered_urgent_due_info_then_by_due_time() -> None:
    course = middle_course()
    at = last_session(course) + timedelta(days=40)
    course.apply(ev("risk_flagged", at, reason="concern"))
    items = course.agenda(at)
    ranks = [("urgent", "due", "info").index(i.severity) for i in items]
    assert ranks == sorted(ranks)
    # the session (urgent: past the gap) was due before the review opened, yet comes after it
    assert [(i.kind, i.severity) for i in items] == [
        ("review_open", "urgent"), ("session_overdue", "urgent"), ("measure_due", "due"),
        ("next_phase", "info")]
    assert all(i.to_dict()["severity"] == i.severity for i in items)


# -- the [agenda] table ----------------------------------------------------------------------------
def test_the_agenda_table_at_its_defaults_keeps_the_fingerprint_and_another_cadence_counts(
    tmp_path: Path,
) -> None:
    shipped = (Path(__file__).parent.parent / "protocols" / "ipt-depression" / "2.0.0.toml"
               ).read_text(encoding="utf-8")
    plain = tmp_path / "plain.toml"
    plain.write_text(shipped, encoding="utf-8")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text(shipped + "\n[agenda]\nsession_every_days = 7\noutcome_every_days = 28\n",
                        encoding="utf-8")
    fingerprints = {compose(load_protocol_file(p), []).fingerprint for p in (plain, explicit)}
    registry = Registry()
    assert fingerprints == {registry.resolve("ipt-depression@2.0.0").fingerprint}

    folder = tmp_path / "faster"
    folder.mkdir()
    (folder / "ipt-fast.toml").write_text(
        shipped.replace('id = "ipt-depression"', 'id = "ipt-fast"')
        + "\n[agenda]\noutcome_every_days = 21\n", encoding="utf-8")
    course = middle_course("ipt-fast", Registry(protocol_dirs=[folder]), sessions=1)
    assert course.protocol.fingerprint not in fingerprints
    baseline = course.facts.baseline
    assert baseline is not None
    assert "measure_due" not in kinds(course.agenda(baseline.at + timedelta(days=21, seconds=-1)))
    item = kinds(course.agenda(baseline.at + timedelta(days=21)))["measure_due"]
    assert item.details["every_days"] == 21
