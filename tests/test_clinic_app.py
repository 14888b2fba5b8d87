"""examples/clinic_app.py runs, stores its week, and prints what is due next for each course."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from iptflow.store.api import Store

APP = Path(__file__).parent.parent / "examples" / "clinic_app.py"


def test_clinic_app_records_a_week_and_prints_what_is_due(tmp_path: Path):
    db = tmp_path / "clinic.db"
    done = subprocess.run([sys.executable, str(APP), "--db", str(db)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("NOT recorded") == 1 and "[guard_failed]" in out  # treatment during a risk review
    with Store.open(db, create=False) as store:
        assert [r.id for r in store.list()] == ["p-101", "p-102", "p-103", "p-104"]
        assert store.verify().ok
        keys = [e.idempotency_key for e in store.history("p-101")]
        assert len(keys) == len(set(keys)) == 13  # the retried visit was stored once
        due = out.split("Due next")[1]
        for row in store.list():
            course = store.get(row.id)
            block = due.split(f"\n{row.id} ")[1].split("\np-")[0]
            assert f"{course.state}, {course.sessions_held} sessions held" in block
            for event_type in course.allowed_events():
                unmet = course.unmet_requirements(event_type)
                if unmet:
                    assert f"{event_type}: not yet - {unmet[0][1]}" in block
                else:
                    assert f"{event_type}: possible now" in block
    assert store_states(db) == {"p-101": "middle", "p-102": "initial", "p-103": "initial",
                                "p-104": "assessment"}


def store_states(db: Path) -> dict[str, str]:
    with Store.open(db, create=False) as store:
        return {r.id: r.state for r in store.list()}
