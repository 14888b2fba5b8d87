"""SPEC §2 "Deviations": never blocking, recorded in order, each code under its exact rule."""

from __future__ import annotations

from spec_support import Driver, hamd17, phq9


def codes(d: Driver) -> list[str]:
    return [dev.code for dev in d.course.deviations]


# --- long_initial_phase ------------------------------------------------------------------------


def test_middle_phase_after_more_than_four_sessions_is_long_initial_phase():
    d = Driver()
    d.to_middle(sessions=5)
    assert codes(d) == ["long_initial_phase"]
    assert d.course.state == "middle"  # never blocking
    assert d.course.deviations[0].event_type == "middle_phase_started"


def test_middle_phase_after_four_sessions_is_no_deviation():
    d = Driver()
    d.to_middle(sessions=4)
    assert codes(d) == []


# --- session_gap -----------------------------------------------------------------------------------


def test_session_more_than_14_days_after_the_previous_is_session_gap():
    d = Driver()
    d.to_initial()
    d.sessions(1)
    d.advance(days=14, seconds=1)
    result = d.ok("session_held", at=d.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [dev.code for dev in result.deviations] == ["session_gap"]
    assert codes(d) == ["session_gap"]
    assert "14 days, 0:00:01" in result.deviations[0].message  # not rounded down to "14.0"


def test_session_exactly_14_days_after_the_previous_is_no_gap():
    d = Driver()
    d.to_initial()
    d.sessions(1)
    d.advance(days=14)
    d.ok("session_held", at=d.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert codes(d) == []


def test_first_session_is_never_a_gap():
    d = Driver()
    d.to_initial()
    d.sessions(1, days_apart=60)
    assert codes(d) == []


def test_session_gap_counts_from_the_previous_session_in_another_state():
    d = Driver()
    d.to_middle(sessions=3)  # last session in initial
    d.sessions(1, days_apart=20)  # first session in middle
    assert codes(d) == ["session_gap"]


def test_session_gap_is_not_reset_by_other_events():
    d = Driver()
    d.to_initial()
    d.sessions(1)
    for _ in range(3):
        d.advance(days=5)
        d.ok("session_missed")
        d.ok("measure_recorded", **phq9(12))
    d.sessions(1, days_apart=1)  # 16 days after the last session held
    assert codes(d) == ["missed_sessions", "session_gap"]


def test_a_rejected_session_does_not_reset_the_gap():
    d = Driver()
    d.to_initial()
    d.sessions(1)
    d.advance(days=10)
    d.rejected("guard_failed", "session_held", number=5)
    d.sessions(1, days_apart=10)
    assert codes(d) == ["session_gap"]


def test_maintenance_sessions_raise_no_session_gap():
    d = Driver()
    d.to_maintenance(planned=3)
    d.sessions(3, days_apart=30)
    assert codes(d) == []


def test_termination_sessions_raise_session_gap():
    d = Driver()
    d.to_termination()
    d.sessions(1, days_apart=15)
    assert codes(d) == ["session_gap"]


# --- missed_sessions --------------------------------------------------------------------------------


def test_third_consecutive_missed_session_is_missed_sessions():
    d = Driver()
    d.to_initial()
    d.ok("session_missed")
    d.ok("session_missed")
    assert codes(d) == []
    result = d.ok("session_missed")
    assert [dev.code for dev in result.deviations] == ["missed_sessions"]


def test_missed_sessions_is_raised_once_per_run():
    d = Driver()
    d.to_initial()
    for _ in range(6):
        d.ok("session_missed")
    assert codes(d) == ["missed_sessions"]


def test_a_session_held_ends_the_run_of_misses():
    d = Driver()
    d.to_initial()
    d.ok("session_missed")
    d.ok("session_missed")
    d.ok("session_held")
    d.ok("session_missed")
    d.ok("session_missed")
    assert codes(d) == []
    d.ok("session_missed")
    assert codes(d) == ["missed_sessions"]
    d.ok("session_held")
    for _ in range(3):
        d.ok("session_missed")
    assert codes(d) == ["missed_sessions", "missed_sessions"]


def test_other_events_do_not_end_the_run_of_misses():
    d = Driver()
    d.to_initial()
    d.ok("session_missed")
    d.ok("sick_role_given")
    d.ok("session_missed")
    d.ok("measure_recorded", **phq9(10))
    d.ok("session_missed")
    assert codes(d) == ["missed_sessions"]


def test_missed_maintenance_sessions_count_too():
    d = Driver()
    d.to_maintenance()
    for _ in range(3):
        d.ok("session_missed")
    assert codes(d) == ["missed_sessions"]


# --- non_response -----------------------------------------------------------------------------------


def _to_session_seven(baseline: dict | None = None) -> Driver:
    d = Driver()
    d.to_middle(sessions=3, planned=16, baseline=baseline)
    d.sessions(4)
    assert d.course.sessions_held == 7
    return d


def test_less_than_25_percent_better_at_session_8_is_non_response():
    d = _to_session_seven(phq9(20))
    d.ok("measure_recorded", **phq9(16))  # 20% better
    result = d.ok("session_held")
    assert [dev.code for dev in result.deviations] == ["non_response"]
    assert d.course.state == "middle"


def test_exactly_25_percent_better_at_session_8_is_no_deviation():
    d = _to_session_seven(phq9(20))
    d.ok("measure_recorded", **phq9(15))
    d.sessions(1)
    assert codes(d) == []


def test_without_a_later_measure_the_baseline_itself_is_compared():
    d = _to_session_seven(phq9(20))
    d.sessions(1)
    assert codes(d) == ["non_response"]


def test_non_response_uses_the_latest_measure_so_far():
    d = _to_session_seven(phq9(20))
    d.ok("measure_recorded", **phq9(8))
    d.ok("measure_recorded", **phq9(19))  # worse again: the latest counts
    d.sessions(1)
    assert codes(d) == ["non_response"]


def test_non_response_uses_the_baseline_instrument():
    d = _to_session_seven(hamd17(24))
    d.ok("measure_recorded", **phq9(2))  # another instrument: ignored
    d.ok("measure_recorded", **hamd17(20))
    d.sessions(1)
    assert codes(d) == ["non_response"]


def test_non_response_is_checked_only_at_the_review_session():
    d = _to_session_seven(phq9(20))
    d.ok("measure_recorded", **phq9(5))
    d.sessions(1)
    d.ok("measure_recorded", **phq9(20))
    d.sessions(1)
    assert codes(d) == []


def test_review_session_counts_every_session_held_over_the_course():
    d = Driver()
    d.to_initial(phq9(20))
    d.sessions(7, days_apart=1)  # all in initial, before any contract
    d.sessions(1, days_apart=1)
    assert codes(d) == ["non_response"]


def test_baseline_zero_raises_no_non_response():
    d = _to_session_seven(phq9(0))
    d.ok("measure_recorded", **phq9(3))
    d.sessions(1)
    assert codes(d) == []


# --- order and recording ------------------------------------------------------------------------


def test_deviations_raised_by_one_event_are_listed_in_table_order():
    d = _to_session_seven(phq9(20))
    result = d.ok("session_held", at=(d.now.replace(year=2026)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [dev.code for dev in result.deviations] == ["session_gap", "non_response"]


def test_deviations_are_recorded_in_the_order_they_were_raised():
    d = Driver()
    d.to_initial(phq9(20))
    d.sessions(1)
    for _ in range(3):
        d.ok("session_missed")
    d.sessions(4, days_apart=20)
    d.ok("sick_role_given")
    d.ok("interpersonal_inventory_completed")
    d.ok("problem_area_selected", area="grief")
    d.ok("formulation_agreed", planned_sessions=14)
    d.ok("middle_phase_started")
    assert codes(d) == ["missed_sessions"] + ["session_gap"] * 4 + ["long_initial_phase"]
    seqs = [dev.seq for dev in d.course.deviations]
    assert seqs == sorted(seqs)


def test_a_deviation_carries_a_message_the_event_and_its_time():
    d = Driver()
    d.to_middle(sessions=6)
    dev = d.course.deviations[0]
    assert "6" in dev.message
    assert dev.event_type == "middle_phase_started"
    assert dev.at == d.now
    assert set(dev.to_dict()) == {"code", "message", "seq", "event_type", "at"}
