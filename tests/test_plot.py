"""Course timeline pictures: iptflow course plot writes real SVG and PNG files."""

from __future__ import annotations

import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow import Course
from iptflow.cli import cli
from iptflow.research.demo import demo_events
from iptflow.research.plot import course_svg
from iptflow.store.api import Store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def missed_and_risk_course() -> list[dict]:
    ev = demo_events("plot-2")[:10]
    ev += [
        {"type": "risk_flagged", "at": "2025-01-27T10:00:00Z", "reason": "clinician judgement"},
        {"type": "session_missed", "at": "2025-02-03T09:00:00Z"},
        {"type": "session_missed", "at": "2025-02-10T09:00:00Z"},
        {"type": "session_missed", "at": "2025-02-17T09:00:00Z"},
        {"type": "risk_assessed", "at": "2025-02-18T09:00:00Z", "level": "low", "safety_plan": True},
    ]
    return ev


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plot") / "courses.db"
    with Store.open(path) as store:
        for events in (demo_events("plot-1"), missed_and_risk_course()):
            assert store.open_course(events[0]).ok
            for event in events[1:]:
                assert store.apply(events[0]["course_id"], event).ok
    return path


def test_plot_writes_a_png(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "course.png"
    result = CliRunner().invoke(cli, ["course", "plot", "plot-1", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (1000, 340)  # 10 in x (1.2 + 2.2) in at 100 dpi: one instrument panel


def test_plot_writes_an_svg_with_every_mark(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "course.svg"
    result = CliRunner().invoke(cli, ["course", "plot", "plot-2", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "720pt" and root.get("height") == "244.8pt"
    text = out.read_text(encoding="utf-8")
    assert text.count("<path") > 50  # text is drawn as paths (no fonts needed to view it)
    with Store.open(db, create=False) as store:
        assert course_svg(store.get("plot-2")) == text  # the same picture, deterministic


def test_the_figure_marks_sessions_missed_reviews_and_deviations(db: Path) -> None:
    from iptflow.research.plot import course_figure

    with Store.open(db, create=False) as store:
        course = store.get("plot-2")
    fig = course_figure(course)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["session held (3)", "session missed (3)", "deviation (1)", "risk review", "baseline"]
    (ax,) = fig.axes
    assert ax.get_ylabel() == "phq9"
    annotations = [a.get_text() for a in ax.texts]
    assert "missed_sessions" in annotations
    assert {"assessment", "initial"} <= set(annotations)


def test_plot_refuses_other_formats_and_unknown_courses(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    gif = str(tmp_path / "x.gif")
    result = runner.invoke(cli, ["course", "plot", "plot-1", "--db", str(db), "--out", gif])
    assert result.exit_code == 2
    assert "must be a .svg or .png file" in result.output
    assert not (tmp_path / "x.gif").exists()
    result = runner.invoke(cli, ["course", "plot", "nope", "--db", str(db), "--out", str(tmp_path / "x.svg")])
    assert result.exit_code == 2 and "nope" in result.output


def test_plot_without_matplotlib_says_what_to_install(db: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "iptflow.research.plot", raising=False)
    result = CliRunner().invoke(cli, ["course", "plot", "plot-1", "--db", str(db), "--out",
                                      str(tmp_path / "x.svg")])
    assert result.exit_code == 2
    assert "pip install 'iptflow[plot]'" in result.output
    assert "Traceback" not in result.output


def test_course_svg_needs_no_store() -> None:
    events = demo_events("mem-1")
    course = Course.open(events[0])
    for event in events[1:]:
        course.apply(event)
    svg = course_svg(course)
    assert svg.startswith("<?xml") and "<svg" in svg
