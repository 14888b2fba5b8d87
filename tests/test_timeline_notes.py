"""The notes column of timelines (``iptflow replay`` and the demo): what happened, in words."""

from __future__ import annotations

import pytest

from iptflow.engine.timeline import change_in_words, event_note

TITLES = {"risk": "suicide risk review", "mania": "mania review"}


@pytest.mark.parametrize("event,opened,closed,note", [
    ({"type": "measure_recorded", "instrument": "phq9", "score": 12, "items": [2, 2, 2, 2, 2, 1, 0, 0, 1]},
     ["risk"], [], "PHQ-9 12 (item 9: 1); opens the suicide risk review"),
    ({"type": "measure_recorded", "instrument": "phq9a", "score": 7, "item9": 0}, [], [],
     "PHQ-A 7 (item 9: 0)"),
    ({"type": "measure_recorded", "instrument": "caps5", "score": 40}, [], [], "CAPS-5 40"),
    ({"type": "measure_recorded", "instrument": "phq9", "score": 15}, ["risk"], [],
     "PHQ-9 15 (item 9 not recorded); opens the suicide risk review"),
    ({"type": "measure_recorded", "instrument": "phq9", "score": 0}, [], [], "PHQ-9 0"),
    ({"type": "risk_assessed", "level": "high", "safety_plan": False,
      "no_plan_reason": "went to the emergency department"}, [], ["risk"],
     "risk high, no safety plan: went to the emergency department; closes the suicide risk review"),
    ({"type": "problem_area_selected", "area": "role_dispute", "stage": "impasse"}, [], [],
     "problem area: role dispute (impasse)"),
    ({"type": "relapse_plan_recorded", "warning_signs": ["early waking", "not eating"]}, [], [],
     "warning signs: early waking, not eating"),
    ({"type": "course_referred", "reason": "acute risk", "to": "crisis team",
      "handover": "Dr Osei"}, [], [], "reason: acute risk; to crisis team; handed over to Dr Osei"),
    ({"type": "mania_flagged", "reason": "pressured speech"}, ["mania"], [],
     "mania concern: pressured speech; opens the mania review"),
    ({"type": "treatment_started"}, [], [], ""),
])
def test_event_note_says_what_happened(event, opened, closed, note) -> None:
    assert event_note(event, opened, closed, TITLES) == note


@pytest.mark.parametrize("change,words", [
    (-82.4, "82% reduction"), (-50.0, "50% reduction"), (-0.5, "1% reduction"),
    (12.5, "13% increase"), (0.0, "no change"), (None, "change not computable (baseline 0)"),
])
def test_change_in_words(change, words) -> None:
    assert change_in_words(change) == words
