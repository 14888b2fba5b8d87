"""Upgrade without loss: a store written by the release before protocol versions (built from the
git history into its own venv, dependencies from the package index) opens with the current code,
``iptflow verify`` passes, and every course loads to exactly the snapshot the old release
reported, staying on the protocol version it was opened with.

It runs in CI (``CI=true``), where anything missing is a failure. Elsewhere it is skipped, with
the reason naming what is missing, when git, the old commit or the package index is not there.
The old release's venv is kept in the temp directory (one per commit) to spare reinstalling it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import venv
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.engine.replay import replay_file
from iptflow.store import Store

ROOT = Path(__file__).resolve().parents[1]
#: a release before protocol versions ("testing (the pytest plugin) stays iptflow.testing")
OLD_RELEASE = "89b7596"
#: the subject of the commit that brought protocol versions: its parent is the release just
#: before them, wherever the history puts it (tested too when the history has it)
FIRST_VERSIONS_COMMIT = "Protocol 2.0.0 beside 1.0.0"
WRITER = Path(__file__).parent / "upgrade" / "write_old_store.py"


def _releases() -> list[str]:
    """The releases to upgrade from: OLD_RELEASE, and the parent of the versions commit."""
    releases = [OLD_RELEASE]
    git = shutil.which("git")
    if git is None:
        return releases
    found = subprocess.run([git, "-C", str(ROOT), "log", "--format=%H", "--fixed-strings",
                            f"--grep={FIRST_VERSIONS_COMMIT}", "HEAD"],
                           capture_output=True, text=True, check=False).stdout.split()
    if found:
        parent = subprocess.run([git, "-C", str(ROOT), "rev-parse", "--short=7", f"{found[-1]}^"],
                                capture_output=True, text=True, check=False).stdout.strip()
        if parent and not OLD_RELEASE.startswith(parent) and not parent.startswith(OLD_RELEASE):
            releases.append(parent)
    return releases

pytestmark = pytest.mark.upgrade


def _missing(what: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"upgrade test cannot run in CI: {what}")
    pytest.skip(f"upgrade test needs {what}")


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


def _old_release(release: str) -> Path:
    """The python of a venv with an old release installed (built once per commit)."""
    git = shutil.which("git")
    if git is None:
        _missing("git (to build the old release from the history)")
    found = _run([git, "-C", str(ROOT), "rev-parse", "--verify", f"{release}^{{commit}}"])
    if found.returncode != 0:
        _missing(f"commit {release} in the git history (a shallow clone lacks it)")
    commit = found.stdout.strip()
    home = Path(tempfile.gettempdir()) / f"iptflow-upgrade-{commit[:12]}"
    python = home / "venv" / "bin" / "python"
    if (home / "installed").exists() and python.exists():
        return python
    shutil.rmtree(home, ignore_errors=True)
    source = home / "src"
    source.mkdir(parents=True)
    archive = home / "src.tar"
    with archive.open("wb") as out:
        made = subprocess.run([git, "-C", str(ROOT), "archive", commit], stdout=out, check=False)
    if made.returncode != 0:
        _missing(f"a git archive of {release}")
    with tarfile.open(archive) as tar:
        tar.extractall(source, filter="data")
    venv.EnvBuilder(with_pip=True).create(home / "venv")
    installed = _run([str(python), "-m", "pip", "install", "--quiet", str(source)])
    if installed.returncode != 0:
        _missing(f"the package index to install release {release}: {installed.stderr[-500:]}")
    (home / "installed").write_text(commit, encoding="utf-8")
    return python


@pytest.fixture(scope="module", params=_releases())
def old_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], Path]:
    python = _old_release(request.param)
    work = tmp_path_factory.mktemp("upgrade")
    courses = python.parents[2] / "src" / "tests" / "courses"
    db, report = work / "old.db", work / "old.json"
    # run outside the source tree, so the old interpreter imports only the installed release
    written = _run([str(python), str(WRITER), str(db), str(courses), str(report)], cwd=work,
                   env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)})
    assert written.returncode == 0, written.stderr
    return db, json.loads(report.read_text(encoding="utf-8")), courses


def test_the_old_release_wrote_courses_of_every_kind(old_store) -> None:
    _, old, _ = old_store
    assert old["verify_ok"]
    kinds = {tuple(c["snapshot"]["protocol"]["adaptations"]) for c in old["courses"].values()}
    assert {(), ("adolescent",), ("bipolar",), ("bulimia",), ("ptsd",)} <= kinds
    states = {c["snapshot"]["state"] for c in old["courses"].values()}
    assert {"completed", "initial", "discontinued", "referred_out"} <= states
    assert {c["row"]["protocol_version"] for c in old["courses"].values()} == {"1.0.0"}


def test_verify_passes_on_the_old_store(old_store) -> None:
    db, _, _ = old_store
    result = CliRunner().invoke(cli, ["verify", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with Store.open(db) as store:
        assert store.verify().ok


def test_every_course_loads_to_exactly_its_old_snapshot(old_store) -> None:
    db, old, _ = old_store
    with Store.open(db) as store:
        assert sorted(r.id for r in store.list()) == sorted(old["courses"])
        for course_id, before in old["courses"].items():
            course = store.get(course_id)
            assert course.snapshot() == before["snapshot"], course_id
            row = store.row(course_id)
            assert {"state": row.state, "fingerprint": row.fingerprint,
                    "protocol_version": row.protocol_version, "last_seq": row.last_seq
                    } == before["row"], course_id


def test_an_old_course_exported_names_1_0_0_and_replays_to_its_snapshot(old_store, tmp_path) -> None:
    db, old, _ = old_store
    with Store.open(db) as store:
        for course_id, before in old["courses"].items():
            text = store.export_course_file(course_id)
            assert json.loads(text.splitlines()[0])["protocol"] == "ipt-depression@1.0.0"
            path = tmp_path / f"{course_id}.course.jsonl"
            path.write_text(text, encoding="utf-8")
            result = replay_file(path)
            assert result.exit_status == 0, course_id
            assert result.course.snapshot() == before["snapshot"], course_id


def test_old_courses_go_on_under_1_0_0_and_new_ones_open_under_2_0_0(old_store, tmp_path) -> None:
    db, old, _ = old_store
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with Store.open(copy) as store:
        live = store.get("live-1")
        assert live.protocol.version == "1.0.0"  # "ipt-depression" in its events meant 1.0.0
        at = "2025-02-09T09:00:00Z"
        assert store.apply("live-1", {"type": "ending_discussed", "at": at}).code == "invalid_event"
        assert store.apply("live-1", {"type": "measure_recorded", "at": at, "instrument": "phq9",
                                      "score": 20}).ok
        assert store.get("live-1").open_reviews == []  # 1.0.0: no items, no review
        ptsd = store.get("live-ptsd")
        assert ptsd.facts.baseline.instrument == "phq9"  # 1.0.0: the first primary measure
        assert ptsd.outcome is None  # 2.0.0 would measure it on caps5 (40 -> 20)
        assert store.apply("live-ptsd", {"type": "course_discontinued", "at": at,
                                         "reason": "moved"}).ok
        assert store.open_course({"type": "course_opened", "at": at, "course_id": "new-1",
                                  "protocol": "ipt-depression"}).ok
        assert store.get("new-1").protocol.version == "2.0.0"
        assert [r.id for r in store.list(protocol="ipt-depression@2.0.0")] == ["new-1"]
        assert len(store.list(protocol="ipt-depression@1.0.0")) == len(old["courses"])
        assert len(store.list(protocol="ipt-depression")) == len(old["courses"]) + 1
        assert store.verify().ok
