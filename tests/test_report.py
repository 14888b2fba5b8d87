"""The report's numbers on a small store whose counts are known; the JSON, text and HTML outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.research.demo import demo_events
from iptflow.research.report import build_report
from iptflow.store.api import Store


def ev(etype: str, at: str, **fields) -> dict:
    return {"type": etype, "at": at, **fields}


def courses() -> tuple[list[list[dict]], list[dict]]:
    completed = demo_events("a-completed")  # 12 sessions, remission, no deviation
    early = [e for e in demo_events("d-missed") if e["at"] <= "2025-01-27T11:00:00Z"]  # up to middle
    missed = early + [
        ev("session_missed", "2025-02-03T09:00:00Z"),
        ev("session_missed", "2025-02-10T09:00:00Z"),
        ev("session_missed", "2025-02-17T09:00:00Z"),      # missed_sessions deviation
        ev("course_discontinued", "2025-02-17T10:00:00Z", reason="moved away"),
    ]
    dropped = [
        ev("course_opened", "2025-01-06T09:00:00Z", course_id="b-dropped", protocol="ipt-depression"),
        ev("measure_recorded", "2025-01-06T09:30:00Z", instrument="phq9", score=15, item9=0),
        ev("course_discontinued", "2025-01-07T09:00:00Z", reason="declined treatment"),
    ]
    referred = [
        ev("course_opened", "2025-01-06T09:00:00Z", course_id="c-referred", protocol="ipt-depression",
           adaptations=["adolescent"], patient={"age": 15}),
        ev("measure_recorded", "2025-01-06T09:30:00Z", instrument="phq9a", score=20, item9=0),
        ev("measure_recorded", "2025-01-08T09:30:00Z", instrument="phq9a", score=18, item9=0),
        ev("course_referred", "2025-01-09T09:00:00Z", reason="needs inpatient care"),
    ]
    return [completed, missed, dropped], [referred]


@pytest.fixture
def store(tmp_path):
    real, synthetic = courses()
    with Store.open(tmp_path / "known.db", clock=None) as s:
        s.import_many(real)
        s.import_many(synthetic, synthetic=True)
        yield s


def test_report_numbers_on_a_known_store(store):
    r = build_report(store)
    assert r["courses"] == 4
    assert r["data"] == {"label": "mixed", "synthetic_courses": 1, "real_courses": 3,
                         "simulation_runs": []}
    assert r["states"] == {"completed": 1, "discontinued": 2, "referred_out": 1}
    assert r["sessions"] == {"mean": 3.75, "median": 1.5, "distribution": {"0": 2, "3": 1, "12": 1}}
    assert r["phase_days"] == {
        "assessment": {"courses": 4, "mean": 1.04, "median": 0.54},   # 2 h, 1 d, 3 d, 2 h
        "initial": {"courses": 2, "mean": 21.0, "median": 21.0},
        "middle": {"courses": 2, "mean": 34.98, "median": 34.98},     # 49 d and 20 d 23 h
        "termination": {"courses": 1, "mean": 14.0, "median": 14.0},
    }
    assert r["deviations_per_100"] == {"missed_sessions": 25.0}
    assert r["outcomes"] == {
        "ipt-depression": {"non_response": 1, "none": 1, "remission": 1},
        "ipt-depression+adolescent": {"non_response": 1},
    }
    # phq9 17 -> 14 (initial) -> 4 (middle) -> 3 (termination), as percent of baseline
    assert r["trajectories"]["remission"] == {"assessment": 100.0, "initial": 82.35, "middle": 23.53,
                                              "termination": 17.65}
    assert r["trajectories"]["non_response"]["assessment"] == 95.0  # (100 + 18/20) / 2


def test_cli_text_json_and_self_contained_html(store, tmp_path):
    path = store.path
    store.close()
    runner = CliRunner()
    as_json = runner.invoke(cli, ["report", "--db", path, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["states"]["discontinued"] == 2
    html = tmp_path / "report.html"
    text = runner.invoke(cli, ["report", "--db", path, "--html", str(html)])
    assert text.exit_code == 0
    assert text.output.startswith("*** MIXED DATA: 1 simulated course(s) of 4 ***")
    page = html.read_text(encoding="utf-8")
    assert "MIXED DATA" in page
    for external in ("<script", "<link", "src=", 'href="http', "url(http", "@import"):
        assert external not in page  # nothing is fetched: the page works offline
    body = page[page.index("<body>"):page.index("</body>") + len("</body>")]
    tree = ET.fromstring(body)  # well-formed: every SVG chart parses
    assert len(tree.findall(".//{http://www.w3.org/2000/svg}svg")) >= 5
    assert "One course's timeline" in page  # the plot extra is installed with the test extras


def test_report_on_a_missing_store_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert result.output.startswith("iptflow: error: no database at")
