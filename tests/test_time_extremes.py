"""Times at the edges of what an event accepts: offsets beyond FHIR's +/-14:00 (up to +/-23:59),
years 0001 and 9999. Export, plot and report through the real CLI, on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.interop.fhir_codes import instant
from iptflow.research.plot import shifted

ROOT = Path(__file__).resolve().parent.parent
REMISSION = ROOT / "tests" / "courses" / "base" / "remission.course.jsonl"
OPENED_AT = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # the course file's first time

# (name, where the course starts, on the wall clock, and its offset): the last course ends on
# 9999-12-31T22:00-15:00 (in UTC that is year 10000); the first starts on 0001-01-01T00:00+15:00
# (in UTC, year 0)
EXTREMES = [
    ("end-of-calendar", datetime(9999, 10, 8, 20, 0), "-15:00"),
    ("start-of-calendar", datetime(1, 1, 1, 0, 0), "+15:00"),
    ("far-east", datetime(2025, 1, 6, 9, 0), "+23:59"),
]


def _course_file(tmp_path: Path, name: str, start: datetime, offset: str) -> Path:
    """The remission course with every time moved to start at ``start``, at ``offset``."""
    out = []
    for text in REMISSION.read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        line = json.loads(text)
        if "at" in line:
            moved = start + (datetime.fromisoformat(line["at"]) - OPENED_AT)
            line["at"] = f"{moved.year:04d}-{moved:%m-%dT%H:%M:%S}{offset}"
        out.append(json.dumps(line))
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("name, start, offset", EXTREMES)
def test_export_plot_and_report_work_at_the_edges_of_the_calendar(
    tmp_path: Path, name: str, start: datetime, offset: str
) -> None:
    pytest.importorskip("fhir.resources")  # export validates its resources with it
    pytest.importorskip("matplotlib")
    path = _course_file(tmp_path, name, start, offset)
    db = str(tmp_path / "store.db")
    assert _run("replay", str(path)).exit_code == 0
    assert _run("course", "import", str(path), "--db", db).exit_code == 0
    fhir = _run("export", "fhir", "base-remission", "--db", db)
    assert fhir.exit_code == 0, fhir.output
    times = [v for k, v in _walk(json.loads(fhir.stdout)) if k in ("start", "recordedDate", "timestamp")]
    assert times and all(t[-6:] in ("+14:00", "-14:00") or t.endswith("Z") or
                         abs(int(t[-6:-3])) <= 14 for t in times)
    svg = tmp_path / "course.svg"
    plot = _run("course", "plot", "base-remission", "--db", db, "--out", str(svg))
    assert plot.exit_code == 0, plot.output
    assert svg.read_text(encoding="utf-8").startswith("<?xml")
    html = tmp_path / "report.html"
    report = _run("report", "--db", db, "--html", str(html))
    assert report.exit_code == 0, report.output
    assert "<html" in html.read_text(encoding="utf-8")


def _walk(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def test_fhir_times_keep_the_instant_at_the_nearest_offset_fhir_allows() -> None:
    at = datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=15)))
    assert instant(at) == "2025-03-01T09:00:00+14:00"  # the same instant
    at = datetime(9999, 12, 31, 22, 0, tzinfo=timezone(-timedelta(hours=15)))
    assert instant(at) == "9999-12-31T23:00:00-14:00"  # in UTC it would be year 10000
    late = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(-timedelta(hours=15)))
    assert instant(late) == "9999-12-31T23:59:59.999999-14:00"  # the last moment FHIR can hold
    early = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=15)))
    assert instant(early) == "0001-01-01T00:00:00+14:00"  # the first moment FHIR can hold
    assert instant(datetime(2025, 3, 1, 10, 0, tzinfo=UTC)) == "2025-03-01T10:00:00Z"
    assert instant(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-9)))) == "0001-01-01T00:00:00-09:00"


def test_the_picture_holds_a_day_added_at_the_end_of_the_calendar() -> None:
    last = datetime(9999, 12, 31, 12, 0)
    assert shifted(last, timedelta(days=1)) == datetime.max
    assert shifted(datetime(1, 1, 1), -timedelta(days=1)) == datetime.min
    assert shifted(datetime(2025, 1, 1), timedelta(days=1)) == datetime(2025, 1, 2)
