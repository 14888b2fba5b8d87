"""Every hook is documented in docs/hooks.md (signature and docstring) and has a test of its own."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from iptflow.engine import hookspecs

ROOT = Path(__file__).parent.parent
DOCS = (ROOT / "docs" / "hooks.md").read_text()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _test_names() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_hook_names_are_the_hookspecs() -> None:
    specs = {name for name, value in vars(hookspecs).items() if hasattr(value, "iptflow_spec")}
    assert set(hookspecs.HOOK_NAMES) == specs and len(specs) >= 7


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_is_documented_with_signature_and_docstring(name: str) -> None:
    fn = getattr(hookspecs, name)
    assert f"## `{name}`" in DOCS
    signature = str(inspect.signature(fn)).replace("'", "")
    assert f"def {name}{signature}" in DOCS
    doc = inspect.getdoc(fn)
    assert doc and ":param" in doc
    assert _flat(doc) in _flat(DOCS), f"docs/hooks.md has an outdated docstring of {name}"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_has_a_test_of_its_own(name: str) -> None:
    assert any(name in test for test in _test_names()), f"no test named after the hook {name}"


def test_no_undocumented_hook_sections() -> None:
    documented = {line[4:-1] for line in DOCS.splitlines() if line.startswith("## `")}
    assert documented == set(hookspecs.HOOK_NAMES)
