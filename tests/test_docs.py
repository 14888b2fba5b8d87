"""The documentation is true and self-contained.

* every module under iptflow/ passes its doctests (a module needing an optional extra that
  is not installed is skipped, naming the extra);
* every ```python block of README.md and docs/*.md runs: the blocks of one file run in
  order, in one namespace, in a temporary directory. A block opts out only with a first line
  ``# not run: REASON`` (the reason is required);
* no page sends a reader outside the repository: no ``../`` and no mention of files that
  are not shipped, and every relative link (and its ``#anchor``) resolves inside the repo.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

import iptflow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(iptflow.__file__).resolve().parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPTIONAL_EXTRAS = {"fhir": "fhir", "matplotlib": "plot"}  # top-level import name -> extra
NOT_RUN = re.compile(r"#\s*not run:\s*(\S.*)")



def _module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


@pytest.mark.parametrize("name", _module_names())
def test_module_doctests_pass(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        pytest.skip(f"{name} needs the optional extra '{extra}' ({exc.name} is not installed)")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in finder.find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_doctests_exist() -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = sum(len(t.examples) for n in ("iptflow.engine.course", "iptflow.store.api")
                for t in finder.find(importlib.import_module(n)))
    assert found > 0


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def run_python_blocks(page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Run a page's python blocks in order in one namespace, in workdir; return the namespace."""
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    monkeypatch.chdir(workdir)
    for index, code in enumerate(python_blocks(page), start=1):
        first = code.splitlines()[0] if code.strip() else ""
        if first.lstrip().startswith("# not run"):
            assert NOT_RUN.fullmatch(first.strip()), f"{page.name} block {index}: '# not run: REASON'"
            continue
        where = f"{page.relative_to(ROOT)} python block {index}"
        exec(compile(code, where, "exec"), namespace)  # our own documentation
    return namespace


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_python_blocks(page, tmp_path, monkeypatch)


def test_not_run_marker_needs_a_reason() -> None:
    assert NOT_RUN.fullmatch("# not run: a fragment of a plugin module")
    assert not NOT_RUN.fullmatch("# not run:")


OUTSIDE = re.compile(r"\.\./|shared/|SPEC\.md|DESIGN\.md|IPT-REFERENCE|\bSPEC\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_does_not_send_readers_outside_the_repo(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    outside = [f"line {n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
               if OUTSIDE.search(LINK.sub("", line))]  # links are checked below: inside the repo
    assert not outside, f"{page.name} refers outside the repository:\n" + "\n".join(outside)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for {target}"
