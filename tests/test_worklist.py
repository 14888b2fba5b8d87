"""The worklist of a store: Store.worklist, ``iptflow worklist`` (text and --json, read-only,
errors) and its FHIR Tasks validated by fhir.resources (docs/worklist.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.errors import InvalidAsOf
from iptflow.research.clinic import clinic_snapshot
from iptflow.store import Store
from iptflow.store.errors import InvalidArgument

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
AS_OF = T0 + timedelta(days=30)
ITEMS = [2, 2, 2, 2, 2, 2, 2, 2, 0]


def ev(etype: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": etype, "at": at.isoformat().replace("+00:00", "Z"), **fields}


def course(cid: str, actor: str, *, days: int, risk: bool = False,
           closed: bool = False) -> list[dict[str, Any]]:
    """A course in the middle phase whose last session was ``days`` before AS_OF."""
    start = T0 + timedelta(hours=1)
    events = [
        ev("course_opened", T0, course_id=cid, protocol="ipt-depression", actor=actor),
        ev("measure_recorded", T0, instrument="phq9", score=16, items=ITEMS),
        ev("diagnosis_confirmed", T0, diagnosis="major_depressive_disorder"),
        ev("treatment_started", start),
        ev("session_held", start, number=1),
        ev("sick_role_given", start), ev("interpersonal_inventory_completed", start),
        ev("problem_area_selected", start, area="grief"),
        ev("formulation_agreed", start, planned_sessions=12),
        ev("middle_phase_started", start),
    ]
    last = AS_OF - timedelta(days=days)
    events.append(ev("session_held", last, number=2, actor=actor))
    if risk:
        events.append(ev("risk_flagged", last, reason="hopelessness"))
    if closed:
        events.append(ev("course_discontinued", last, reason="moved", actor=actor,
                         **({"handover": "GP"} if risk else {})))
    return events


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.db"
    with Store.open(path, clock=None) as store:
        store.import_many([
            course("c-late", "dr-a", days=20),            # urgent: past the 14-day gap
            course("c-risk", "dr-b", days=2, risk=True),  # urgent: an open risk review
            course("c-due", "dr-a", days=8),              # due: a week since the last session
            course("c-gone", "dr-a", days=3, risk=True, closed=True),
        ])
    return path


def test_store_worklist_puts_safety_reviews_first_then_by_due_time(db: Path) -> None:
    with Store.open(db, readonly=True) as store:
        wl = store.worklist(AS_OF)
    assert wl.courses == 3  # the discontinued course is not looked at
    head = [(e.course_id, e.item.kind, e.item.severity) for e in wl.entries[:2]]
    assert head == [("c-risk", "review_open", "urgent"), ("c-late", "session_overdue", "urgent")]
    due = [(e.course_id, e.item.kind) for e in wl.entries if e.item.severity == "due"]
    assert ("c-due", "session_overdue") in due
    times = [e.item.due for e in wl.entries if e.item.severity == "due" and e.item.due]
    assert times == sorted(times)
    assert "c-gone" not in {e.course_id for e in wl.entries}
    ranks = [("urgent", "due", "info").index(e.item.severity) for e in wl.entries]
    assert ranks == sorted(ranks)
    assert wl.counts()["urgent"] == 2


def test_store_worklist_filters_by_actor_and_severity(db: Path) -> None:
    with Store.open(db, readonly=True) as store:
        mine = store.worklist(AS_OF, actor="dr-a", severities=["urgent", "due"])
        with pytest.raises(InvalidArgument, match="unknown severity 'soon'"):
            store.worklist(AS_OF, severities=["soon"])
    assert {e.course_id for e in mine.entries} == {"c-late", "c-due"}
    assert mine.courses == 2 and all(e.actor == "dr-a" for e in mine.entries)
    assert {e.item.severity for e in mine.entries} <= {"urgent", "due"}


def test_store_worklist_refuses_a_time_before_a_courses_last_event(db: Path) -> None:
    with Store.open(db, readonly=True) as store, pytest.raises(InvalidAsOf, match="c-due|c-late|c-risk"):
        store.worklist(AS_OF - timedelta(days=5))


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["worklist", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_cli_json_is_one_object_in_worklist_order(db: Path) -> None:
    result = invoke("--db", str(db), "--as-of", "2025-02-05T09:00:00Z", "--json")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["as_of"] == "2025-02-05T09:00:00Z" and data["courses"] == 3
    first = data["items"][0]
    assert {k: first[k] for k in ("course_id", "actor", "state", "kind", "severity")} == {
        "course_id": "c-risk", "actor": "dr-b", "state": "middle", "kind": "review_open",
        "severity": "urgent"}
    assert first["resolved_by"] == ["risk_assessed"] and first["details"]["review"] == "risk"
    assert data["counts"] == {s: sum(i["severity"] == s for i in data["items"])
                              for s in ("urgent", "due", "info")}


def test_cli_text_reads_like_a_clinic_list(db: Path) -> None:
    result = invoke("--db", str(db), "--as-of", "2025-02-05T09:00:00Z", "--actor", "dr-b")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("Worklist as of 2025-02-05T09:00:00Z: 1 active course; 1 urgent")
    assert "URGENT\n  c-risk (dr-b, middle)  review_open\n      suicide risk review open since" in out
    assert max(len(line) for line in out.splitlines()) <= 120


@pytest.mark.parametrize(("args", "text"), [
    (["--as-of", "2025-02-05T09:00:00"], "has no time zone"),
    (["--as-of", "tomorrow"], "is not an RFC 3339 date-time"),
    (["--as-of", "2025-01-07T09:00:00Z"], "earlier than its last accepted event"),
])
def test_cli_unusable_as_of_is_exit_2_in_one_line(db: Path, args: list[str], text: str) -> None:
    result = invoke("--db", str(db), *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert text in result.stderr and len(result.stderr.splitlines()) == 1


def test_cli_refuses_a_missing_database_and_leaves_the_store_unchanged(tmp_path: Path, db: Path) -> None:
    missing = tmp_path / "none.db"
    result = invoke("--db", str(missing), "--as-of", "2025-02-05T09:00:00Z")
    assert result.exit_code == 2 and not missing.exists()
    before = db.read_bytes()
    assert invoke("--db", str(db), "--as-of", "2025-02-05T09:00:00Z").exit_code == 0
    assert db.read_bytes() == before  # read-only


def test_fhir_tasks_validate_under_r4b(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.bundle import Bundle

    out = tmp_path / "tasks.json"
    result = invoke("--db", str(db), "--as-of", "2025-02-05T09:00:00Z", "--fhir", str(out), "--json")
    assert result.exit_code == 0
    bundle = Bundle.model_validate_json(out.read_text(encoding="utf-8"))
    tasks = [e.resource for e in bundle.entry or []]
    listed = [i for i in json.loads(result.stdout)["items"] if i["severity"] != "info"]
    assert len(tasks) == len(listed) > 0  # every urgent and due item, no info item
    risk = tasks[0]
    assert risk.get_resource_type() == "Task"
    assert (risk.status, risk.intent, risk.priority) == ("requested", "plan", "urgent")
    assert risk.for_fhir.identifier.value == "c-risk" and risk.focus.type == "CarePlan"
    assert risk.code.coding[0].code == "review_open"
    assert risk.executionPeriod.start.isoformat().startswith("2025-02-03T09:00:00")
    assert risk.owner.display == "dr-b"
    assert {t.priority for t in tasks[1:]} <= {"urgent", "routine"}
    again = tmp_path / "again.json"
    invoke("--db", str(db), "--as-of", "2025-02-05T09:00:00Z", "--fhir", str(again))
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_a_store_of_simulated_courses_gives_an_actionable_worklist(tmp_path: Path) -> None:
    events = clinic_snapshot("ipt-depression", 400, "2025-03-03T08:00:00Z", seed=5)
    events += clinic_snapshot("ipt-depression", 120, "2025-03-03T08:00:00Z", seed=5,
                              adaptations=["bipolar"])
    assert len(events) > 30
    with Store.open(tmp_path / "sim.db", clock=None, synchronous="OFF") as store:
        store.import_many(events, synthetic=True)
        wl = store.worklist("2025-03-03T08:00:00Z")
    assert wl.courses == len(events)
    assert all(e.item.message and e.item.kind for e in wl.entries)
    kinds = {e.item.kind for e in wl.entries}
    assert {"next_phase", "contract_missing"} <= kinds
    assert all(e.state not in ("completed", "discontinued", "referred_out") for e in wl.entries)


def test_the_worklist_bench_reports_its_figure() -> None:
    """A smoke test of bench/worklist_figure.py (its shape, never a timing)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "bench" / "worklist_figure.py"),
                           "--courses", "12", "--rounds", "2", "--json"],
                          capture_output=True, text=True, check=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["courses"] == report["active_courses_in_worklist"] == 12
    assert report["worklist_s"]["min"] <= report["worklist_s"]["median"] <= report["worklist_s"]["max"]
