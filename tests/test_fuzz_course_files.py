"""Fuzz: mutated course files through the real CLI never end in a traceback.

A bounded, seeded run: FILES mutations of the course files in tests/courses (truncation, deep
nesting, lone surrogates, huge numbers, NUL bytes, a BOM, duplicate keys, odd offsets, years
0001 and 9999, bytes that are not UTF-8; one to three at a time). Every file goes through
``iptflow replay --json``; every third is imported into a store, and what imports is exported
as FHIR, and a few stores are reported as HTML. Each command must exit 0, 1 or 2 (SPEC: 2 for
a file that cannot be used at all) and print no traceback. Most run in-process (click's
CliRunner); a few through a subprocess of the installed ``iptflow``.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from iptflow.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "tests" / "courses").rglob("*.jsonl"))
FILES = 300
SEED = 20_412
IPTFLOW = Path(sys.executable).with_name("iptflow")


# -- mutations: each takes the file's lines (text) and returns them changed ------------------------
def _line(rnd: random.Random, lines: list[str]) -> int:
    return rnd.randrange(len(lines))


def truncate(rnd: random.Random, lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    return text[: rnd.randrange(len(text) + 1)].split("\n")


def deep_nesting(rnd: random.Random, lines: list[str]) -> list[str]:
    depth = rnd.choice([60, 99, 100, 101, 1_000, 20_000])
    i = _line(rnd, lines)
    lines[i] = re.sub(r'"(at|reason|score|number|actor|course_id)": ("[^"]*"|[0-9.]+)',
                      lambda m: f'"{m[1]}": ' + "[" * depth + m[2] + "]" * depth, lines[i], count=1)
    if rnd.random() < 0.5:  # or a whole line of it
        lines.insert(i, "{" + '"a": {' * depth + "}" * depth + "}")
    return lines


def lone_surrogate(rnd: random.Random, lines: list[str]) -> list[str]:
    i = _line(rnd, lines)
    lines[i] = re.sub(r'": "', lambda m: '": "' + rnd.choice(["\\ud800", "\\udfff", "x\\ud83d"]),
                      lines[i], count=rnd.choice([1, 0]))
    return lines


def huge_number(rnd: random.Random, lines: list[str]) -> list[str]:
    i = _line(rnd, lines)
    big = rnd.choice(["9" * 25, "1" + "0" * 400, "7" * 5_000, "-" + "9" * 60, "1e400", "2.5e-400"])
    lines[i] = re.sub(r"(?<=: )-?[0-9]+(\.[0-9]+)?", big, lines[i], count=1)
    return lines


def nul_bytes(rnd: random.Random, lines: list[str]) -> list[str]:
    i = _line(rnd, lines)
    at = rnd.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:at] + rnd.choice(["\x00", "\\u0000"]) + lines[i][at:]
    return lines


def bom(rnd: random.Random, lines: list[str]) -> list[str]:
    lines[rnd.choice([0, _line(rnd, lines)])] = "\ufeff" + lines[0]
    return lines


def duplicate_keys(rnd: random.Random, lines: list[str]) -> list[str]:
    i = _line(rnd, lines)
    key = rnd.choice(["type", "at", "course_id", "protocol", "score", "expect_error"])
    value = rnd.choice(['"session_held"', '"2025-01-06T09:00:00Z"', "3", "null", '"guard_failed"'])
    lines[i] = lines[i].replace("{", "{" + json.dumps(key) + ": " + value + ", ", 1)
    return lines


def odd_offset(rnd: random.Random, lines: list[str]) -> list[str]:
    offset = rnd.choice(["+15:00", "-15:00", "+23:59", "-23:59", "+24:00", "-00:00", "+14:00"])
    return [re.sub(r'(T\d\d:\d\d:\d\d(\.\d+)?)Z"', rf'\g<1>{offset}"', line) for line in lines]


def extreme_year(rnd: random.Random, lines: list[str]) -> list[str]:
    year = rnd.choice(["0001", "9999", "0000"])
    return [re.sub(r'"\d{4}-', f'"{year}-', line) for line in lines]


def not_utf8(rnd: random.Random, lines: list[str]) -> list[str]:
    i = _line(rnd, lines)
    lines[i] += rnd.choice(["\udcff", "\udcfe\udcc0"])  # surrogateescape: raw bytes 0xff...
    return lines


MUTATIONS: list[Callable[[random.Random, list[str]], list[str]]] = [
    truncate, deep_nesting, lone_surrogate, huge_number, nul_bytes, bom, duplicate_keys,
    odd_offset, extreme_year, not_utf8,
]


def _mutated(rnd: random.Random, n: int, out: Path) -> tuple[Path, str]:
    source = rnd.choice(SOURCES)
    text = source.read_text(encoding="utf-8").replace('"course_id": "', f'"course_id": "f{n}-', 1)
    lines = text.splitlines()
    names = []
    for mutate in rnd.sample(MUTATIONS, rnd.choice([1, 1, 2, 3])):
        if not lines:
            break
        lines = mutate(rnd, lines)
        names.append(mutate.__name__)
    path = out / f"fuzz-{n:03d}.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    return path, f"{source.relative_to(ROOT)} + {', '.join(names)}"


def _check(result: Result, what: str) -> None:
    assert result.exit_code in (0, 1, 2), (what, result.exit_code, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        what, repr(result.exception))
    assert "Traceback" not in result.output, (what, result.output[-2000:])


def test_mutated_course_files_through_the_cli_exit_0_1_or_2_without_a_traceback(
    tmp_path: Path,
) -> None:
    fhir = pytest.importorskip("fhir.resources") is not None
    rnd = random.Random(SEED)
    runner = CliRunner()
    db = tmp_path / "fuzz.db"
    codes: dict[int, int] = {}
    imported = []
    for n in range(FILES):
        path, what = _mutated(rnd, n, tmp_path)
        replayed = runner.invoke(cli, ["replay", str(path), "--json"])
        _check(replayed, f"replay {what}")
        codes[replayed.exit_code] = codes.get(replayed.exit_code, 0) + 1
        if replayed.exit_code == 2:
            assert replayed.stdout == "" and replayed.stderr.count("\n") == 1, (what, replayed.output)
        if n % 3:
            continue
        result = runner.invoke(cli, ["course", "import", str(path), "--db", str(db)])
        _check(result, f"course import {what}")
        if result.exit_code == 0:
            imported.append((json.loads(replayed.stdout)["course_id"], what))
    assert set(codes) == {0, 1, 2}, codes  # the mutations reach every outcome
    assert len(imported) >= 10, len(imported)
    for course_id, what in imported[:: max(1, len(imported) // 25)] if fhir else []:
        result = runner.invoke(cli, ["export", "fhir", course_id, "--db", str(db)])
        _check(result, f"export fhir {what}")
        assert result.exit_code == 0, (what, result.output)
    pytest.importorskip("matplotlib")
    report = runner.invoke(cli, ["report", "--db", str(db), "--html", str(tmp_path / "r.html")])
    _check(report, "report --html")
    assert report.exit_code == 0, report.output


def test_a_few_mutated_files_through_the_installed_command(tmp_path: Path) -> None:
    if not IPTFLOW.exists():
        pytest.skip(f"no installed iptflow next to {sys.executable}")
    rnd = random.Random(SEED + 1)
    paths = [_mutated(rnd, n, tmp_path) for n in range(6)]
    run = subprocess.run([str(IPTFLOW), "replay", *(str(p) for p, _ in paths)],
                         capture_output=True, text=True, errors="replace", timeout=120)
    assert run.returncode in (0, 1, 2) and "Traceback" not in run.stdout + run.stderr, run.stderr
    assert "summary: 6 files" in run.stdout
    for path, what in paths[:3]:
        run = subprocess.run([str(IPTFLOW), "replay", "--json", str(path)],
                             capture_output=True, text=True, errors="replace", timeout=60)
        assert run.returncode in (0, 1, 2), (what, run.stderr)
        assert "Traceback" not in run.stdout + run.stderr, (what, run.stderr)
