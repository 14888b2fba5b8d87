"""IPT for PTSD (SPEC §4 "ptsd"): no exposure, affect attunement, PCL-5 and CAPS-5 outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from iptflow import Course, default_registry
from iptflow.engine.replay import replay_file
from iptflow.protocol.instruments import outcome_status

COURSES = Path(__file__).parent / "courses" / "ptsd"
AT = "2025-01-06T09:00:00Z"


@pytest.mark.parametrize("path", sorted(COURSES.glob("*.jsonl")), ids=lambda p: p.name)
def test_course_file(path: Path) -> None:
    result = replay_file(path)
    assert (result.exit_status, result.expectations_failed) == (0, [])


def test_resolved_settings() -> None:
    p = default_registry().resolve("ipt-depression@1.0.0", ["ptsd"])
    assert p.indications == ["ptsd"]
    assert (p.session_range.min, p.session_range.max) == (14, 14)
    assert p.primary_instruments == ["phq9", "hamd17", "pcl5", "caps5"]


@pytest.mark.parametrize(
    "baseline, latest, status",
    [
        (50, 40, "response"),        # a drop of exactly 10, latest 40 >= 31
        (50, 41, "non_response"),    # a drop of 9
        (40, 30, "remission"),       # a drop of 10 and below 31
        (40, 31, "non_response"),    # below 31 is not enough: the drop is 9
        (45, 31, "response"),        # a drop of 14 but 31 is not below 31
        (20, 12, "non_response"),    # below 31 without a 10-point drop
    ],
)
def test_pcl5_outcome(baseline: int, latest: int, status: str) -> None:
    pcl5 = default_registry().resolve("ipt-depression@1.0.0", ["ptsd"]).instruments["pcl5"]
    assert outcome_status(pcl5, baseline, latest) == status


@pytest.mark.parametrize(
    "baseline, latest, status",
    [(50, 35, "non_response"), (50, 34, "response"), (10, 6, "response"), (0, 0, "non_response")],
)
def test_caps5_outcome(baseline: int, latest: int, status: str) -> None:
    caps5 = default_registry().resolve("ipt-depression@1.0.0", ["ptsd"]).instruments["caps5"]
    assert outcome_status(caps5, baseline, latest) == status


def test_exposure_is_refused_in_every_session_state_even_with_other_adaptations() -> None:
    compiled = default_registry().compile("ipt-depression@1.0.0", ["bipolar", "ptsd"])
    states = [s for s, events in compiled.allowed.items() if "session_held" in events]
    assert sorted(states) == ["initial", "maintenance", "middle", "preventive", "termination"]
    for state in states:
        for route in compiled.allowed[state]["session_held"]:
            assert "no_exposure" in [r.name for r in route.requires]


def test_exposure_session_is_guard_failed_and_changes_nothing() -> None:
    c = Course.open({"type": "course_opened", "at": AT, "course_id": "p-1",
                     "protocol": "ipt-depression@1.0.0", "adaptations": ["ptsd"]})
    for event in ({"type": "measure_recorded", "instrument": "pcl5", "score": 50},
                  {"type": "diagnosis_confirmed", "diagnosis": "ptsd"},
                  {"type": "treatment_started"}):
        assert c.apply({"at": AT, **event}).ok
    before = c.snapshot()
    result = c.apply({"type": "session_held", "at": AT, "techniques": ["exposure"]})
    assert (result.code, result.guards) == ("guard_failed", ("no_exposure",))
    assert c.snapshot() == before
    assert c.apply({"type": "session_held", "at": AT, "techniques": ["role_play"]}).ok
