"""The README opens with the install and test commands, and its example's claims hold.

tests/test_docs.py runs every python block of the README (and of docs/); this file checks
what the README says about the results in its comments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs import run_python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_install_and_test_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert "iptflow demo" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci  # CI runs the README's test command exactly


def test_readme_library_example_says_what_happens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = run_python_blocks(README, tmp_path, monkeypatch)
    result = namespace["result"]
    course = namespace["course"]
    assert result.ok is False and result.code == "guard_failed"  # type: ignore[attr-defined]
    assert result.guards == ("diagnosis_indicated",)  # type: ignore[attr-defined]
    assert course.state == "assessment"  # type: ignore[attr-defined]
    assert namespace["applied"].ok and namespace["stored"].state == "assessment"  # type: ignore[attr-defined]
    assert (tmp_path / "iptflow.db").exists()  # the store example wrote its file in the work dir


def _sh_commands() -> list[str]:
    """Every command of the README's ``sh`` blocks, comments taken off, split at ``&&``."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [part.strip() for line in lines if line for part in line.split("&&")]


def test_readme_commands_run_iptflow_from_the_venv_it_installs_into() -> None:
    # the install command makes .venv without activating it: a bare `iptflow` would not be found
    runs = [c for c in _sh_commands() if "iptflow " in c and "pip install" not in c]
    assert runs, "the README shows no iptflow command"
    for command in runs:
        assert command.startswith(".venv/bin/iptflow "), command


def test_readme_research_steps_work_as_written(tmp_path: Path) -> None:
    """The researcher steps, run in a copy of the repo's examples with the installed command
    standing in for .venv/bin/iptflow and a smaller cohort."""
    shutil.copytree(README.parent / "examples", tmp_path / "examples")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "iptflow").symlink_to(Path(sys.executable).parent / "iptflow")
    steps = [c for c in _sh_commands() if c.startswith(("mkdir", "cp ", ".venv/bin/iptflow"))]
    assert any(" simulate " in s for s in steps) and any(" report " in s for s in steps)
    for step in steps:
        step = step.replace("--n 10000", "--n 30")
        proc = subprocess.run(step, shell=True, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, (step, proc.stdout, proc.stderr)
    assert (tmp_path / "brief.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
