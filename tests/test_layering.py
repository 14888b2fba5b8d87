"""The wings are layered as pyproject.toml declares, and no function imports iptflow lazily.

The layers contract (``[tool.importlinter]``) is checked with import-linter on the installed
package. import-linter sees imports anywhere in a module, so a cycle could still be dodged at
run time by importing inside a function; the AST test forbids that (imports under
``if TYPE_CHECKING:`` are fine, and a lazy import of an optional extra such as matplotlib is
not an import of an iptflow module).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import iptflow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(iptflow.__file__).resolve().parent
PROJECT_PACKAGES = ("iptflow", "iptflow_plugins", "iptflow_protocols")


def _lint_imports() -> list[str]:
    script = Path(sys.executable).with_name("lint-imports")
    if script.exists():
        return [str(script)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("import-linter is not installed: it is in the 'test' extra (pip install '.[test]')")
    return [found]


def test_import_linter_contract_holds() -> None:
    done = subprocess.run(
        [*_lint_imports(), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout}\n{done.stderr}"
    assert "Contracts: 1 kept, 0 broken" in done.stdout, done.stdout


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return ["." * node.level + (node.module or "")]
    return [alias.name for alias in node.names]


def _is_project_module(name: str) -> bool:
    return name.startswith(".") or name.split(".")[0] in PROJECT_PACKAGES


def _imports_in_functions(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every project import inside a function body, outside TYPE_CHECKING."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, ast.Import | ast.ImportFrom) and in_function:
            found.extend((node.lineno, n) for n in _imported_names(node) if _is_project_module(n))
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_checked() -> None:
    assert len(MODULES) > 40 and PACKAGE / "engine" / "course.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_function_imports_an_iptflow_module(path: Path) -> None:
    lazy = _imports_in_functions(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    where = ", ".join(f"line {line}: {name}" for line, name in lazy)
    assert not lazy, f"{path.name} imports project modules inside a function ({where}); import at the top"


def test_the_ast_check_sees_a_lazy_import_and_ignores_type_checking() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from iptflow.store import Store\n"
        "def f():\n    import matplotlib\n    from iptflow.engine import course\n"
        "    if TYPE_CHECKING:\n        from iptflow import Course\n"
        "class C:\n    def m(self):\n        from . import rows\n"
    )
    assert _imports_in_functions(ast.parse(code)) == [(6, "iptflow.engine"), (11, ".")]
