"""The README opens with the install and test commands, and its example's claims hold.

tests/test_docs.py runs every python block of the README (and of docs/); this file checks
what the README says about the results in its comments.
"""

from __future__ import annotations

import re
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
