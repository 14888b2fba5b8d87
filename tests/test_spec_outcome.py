"""SPEC §2 "Outcome" and §3 "Instruments" (phq9, hamd17) for the base protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import Driver, hamd17, opened, phq9

from iptflow import Course, Registry

BASE_TOML = Path(__file__).resolve().parents[1] / "protocols" / "ipt-depression" / "1.0.0.toml"


def outcome_after(baseline: dict, *later: dict) -> dict | None:
    d = Driver()
    d.to_initial(baseline)
    for measure in later:
        d.ok("measure_recorded", **measure)
    out = d.course.outcome
    return out.to_dict() if out else None


# --- outcome ---------------------------------------------------------------------------------


def test_outcome_is_null_without_measures():
    assert Driver().course.outcome is None


def test_outcome_is_null_with_only_the_baseline():
    assert outcome_after(phq9(18)) is None


def test_outcome_is_null_when_later_measures_use_another_instrument():
    assert outcome_after(phq9(18), hamd17(10), hamd17(8)) is None


def test_outcome_compares_baseline_with_the_latest_measure_of_its_instrument():
    assert outcome_after(phq9(18), phq9(12), hamd17(30), phq9(9)) == {
        "instrument": "phq9", "baseline": 18, "latest": 9, "change_pct": -50.0, "status": "response",
    }


def test_outcome_is_computed_in_assessment():
    d = Driver()
    d.ok("measure_recorded", **phq9(18))
    d.ok("measure_recorded", **phq9(16))
    assert d.course.outcome.status == "non_response"


def test_outcome_is_computed_after_the_course_ends():
    d = Driver()
    d.to_initial(phq9(20))
    d.ok("measure_recorded", **phq9(4))
    d.ok("course_discontinued", reason="moved away")
    assert d.course.outcome.status == "remission"


@pytest.mark.parametrize(
    "baseline,latest,pct",
    [
        (18, 9, -50.0),
        (12, 8, -33.3),  # -33.333...
        (12, 4, -66.7),  # -66.666...
        (16, 15, -6.3),  # -6.25: half away from zero
        (16, 17, 6.3),   # 6.25: half away from zero
        (16, 13, -18.8),  # -18.75
        (16, 19, 18.8),  # 18.75
        (8, 7, -12.5),
        (20, 20, 0.0),
        (3, 9, 200.0),
    ],
)
def test_change_pct_is_rounded_to_one_decimal_halves_away_from_zero(baseline, latest, pct):
    assert outcome_after(phq9(baseline), phq9(latest))["change_pct"] == pct


@pytest.mark.parametrize(
    "baseline,latest,status",
    [
        (20, 4, "remission"),
        (20, 5, "response"),
        (20, 10, "response"),  # exactly 50%
        (20, 11, "partial_response"),
        (20, 15, "partial_response"),  # exactly 25%
        (20, 16, "non_response"),
        (20, 24, "non_response"),
        (6, 4, "remission"),  # remission is tried first
        (3, 4, "remission"),  # even when worse than baseline
    ],
)
def test_phq9_outcome_status(baseline, latest, status):
    assert outcome_after(phq9(baseline), phq9(latest))["status"] == status


@pytest.mark.parametrize(
    "baseline,latest,status",
    [
        (24, 7, "remission"),  # <= 7
        (24, 8, "response"),  # 8 is not <= 7; a 66.7% reduction
        (30, 15, "response"),
        (30, 16, "partial_response"),
        (30, 22, "partial_response"),
        (30, 23, "non_response"),
    ],
)
def test_hamd17_outcome_status(baseline, latest, status):
    assert outcome_after(hamd17(baseline), hamd17(latest))["status"] == status


@pytest.mark.parametrize("latest,status", [(0, "remission"), (4, "remission"), (5, "non_response")])
def test_baseline_zero_gives_null_change_and_remission_or_non_response(latest, status):
    out = outcome_after(phq9(0), phq9(latest))
    assert out["change_pct"] is None
    assert out["status"] == status


def test_hamd17_baseline_zero_uses_its_remission_rule():
    out = outcome_after(hamd17(0), hamd17(7))
    assert (out["change_pct"], out["status"]) == (None, "remission")
    assert outcome_after(hamd17(0), hamd17(8))["status"] == "non_response"


def test_outcome_uses_the_baseline_instrument_not_the_later_one():
    out = outcome_after(hamd17(30), phq9(2), hamd17(25))
    assert (out["instrument"], out["latest"], out["status"]) == ("hamd17", 25, "non_response")


# --- instruments --------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument,score", [("phq9", 0), ("phq9", 27), ("hamd17", 0), ("hamd17", 52)])
def test_scores_at_the_range_bounds_are_accepted(instrument, score):
    Driver().ok("measure_recorded", instrument=instrument, score=score)


@pytest.mark.parametrize("instrument,score", [("phq9", -1), ("phq9", 28), ("hamd17", -1), ("hamd17", 53)])
def test_scores_outside_the_range_are_invalid(instrument, score):
    Driver().rejected("invalid_event", "measure_recorded", instrument=instrument, score=score)


@pytest.mark.parametrize("score", [12.0, 12.5, True, "12", None])
def test_scores_of_integer_instruments_must_be_json_integers(score):
    Driver().rejected("invalid_event", "measure_recorded", instrument="phq9", score=score)


@pytest.mark.parametrize("instrument,count", [("phq9", 8), ("phq9", 10), ("hamd17", 16), ("hamd17", 18)])
def test_items_of_the_wrong_count_are_invalid(instrument, count):
    Driver().rejected("invalid_event", "measure_recorded", instrument=instrument, score=count,
                      items=[1] * count)


@pytest.mark.parametrize("instrument,count,bad", [("phq9", 9, 4), ("phq9", 9, -1), ("hamd17", 17, 5)])
def test_items_outside_their_range_are_invalid(instrument, count, bad):
    items = [0] * count
    items[3] = bad
    Driver().rejected("invalid_event", "measure_recorded", instrument=instrument, score=bad,
                      items=items)


def test_hamd17_items_are_checked_against_0_to_4_only():
    Driver().ok("measure_recorded", instrument="hamd17", score=34, items=[2] * 17)
    Driver().ok("measure_recorded", instrument="hamd17", score=52, items=[4] * 13 + [0] * 4)


@pytest.mark.parametrize("instrument,items", [("phq9", [1] * 9), ("hamd17", [1] * 17)])
def test_items_must_sum_to_the_score(instrument, items):
    d = Driver()
    d.rejected("invalid_event", "measure_recorded", instrument=instrument, score=len(items) + 1,
               items=items)
    d.ok("measure_recorded", instrument=instrument, score=len(items), items=items)


@pytest.mark.parametrize("item", [1.0, True, "1", None])
def test_items_must_be_integers(item):
    items = [1] * 8 + [item]
    Driver().rejected("invalid_event", "measure_recorded", instrument="phq9", score=9, items=items)


def test_items_are_optional():
    Driver().ok("measure_recorded", instrument="phq9", score=9)


@pytest.mark.parametrize("instrument", ["bdi2", "PHQ9", "phq9a", "ymrs", "ede_q", "pcl5", "caps5", "srm"])
def test_unknown_instruments_and_those_of_adaptations_not_enabled_are_invalid(instrument):
    Driver().rejected("invalid_event", "measure_recorded", instrument=instrument, score=5)


def test_phq9_item_9_risk_opens_the_review_whatever_the_total():
    d = Driver()
    d.ok("measure_recorded", instrument="phq9", score=1, items=[0] * 8 + [1])
    assert d.course.open_reviews == ["risk"]


def test_measure_is_recorded_with_its_state():
    d = Driver()
    d.to_initial()
    d.ok("measure_recorded", **hamd17(12))
    last = d.course.facts.measures[-1]
    assert (last.instrument, last.score, last.state) == ("hamd17", 12, "initial")


def _protocol_with_itemless_instrument(tmp_path: Path) -> Registry:
    text = BASE_TOML.read_text(encoding="utf-8")
    text = text.replace('id = "ipt-depression"', 'id = "ipt-test-itemless"', 1)
    text = text.replace('primary_instruments = ["phq9", "hamd17"]',
                        'primary_instruments = ["mood", "phq9", "hamd17"]', 1)
    text += '\n[instruments.mood]\ntitle = "mood rating"\nmin = 0\nmax = 6\ninteger = false\n'
    (tmp_path / "itemless.toml").write_text(text, encoding="utf-8")
    return Registry(protocol_dirs=[tmp_path])


def test_items_are_forbidden_for_instruments_without_items(tmp_path):
    registry = _protocol_with_itemless_instrument(tmp_path)
    course = Course.open(opened(protocol="ipt-test-itemless"), registry)
    bad = course.apply({"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
                        "instrument": "mood", "score": 3, "items": [3]})
    assert bad.code == "invalid_event"
    assert "items" in bad.message
    ok = course.apply({"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
                       "instrument": "mood", "score": 3.5})
    assert ok.ok


def test_non_integer_instruments_accept_numbers_inside_their_range(tmp_path):
    registry = _protocol_with_itemless_instrument(tmp_path)
    course = Course.open(opened(protocol="ipt-test-itemless"), registry)
    for score, code in [(6.0, None), (0, None), (6.5, "invalid_event"), (-0.1, "invalid_event")]:
        result = course.apply({"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
                               "instrument": "mood", "score": score})
        assert (None if result.ok else result.code) == code, score


@pytest.mark.parametrize("baseline,latest,pct", [(1.6, 1.1, -31.3), (1.6, 1.7, 6.3), (4.0, 3.5, -12.5)])
def test_change_pct_of_decimal_scores_rounds_the_written_values(tmp_path, baseline, latest, pct):
    registry = _protocol_with_itemless_instrument(tmp_path)
    course = Course.open(opened(protocol="ipt-test-itemless"), registry)
    for score in (baseline, latest):
        assert course.apply({"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
                             "instrument": "mood", "score": score}).ok
    assert course.outcome.change_pct == pct
