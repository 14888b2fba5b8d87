"""The third-party example plugin (examples/plugins/iptflow-perinatal), used two ways: installed
into a separate environment the way a researcher would, and registered in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from iptflow import Course, Registry
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.replay import replay_file

EXAMPLE = Path(__file__).parent.parent / "examples" / "plugins" / "iptflow-perinatal"
COURSE = EXAMPLE / "courses" / "perinatal.course.jsonl"
AT = "2025-01-06T09:00:00Z"


@pytest.fixture()
def perinatal(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import iptflow_perinatal

    return iptflow_perinatal


@pytest.fixture()
def registry(perinatal: ModuleType) -> Registry:
    pm, info = make_plugin_manager(entry_points_too=False, extra={"perinatal": perinatal})
    assert info["perinatal"].source == "registered"
    return Registry(pm)


def test_registered_in_process_the_course_replays(registry: Registry) -> None:
    result = replay_file(COURSE, registry)
    assert (result.exit_status, result.expectations_failed) == (0, [])
    assert result.state == "completed"
    assert result.protocol is not None and result.protocol["adaptations"] == ["perinatal"]
    assert result.outcome == {"instrument": "epds", "baseline": 19, "latest": 7,
                              "change_pct": -63.2, "status": "remission"}


def test_register_guards_adds_the_perinatal_guard(registry: Registry) -> None:
    assert registry.guards["perinatal_period"][1] == "perinatal"
    assert registry.event_plugins["perinatal_status_recorded"] == "perinatal"
    assert registry.adaptations["perinatal"][1] == "perinatal"


def _course(registry: Registry) -> Course:
    return Course.open({"type": "course_opened", "at": AT, "course_id": "p",
                        "protocol": "ipt-depression@1.0.0", "adaptations": ["perinatal"]}, registry)


@pytest.mark.parametrize("item10, opens", [(0, ()), (1, ("risk",)), (3, ("risk",))])
def test_epds_item_10_above_0_opens_the_risk_review(
    registry: Registry, item10: int, opens: tuple[str, ...]
) -> None:
    items = [2, 2, 2, 2, 2, 2, 2, 2, 2, item10]
    result = _course(registry).apply({"type": "measure_recorded", "at": AT, "instrument": "epds",
                                      "score": sum(items), "items": items})
    assert result.ok and result.opened_reviews == opens


@pytest.mark.parametrize(
    "score, items",
    [(31, None), (-1, None), (9, [1] * 9), (10, [1] * 11), (4, [4, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
     (5, [1] * 10)],
)
def test_epds_range_and_items(registry: Registry, score: int, items: list[int] | None) -> None:
    event: dict[str, Any] = {"type": "measure_recorded", "at": AT, "instrument": "epds",
                             "score": score}
    if items is not None:
        event["items"] = items
    assert _course(registry).apply(event).code == "invalid_event"


def test_epds_is_a_primary_instrument_and_becomes_the_baseline(registry: Registry) -> None:
    course = _course(registry)
    course.apply({"type": "measure_recorded", "at": AT, "instrument": "epds", "score": 15})
    assert course.protocol.primary_instruments[-1] == "epds"
    assert course.facts.baseline is not None and course.facts.baseline.instrument == "epds"


def test_without_the_plugin_the_course_cannot_be_used() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from iptflow.cli import main; main()", "replay", str(COURSE)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown adaptation 'perinatal'" in result.stderr


def test_installed_into_a_separate_venv_it_is_found_by_entry_point(tmp_path: Path) -> None:
    """pip-install the example (no network: --no-deps, no build isolation) into a new venv
    that sees this environment's packages, then run ``iptflow`` there."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    # addsitedir also runs the parent's .pth files (an editable install of iptflow)
    Path(site, "parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    source = tmp_path / "iptflow-perinatal"
    shutil.copytree(EXAMPLE, source)   # building writes metadata next to the sources
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", str(source)],
        capture_output=True, text=True, check=False,
    )
    assert install.returncode == 0, install.stderr
    cli = [str(python), "-c", "from iptflow.cli import main; main()"]
    listing = subprocess.run([*cli, "plugins", "--json"], capture_output=True, text=True,
                             check=False)
    assert listing.returncode == 0, listing.stderr
    plugin = next(p for p in json.loads(listing.stdout)["plugins"] if p["name"] == "perinatal")
    assert plugin["source"] == "entry point of iptflow-perinatal 0.1.0"
    assert plugin["hooks"] == ["register_adaptations", "register_events", "register_guards"]
    replay = subprocess.run([*cli, "replay", "--json", str(COURSE)], capture_output=True, text=True,
                            check=False)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    result = json.loads(replay.stdout)
    assert (result["state"], result["outcome"]["status"]) == ("completed", "remission")
