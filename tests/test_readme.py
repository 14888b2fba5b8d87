"""The README's Python examples run as written, and its claims in comments hold."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_opens_with_the_install_and_test_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert "iptflow demo" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci  # CI runs the README's test command exactly


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_example_runs(index: int, tmp_path: Path) -> None:
    code = python_blocks()[index]
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # examples that write iptflow.db write it here
    try:
        exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)  # our own docs
    finally:
        os.chdir(cwd)
    if index == 0:
        result = namespace["result"]
        assert result.code == "guard_failed"  # type: ignore[attr-defined]
        assert result.guards == ("diagnosis_indicated",)  # type: ignore[attr-defined]
        assert namespace["course"].state == "assessment"  # type: ignore[attr-defined]
