"""A week in a small IPT clinic, recorded the way a clinical application would use iptflow.

Run it:  python examples/clinic_app.py [--db clinic.db]

It uses only the library API (``iptflow.store.Store``):

* each visit is recorded with ``expected_seq`` (the event number the clinician's screen showed)
  and an ``idempotency_key`` (the visit id), so a double-click or a network retry never records
  a session twice, and two clinicians editing one course at once are told about it;
* a rejection is shown to the clinician in words, and nothing is stored;
* at the end of the week it prints, for every course, what is due next: the events allowed now
  and the requirements not yet met (``Course.allowed_events()``, ``Course.unmet_requirements()``).

Course ids are pseudonyms: patient identity stays in the clinic's own records.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from iptflow.store.api import Store

MONDAY = datetime(2025, 3, 3, 9, 0)


def at(day: int, hour: int = 9, week: int = 0) -> str:
    """Monday is day 0 of this week; ``week=-2`` is two weeks earlier."""
    moment = MONDAY + timedelta(days=day + 7 * week, hours=hour - 9)
    return moment.strftime("%Y-%m-%dT%H:%M:00+01:00")


def phq(instrument: str, items: list[int]) -> dict[str, Any]:
    return {"instrument": instrument, "score": sum(items), "items": items}


class Clinic:
    """The application's thin layer over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, event: dict[str, Any], visit: str) -> None:
        result = self.store.open_course(event, idempotency_key=visit)
        self._say(event["course_id"], event, visit, result)

    def record(self, course_id: str, event: dict[str, Any], visit: str) -> None:
        shown_seq = self.store.row(course_id).last_seq  # what the clinician's screen showed
        result = self.store.apply(course_id, event, expected_seq=shown_seq, idempotency_key=visit)
        if not result.ok and result.code == "conflict":  # changed by someone else: reload, retry
            shown_seq = self.store.row(course_id).last_seq
            result = self.store.apply(course_id, event, expected_seq=shown_seq, idempotency_key=visit)
        self._say(course_id, event, visit, result)

    def _say(self, course_id: str, event: dict[str, Any], visit: str, result: Any) -> None:
        when = event["at"][:16].replace("T", " ")
        if result.ok:
            note = "".join(f"; DEVIATION {d.code}" for d in result.deviations)
            note += "".join(f"; review opened: {r}" for r in result.opened_reviews)
            print(f"  {when} {course_id} {visit}: {event['type']} recorded as event {result.seq} "
                  f"({result.state}){note}")
        else:
            print(f"  {when} {course_id} {visit}: {event['type']} NOT recorded "
                  f"[{result.code}] {result.message}")


def earlier_weeks(clinic: Clinic) -> None:
    """What the clinic recorded before this week (two courses already under way)."""
    clinic.open({"type": "course_opened", "at": at(0, week=-2), "course_id": "p-101",
                 "protocol": "ipt-depression", "actor": "dr-ade"}, "v-0001")
    for event, visit in [
        ({"type": "measure_recorded", "at": at(0, 10, -2),
          **phq("phq9", [2, 2, 2, 2, 2, 2, 2, 2, 0])}, "v-0002"),
        ({"type": "diagnosis_confirmed", "at": at(0, 10, -2),
          "diagnosis": "major_depressive_disorder"}, "v-0003"),
        ({"type": "treatment_started", "at": at(0, 11, -2)}, "v-0004"),
        ({"type": "session_held", "at": at(1, 9, -2), "number": 1}, "v-0005"),
        ({"type": "sick_role_given", "at": at(1, 10, -2)}, "v-0006"),
        ({"type": "session_held", "at": at(1, 9, -1), "number": 2}, "v-0007"),
        ({"type": "interpersonal_inventory_completed", "at": at(1, 10, -1)}, "v-0008"),
    ]:
        clinic.record("p-101", {**event, "actor": "dr-ade"}, visit)
    clinic.open({"type": "course_opened", "at": at(2, week=-1), "course_id": "p-103",
                 "protocol": "ipt-depression", "actor": "dr-lin"}, "v-0009")


def this_week(clinic: Clinic) -> None:
    # Monday: an adolescent intake; p-103's questionnaire shows thoughts of self-harm (item 9).
    clinic.open({"type": "course_opened", "at": at(0), "course_id": "p-102", "protocol": "ipt-depression",
                 "adaptations": ["adolescent"], "patient": {"age": 15}, "actor": "dr-lin"}, "v-0101")
    clinic.record("p-102", {"type": "guardian_consent_recorded", "at": at(0, 10)}, "v-0102")
    clinic.record("p-102", {"type": "measure_recorded", "at": at(0, 10),
                            **phq("phq9a", [2, 2, 2, 2, 2, 1, 2, 2, 0])}, "v-0103")
    clinic.record("p-102", {"type": "diagnosis_confirmed", "at": at(0, 11),
                            "diagnosis": "major_depressive_disorder"}, "v-0104")
    clinic.record("p-102", {"type": "treatment_started", "at": at(0, 11)}, "v-0105")
    clinic.record("p-103", {"type": "measure_recorded", "at": at(0, 14),
                            **phq("phq9", [3, 2, 2, 2, 2, 2, 2, 2, 1])}, "v-0106")
    clinic.record("p-103", {"type": "diagnosis_confirmed", "at": at(0, 14),
                            "diagnosis": "major_depressive_disorder"}, "v-0107")

    # Tuesday: p-101's third session, problem area and contract; the middle phase begins.
    clinic.record("p-101", {"type": "session_held", "at": at(1), "number": 3}, "v-0110")
    clinic.record("p-101", {"type": "session_held", "at": at(1), "number": 3}, "v-0110")  # a retry
    clinic.record("p-101", {"type": "problem_area_selected", "at": at(1, 10), "area": "role_dispute",
                            "stage": "renegotiation"}, "v-0111")
    clinic.record("p-101", {"type": "formulation_agreed", "at": at(1, 10), "planned_sessions": 14},
                  "v-0112")
    clinic.record("p-101", {"type": "middle_phase_started", "at": at(1, 11)}, "v-0113")

    # Wednesday: treatment cannot start for p-103 while the risk review is open.
    clinic.record("p-103", {"type": "treatment_started", "at": at(2)}, "v-0120")
    clinic.record("p-103", {"type": "risk_assessed", "at": at(2, 10), "level": "low",
                            "safety_plan": True}, "v-0121")
    clinic.record("p-103", {"type": "treatment_started", "at": at(2, 11)}, "v-0122")

    # Thursday: p-102's first session and a parent session; p-103's first session.
    clinic.record("p-102", {"type": "session_held", "at": at(3), "number": 1}, "v-0130")
    clinic.record("p-102", {"type": "parent_session_held", "at": at(3, 10)}, "v-0131")
    clinic.record("p-103", {"type": "session_held", "at": at(3, 14), "number": 1}, "v-0132")

    # Friday: a new intake, and p-101's first middle-phase session.
    clinic.open({"type": "course_opened", "at": at(4), "course_id": "p-104",
                 "protocol": "ipt-depression", "actor": "dr-ade"}, "v-0140")
    clinic.record("p-104", {"type": "measure_recorded", "at": at(4, 10),
                            **phq("phq9", [1, 2, 1, 2, 1, 1, 1, 1, 0])}, "v-0141")
    clinic.record("p-101", {"type": "session_held", "at": at(4, 11), "number": 4,
                            "techniques": ["communication_analysis"]}, "v-0142")


def due_next(store: Store) -> None:
    for row in store.list():
        course = store.get(row.id)
        adapt = f" + {', '.join(row.adaptations)}" if row.adaptations else ""
        reviews = f", open reviews: {', '.join(course.open_reviews)}" if course.open_reviews else ""
        print(f"{row.id} ({row.protocol_id}{adapt}): {course.state}, "
              f"{course.sessions_held} sessions held{reviews}")
        for event_type in course.allowed_events():
            unmet = course.unmet_requirements(event_type)
            if unmet:
                print(f"    {event_type}: not yet - " + "; ".join(message for _, message in unmet))
            else:
                print(f"    {event_type}: possible now")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database file (default: a new temporary file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "clinic.db"
        with Store.open(path) as store:
            clinic = Clinic(store)
            print("Earlier weeks:")
            earlier_weeks(clinic)
            print("This week:")
            this_week(clinic)
            print(f"\nDue next (stored in {path}):")
            due_next(store)
            report = store.verify()
            print(f"\naudit: {'ok' if report.ok else 'FAILED'}, {report.events} events in "
                  f"{report.courses} courses")
            return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
