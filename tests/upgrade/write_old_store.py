"""Run by the interpreter of an OLDER iptflow release (tests/test_upgrade.py): write a store
with that release and report what it holds, so the current code can be checked against it.

Usage: python write_old_store.py DB COURSES_DIR OUT_JSON

Only public API that every release has is used: Store.open, import_course_file, import_many,
open_course, apply, get(...).snapshot(), row(...), verify(). Nothing here imports the tests.
"""

import json
import sys
from pathlib import Path

from iptflow import IptflowError
from iptflow.research.demo import demo_events
from iptflow.store import Store


def live_course(store: Store) -> None:
    """A course still in progress, written event by event (the upgrade must let it go on)."""
    at = "2025-02-0{}T09:00:00Z"
    store.open_course({"type": "course_opened", "at": at.format(1), "course_id": "live-1",
                       "protocol": "ipt-depression", "actor": "clin-1"})
    for i, event in enumerate([
        {"type": "measure_recorded", "instrument": "phq9", "score": 22},
        {"type": "diagnosis_confirmed", "diagnosis": "major_depressive_disorder"},
        {"type": "treatment_started"},
        {"type": "session_held", "number": 1},
        {"type": "problem_area_selected", "area": "grief"},
        {"type": "problem_area_selected", "area": "interpersonal_deficits"},
    ], start=2):
        assert store.apply("live-1", {**event, "at": at.format(i)}).ok, event
    store.open_course({"type": "course_opened", "at": at.format(1), "course_id": "live-ptsd",
                       "protocol": "ipt-depression", "adaptations": ["ptsd"]})
    for i, event in enumerate([
        {"type": "measure_recorded", "instrument": "phq9", "score": 15},
        {"type": "measure_recorded", "instrument": "caps5", "score": 40},
        {"type": "diagnosis_confirmed", "diagnosis": "ptsd"},
        {"type": "treatment_started"},
        {"type": "measure_recorded", "instrument": "caps5", "score": 20},
    ], start=2):
        assert store.apply("live-ptsd", {**event, "at": at.format(i)}).ok, event


def main() -> None:
    db, courses_dir, out = sys.argv[1:4]
    with Store.open(db) as store:
        for path in sorted(Path(courses_dir).rglob("*.course.jsonl")):
            try:
                store.import_course_file(path, skip_rejected=True)
            except IptflowError:
                continue  # a course that is never opened, or an id already stored
        store.import_many([demo_events("demo-old")])
        live_course(store)
        courses = {}
        for row in store.list():
            r = store.row(row.id)
            courses[row.id] = {
                "snapshot": store.get(row.id).snapshot(),
                "row": {"state": r.state, "fingerprint": r.fingerprint,
                        "protocol_version": r.protocol_version, "last_seq": r.last_seq},
            }
        report = {"verify_ok": store.verify().ok, "courses": courses}
    Path(out).write_text(json.dumps(report, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
