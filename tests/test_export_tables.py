"""Analysis tables: every column of every table round-trips into pandas with the documented
dtypes, through CSV, Parquet and JSON Lines, from the CLI and from to_pandas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.research import to_pandas
from iptflow.research.export import DTYPES, FORMATS, TABLES, read_table, table_rows
from iptflow.research.model import TrajectoryModel
from iptflow.research.simulate import SimulationSpec, simulate_cohort
from iptflow.store.api import Store

DOC = Path(__file__).resolve().parent.parent / "docs" / "export.md"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export") / "cohort.db"
    simulate_cohort(SimulationSpec("ipt-depression", ("ptsd",), 30, 4, TrajectoryModel()), path)
    with Store.open(path, clock=None) as store:  # a real course with an actor and a phq9 item 9
        store.open_course({"type": "course_opened", "at": "2025-01-06T09:00:00+01:00",
                           "course_id": "real-1", "protocol": "ipt-depression", "actor": "dr-a"})
        store.apply("real-1", {"type": "measure_recorded", "at": "2025-01-06T10:00:00Z",
                               "instrument": "phq9", "score": 17, "item9": 0, "actor": "dr-a"})
    return path


@pytest.fixture(scope="module")
def frames(db) -> dict[str, pd.DataFrame]:
    with Store.open(db, readonly=True) as store:
        return to_pandas(store)


def test_frames_hold_every_row_with_the_documented_dtypes(db, frames):
    assert set(frames) == set(TABLES)
    for table, frame in frames.items():
        assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES[table], table
    courses, events, measures = frames["courses"], frames["events"], frames["measures"]
    assert len(courses) == 31 and courses["synthetic"].sum() == 30
    assert len(events) == courses["last_seq"].sum()
    real = courses.set_index("course_id").loc["real-1"]
    assert real["created_at"] == pd.Timestamp("2025-01-06T08:00:00Z")  # the offset, in UTC
    assert pd.isna(real["outcome_status"]) and real["adaptations"] == ""
    first = events[events.course_id == "real-1"].iloc[0]
    assert first["actor"] == "dr-a" and json.loads(first["body"])["type"] == "course_opened"
    m = measures[measures.course_id == "real-1"].iloc[0]
    assert (m["instrument"], m["score"], m["item9"]) == ("phq9", 17.0, 0)
    assert measures["item9"].isna().any()  # pcl5 measures have none
    assert len(measures) == (events["type"] == "measure_recorded").sum()
    with Store.open(db, readonly=True) as store:
        found = sum(len(store.get(cid).deviations) for cid in courses.course_id)
        assert len(frames["deviations"]) == found == courses["deviations"].sum() > 0
        assert list(table_rows(store, "courses"))[0]["course_id"] == courses.course_id.iloc[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", list(TABLES))
def test_cli_export_round_trips_every_column(db, frames, tmp_path, table, fmt):
    out = tmp_path / f"{table}.{fmt}"
    result = CliRunner().invoke(cli, ["export", table, "--format", fmt, "--out", str(out),
                                      "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == {"table": table, "format": fmt, "file": str(out), "rows": len(frames[table]),
                      "columns": list(DTYPES[table])}
    back = read_table(out, table)
    pd.testing.assert_frame_equal(back, frames[table])


def test_csv_and_jsonl_go_to_stdout_and_read_back_with_plain_pandas(db, frames, tmp_path):
    result = CliRunner().invoke(cli, ["export", "courses", "--db", str(db)])
    assert result.exit_code == 0
    path = tmp_path / "c.csv"
    path.write_text(result.output)
    plain = pd.read_csv(path, keep_default_na=False)
    assert list(plain.columns) == list(DTYPES["courses"]) and len(plain) == 31
    lines = CliRunner().invoke(cli, ["export", "measures", "--format", "jsonl", "--db", str(db)]).output
    rows = [json.loads(line) for line in lines.splitlines()]
    assert len(rows) == len(frames["measures"]) and set(rows[0]) == set(DTYPES["measures"])


def test_usage_errors_exit_2_and_leave_nothing(db, tmp_path):
    runner = CliRunner()
    parquet = runner.invoke(cli, ["export", "events", "--format", "parquet", "--db", str(db)])
    assert parquet.exit_code == 2 and "needs --out" in parquet.output
    missing = runner.invoke(cli, ["export", "courses", "--db", str(tmp_path / "none.db"),
                                  "--out", str(tmp_path / "x.csv")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    nodir = runner.invoke(cli, ["export", "courses", "--db", str(db), "--out",
                                str(tmp_path / "no" / "x.csv")])
    assert nodir.exit_code == 2 and "no directory" in nodir.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_docs_list_every_column_with_its_dtype():
    text = DOC.read_text()
    for table, dtypes in DTYPES.items():
        section = text.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0]
        documented = dict(re.findall(r"^\| `(\w+)` \| ([\w\[\], ]+?)(?:, nullable)? \|", section, re.M))
        assert documented == dtypes, table


def test_paged_reads_on_both_backends(store_url):
    with Store.open(store_url, clock=None) as store:
        for i in range(7):
            store.open_course({"type": "course_opened", "at": f"2025-01-0{i + 1}T09:00:00Z",
                               "course_id": f"c-{i}", "protocol": "ipt-depression"})
            store.apply(f"c-{i}", {"type": "measure_recorded", "at": f"2025-01-0{i + 1}T10:00:00Z",
                                   "instrument": "phq9", "score": 10 + i})
        rows = list(store.iter_rows(page=3))
        assert [r.id for r in rows] == [f"c-{i}" for i in range(7)]
        events = list(store.iter_events(page=4))
        assert [(e.course_id, e.seq) for e in events] == [(f"c-{i}", s) for i in range(7) for s in (1, 2)]
        measures = list(store.iter_events("measure_recorded", page=2))
        assert [e.event["score"] for e in measures] == list(range(10, 17))
        frames = to_pandas(store)
        assert frames["measures"]["score"].tolist() == [float(s) for s in range(10, 17)]
