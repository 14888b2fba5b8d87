"""The iptflow pytest plugin (registered as the ``pytest11`` entry point ``iptflow``).

Installing iptflow makes pytest collect course files as tests, one item per file:

* files matching ``iptflow_course_files`` (an ini option, whitespace-separated glob patterns,
  default ``*.course.jsonl``) below the collected paths become one test item each;
* an item fails with the line number and message of every unmet expectation and of every
  event rejected without a matching ``expect_error`` (SPEC §6);
* a file that cannot be used at all fails with its one-line error.

Options: ``--iptflow-protocols-dir DIR`` (repeatable, also the ini option
``iptflow_protocols_dirs``) adds directories of protocol and variant files.

Fixtures: ``iptflow_registry`` (the registry the plugin replays with), ``iptflow_store`` (a
store in a temporary SQLite file), ``make_course`` (opens courses with sensible defaults) and
``replay_course`` (replays a course file or a list of events and returns the result).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from iptflow.engine.course import Course
from iptflow.engine.registry import Registry, default_registry
from iptflow.engine.replay import Line, ReplayResult, replay_file, replay_lines
from iptflow.errors import CourseFileError, IptflowError
from iptflow.store import Store

DEFAULT_PATTERNS = "*.course.jsonl"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("iptflow", "iptflow course files")
    group.addoption(
        "--iptflow-protocols-dir",
        action="append",
        default=[],
        dest="iptflow_protocols_dirs",
        metavar="DIR",
        help="a directory of protocol and variant files for course files (repeatable)",
    )
    parser.addini(
        "iptflow_course_files",
        "glob patterns of course files collected as tests (default: *.course.jsonl)",
        type="args",
        default=[DEFAULT_PATTERNS],
    )
    parser.addini(
        "iptflow_protocols_dirs",
        "directories of protocol and variant files, relative to the ini file",
        type="paths",
        default=[],
    )


def _protocol_dirs(config: pytest.Config) -> list[Path]:
    dirs = [Path(d) for d in config.getini("iptflow_protocols_dirs")]
    dirs += [Path(d) for d in config.getoption("iptflow_protocols_dirs") or []]
    return dirs


def _registry(config: pytest.Config) -> Registry:
    registry = config.stash.get(_REGISTRY_KEY, None)
    if registry is None:
        dirs = _protocol_dirs(config)
        registry = Registry(protocol_dirs=dirs) if dirs else default_registry()
        config.stash[_REGISTRY_KEY] = registry
    return registry


_REGISTRY_KEY = pytest.StashKey[Registry]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CourseFile | None:
    patterns = parent.config.getini("iptflow_course_files")
    if any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return CourseFile.from_parent(parent, path=file_path)
    return None


class CourseFileFailure(Exception):
    """A course file replayed with failed expectations or unexpected rejections."""

    def __init__(self, problems: list[tuple[int, str]], result: ReplayResult | None) -> None:
        super().__init__("; ".join(f"line {n}: {m}" for n, m in problems))
        self.problems = problems
        self.result = result


class CourseFile(pytest.File):
    """A course file: one test item."""

    def collect(self) -> Iterable[CourseItem]:
        yield CourseItem.from_parent(self, name="replay")


class CourseItem(pytest.Item):
    """Replays one course file; fails on every unmet expectation or unexpected rejection."""

    def runtest(self) -> None:
        try:
            result = replay_file(self.path, _registry(self.config))
        except CourseFileError as exc:
            raise CourseFileFailure([(exc.line or 0, f"unusable course file: {exc.message}")], None) from None
        problems = failures(result)
        if problems:
            raise CourseFileFailure(problems, result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        exc = excinfo.value
        if isinstance(exc, CourseFileFailure):
            if exc.result is None:
                return exc.problems[0][1]
            lines = [f"{self.path.name}: {len(exc.problems)} problem(s)"]
            lines += [f"  line {n}: {m}" for n, m in exc.problems]
            return "\n".join(lines)
        if isinstance(exc, IptflowError):
            return f"{self.path.name}: {exc.message}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"course file {self.path.name}"


def failures(result: ReplayResult) -> list[tuple[int, str]]:
    """Every unmet expectation and unexpected rejection of a replay, sorted by line."""
    problems = [(f["line"], f["message"]) for f in result.expectations_failed]
    for entry in result.timeline:
        r = entry.rejection
        if r is not None and entry.expected_error is None:
            problems.append((entry.line, f"{r.event_type} rejected unexpectedly: {r.code}: {r.message}"))
    return sorted(problems, key=lambda p: p[0])


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def iptflow_registry(request: pytest.FixtureRequest) -> Registry:
    """The registry course files are replayed with (honours --iptflow-protocols-dir)."""
    return _registry(request.config)


@pytest.fixture
def iptflow_store(tmp_path: Path) -> Iterator[Any]:
    """An iptflow store in a fresh SQLite file under ``tmp_path`` (closed afterwards)."""
    store = Store.open(tmp_path / "iptflow.db")
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


OPENED_AT = "2025-01-06T09:00:00Z"


@pytest.fixture
def make_course(iptflow_registry: Registry) -> Callable[..., Course]:
    """A factory: ``make_course(protocol="ipt-depression", adaptations=(), **fields)``.

    Opens a course (``course_id`` ``course-1``, ``course-2``, ... unless given) and applies
    ``events`` if passed; every event must be accepted (``EventRejected`` otherwise).
    """
    counter = iter(range(1, 1_000_000))

    def factory(
        protocol: str = "ipt-depression",
        adaptations: Iterable[str] = (),
        *,
        events: Iterable[Mapping[str, Any]] = (),
        **fields: Any,
    ) -> Course:
        opened: dict[str, Any] = {
            "type": "course_opened",
            "at": OPENED_AT,
            "course_id": f"course-{next(counter)}",
            "protocol": protocol,
            "adaptations": list(adaptations),
            **fields,
        }
        return Course.replay([opened, *events], iptflow_registry)

    return factory


@pytest.fixture
def replay_course(iptflow_registry: Registry) -> Callable[..., ReplayResult]:
    """Replay a course file (path) or a list of event dicts (``expect_error`` allowed)."""

    def replay(source: str | Path | Iterable[Mapping[str, Any]]) -> ReplayResult:
        if isinstance(source, (str, Path)):
            return replay_file(source, iptflow_registry)
        lines = []
        for number, raw in enumerate(source, start=1):
            event = dict(raw)
            if "expect" in event:
                lines.append(Line(number, expect=event["expect"]))
                continue
            lines.append(Line(number, event=event, expect_error=event.pop("expect_error", None)))
        return replay_lines(lines, "<events>", iptflow_registry)

    return replay
