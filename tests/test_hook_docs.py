"""Every hook is documented in docs/hooks.md (signature, docstring, each parameter), the page
documents no hook that does not exist, and every hook is exercised by a test of its own."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from iptflow.engine import hookspecs

ROOT = Path(__file__).parent.parent
DOCS = (ROOT / "docs" / "hooks.md").read_text()
SECTION = re.compile(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", re.M | re.S)
SECTIONS = {m.group(1): m.group(2) for m in SECTION.finditer(DOCS)}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _names_used_by_tests() -> dict[str, set[str]]:
    """For each test file but this one: the identifiers and strings its test functions use
    (functions defined in them, keyword arguments, attributes, names and string constants)."""
    used: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        names: set[str] = set()
        for test in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(test, ast.FunctionDef) and test.name.startswith("test_")):
                continue
            for node in ast.walk(test):
                if isinstance(node, ast.FunctionDef) and node is not test:
                    names.add(node.name)
                elif isinstance(node, ast.keyword) and node.arg:
                    names.add(node.arg)
                elif isinstance(node, ast.Attribute):
                    names.add(node.attr)
                elif isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.add(node.value)
        used[path.name] = names
    return used


USED = _names_used_by_tests()


def test_hook_names_are_the_hookspecs() -> None:
    specs = {name for name, value in vars(hookspecs).items() if hasattr(value, "iptflow_spec")}
    assert set(hookspecs.HOOK_NAMES) == specs and len(specs) >= 7


def test_the_page_documents_exactly_the_hooks_that_exist() -> None:
    assert set(SECTIONS) == set(hookspecs.HOOK_NAMES)
    assert len(SECTIONS) == len(re.findall(r"^## `", DOCS, re.M))  # no section twice


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_is_documented_with_signature_docstring_and_every_parameter(name: str) -> None:
    fn = getattr(hookspecs, name)
    section = SECTIONS.get(name)
    assert section is not None, f"docs/hooks.md has no section for {name}"
    signature = inspect.signature(fn)
    assert f"def {name}{str(signature).replace(chr(39), '')}" in section
    doc = inspect.getdoc(fn)
    assert doc and _flat(doc) in _flat(section), f"docs/hooks.md has an outdated docstring of {name}"
    for param in signature.parameters:
        assert re.search(rf"^:param {param}: \S", section, re.M), (
            f"docs/hooks.md does not document parameter {param!r} of {name}"
        )


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_is_exercised_by_a_test(name: str) -> None:
    files = sorted(f for f, names in USED.items() if name in names)
    assert files, f"no test (outside {Path(__file__).name}) uses the hook {name}"
