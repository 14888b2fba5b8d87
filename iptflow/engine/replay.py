"""Course files and replay (SPEC §6).

A course file is JSON Lines: one event per line, the first non-blank line ``course_opened``,
``{"expect": {...}}`` lines asserting the course at that point, and ``"expect_error": CODE``
on events that must be rejected with that code. :func:`replay_file` applies every event in
order, skipping rejected ones, and returns a :class:`ReplayResult`; a file that cannot be used
at all raises :class:`~iptflow.errors.CourseFileError` (the CLI exits 2).

``replay_file(path, streaming=True)`` (what ``iptflow replay`` does) keeps only what the
course's state needs: lines are read one at a time, the course keeps no history (undoing an
event a plugin failed on reads the file again), the timeline goes to ``on_entry`` as it
happens instead of into the result, and rejections and failed expectations wait in a
:class:`Spool` (a temporary file past 1 MiB) until the result is printed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from iptflow.engine.course import Course
from iptflow.engine.jsonio import JSONLimitError, strict_loads
from iptflow.engine.machine import describe_validation_error
from iptflow.engine.registry import Registry, default_registry
from iptflow.engine.results import REJECTION_CODES, Rejection
from iptflow.engine.timeline import event_note
from iptflow.errors import CourseFileError, ProtocolError


class Expectation(BaseModel):
    """The keys an ``expect`` line may assert."""

    model_config = ConfigDict(extra="forbid", strict=True)
    state: StrictStr | None = None
    sessions_held: StrictInt | None = None
    outcome_status: StrictStr | None = None
    deviations: list[StrictStr] | None = None
    open_reviews: list[StrictStr] | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One non-blank line of a course file."""

    number: int
    event: dict[str, Any] | None = None
    expect_error: str | None = None
    expect: dict[str, Any] | None = None


def parse_line(text: str, number: int, name: str) -> Line | None:
    if not text.strip():
        return None
    try:
        data = strict_loads(text)
    except JSONLimitError as exc:
        raise CourseFileError(f"the line cannot be read: {exc}", file=name, line=number) from None
    except ValueError as exc:
        raise CourseFileError(f"not valid JSON: {exc}", file=name, line=number) from None
    if not isinstance(data, dict):
        raise CourseFileError("a line must be a JSON object", file=name, line=number)
    if "expect" in data:
        if set(data) != {"expect"} or not isinstance(data["expect"], dict):
            raise CourseFileError(
                'an expect line must be exactly {"expect": {...}}', file=name, line=number
            )
        try:
            Expectation.model_validate(data["expect"])
        except ValidationError as exc:
            raise CourseFileError(
                f"bad expect line: {describe_validation_error(exc)}", file=name, line=number
            ) from None
        expect = data["expect"]
        nulls = [k for k in ("sessions_held", "deviations", "open_reviews")
                 if k in expect and expect[k] is None]
        if nulls:
            raise CourseFileError(
                f"bad expect line: {', '.join(nulls)} cannot be null", file=name, line=number
            )
        return Line(number, None, None, data["expect"])
    expect_error = None
    if "expect_error" in data:
        expect_error = data.pop("expect_error")
        if expect_error not in REJECTION_CODES:
            raise CourseFileError(
                f"expect_error must be one of {', '.join(REJECTION_CODES)}, got {expect_error!r}",
                file=name,
                line=number,
            )
    return Line(number, data, expect_error)


def read_lines(path: Path | str) -> Iterator[Line]:
    """Yield the non-blank lines of a course file, streaming (constant memory)."""
    name = str(path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise CourseFileError(f"cannot read: {exc.strerror or exc}", file=name) from None
    try:
        for number, text in enumerate(handle, start=1):
            line = parse_line(text, number, name)
            if line is not None:
                yield line
    except UnicodeDecodeError:
        raise CourseFileError("not UTF-8 text", file=name) from None
    finally:
        handle.close()


@dataclass(slots=True)
class TimelineEntry:
    line: int
    event_type: str | None
    state: str | None
    rejection: Rejection | None = None
    deviations: list[dict[str, Any]] = field(default_factory=list)
    expected_error: str | None = None
    note: str = ""  # what an accepted event recorded, in words (engine.timeline.event_note)


class Spool:
    """A list of JSON objects that moves to a temporary file past 1 MiB: what a streaming
    replay reports, without holding it in memory. ``append``, ``len``, iteration, indexing
    and ``==`` with a list; items come back as ``json.loads`` gives them."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - lives as long as the spool
            max_size=1 << 20, mode="w+", encoding="ascii")
        self._count = 0

    def append(self, item: Any) -> None:
        self._file.seek(0, 2)
        self._file.write(json.dumps(item) + "\n")  # ASCII: a lone surrogate travels escaped
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        self._file.seek(0)
        for _ in range(self._count):
            yield json.loads(self._file.readline())

    def __getitem__(self, index: int) -> Any:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list | Spool) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class ReplayResult:
    """What replaying one course file found (``to_dict`` is SPEC §6's JSON object)."""

    file: str
    course_id: str | None = None
    protocol: dict[str, Any] | None = None
    state: str | None = None
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    sessions_held: int = 0
    open_reviews: list[str] = field(default_factory=list)
    deviations: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None
    expectations_failed: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    unexpected_rejections: int = 0
    course: Course | None = None

    @property
    def exit_status(self) -> int:
        return 1 if self.expectations_failed or self.unexpected_rejections else 0

    def _fields(self) -> dict[str, Any]:
        return {
            "course_id": self.course_id,
            "protocol": self.protocol,
            "state": self.state,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "sessions_held": self.sessions_held,
            "open_reviews": self.open_reviews,
            "deviations": self.deviations,
            "outcome": self.outcome,
            "expectations_failed": self.expectations_failed,
        }

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, Spool) else v for k, v in self._fields().items()}

    def json_chunks(self) -> Iterator[str]:
        """``json.dumps(self.to_dict(), ensure_ascii=False)`` in pieces, reading a
        :class:`Spool` item by item instead of building its list."""
        dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
        yield "{"
        for i, (key, value) in enumerate(self._fields().items()):
            yield (", " if i else "") + dumps(key) + ": "
            if isinstance(value, Spool):
                yield "["
                for j, item in enumerate(value):
                    yield (", " if j else "") + dumps(item)
                yield "]"
            else:
                yield dumps(value)
        yield "}"


def _check_expect(
    expect: dict[str, Any], course: Course | None, deviations: list[dict[str, Any]]
) -> list[str]:
    actual: dict[str, Callable[[], Any]] = {  # computed only for the keys asked for
        "state": lambda: course.state if course else None,
        "sessions_held": lambda: course.sessions_held if course else 0,
        "outcome_status": lambda: (o.status if (o := course.outcome if course else None) else None),
        "deviations": lambda: [d["code"] for d in deviations],
        "open_reviews": lambda: course.open_reviews if course else [],
    }
    problems = []
    for key, wanted in expect.items():
        got = actual[key]()
        same = set(wanted) == set(got) if key == "open_reviews" else wanted == got
        if not same:
            problems.append(f"expected {key} {json.dumps(wanted)}, got {json.dumps(got)}")
    return problems


Entry = Callable[[TimelineEntry], None]


def replay_lines(
    lines: Iterable[Line],
    name: str = "<events>",
    registry: Registry | None = None,
    *,
    reread: Callable[[], Iterable[Line]] | None = None,
    on_entry: Entry | None = None,
) -> ReplayResult:
    """Replay parsed lines. Raises CourseFileError when the course file is unusable.

    With ``reread`` (the same lines again, from the start) the replay streams: see the module
    docstring; ``on_entry`` receives each timeline entry, which the result does not keep.
    """
    registry = registry or default_registry()
    result = ReplayResult(file=name)
    if reread is not None:
        result.rejected, result.expectations_failed = Spool(), Spool()  # type: ignore[assignment]
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise CourseFileError("the file has no events (the first line must be course_opened)", file=name)
    if first.event is None or first.event.get("type") != "course_opened":
        raise CourseFileError("the first line must be a course_opened event", file=name, line=first.number)
    try:
        course, opening = Course.try_open(first.event, registry)
    except ProtocolError as exc:
        raise CourseFileError(str(exc), file=name, line=first.number) from None
    if not opening.ok and opening.code == "invalid_event":  # not a valid course_opened
        raise CourseFileError(f"invalid {opening.message}", file=name, line=first.number)
    result.course_id = first.event["course_id"]  # validated by try_open
    at_line = [first.number]  # the line being applied (a rebuild reads the lines before it)
    if course is not None:
        result.protocol = course.protocol.summary()
        if reread is not None:
            course.keep_no_history(_rebuilder(reread, registry, course, at_line))
    sink = on_entry if reread is not None else result.timeline.append
    titles = {name: r.title for name, r in course.protocol.reviews.items()} if course else {}
    _record(result, first, opening, course, sink, titles)
    for line in it:
        at_line[0] = line.number
        if line.expect is not None:
            for problem in _check_expect(line.expect, course, result.deviations):
                result.expectations_failed.append({"line": line.number, "message": problem})
            continue
        assert line.event is not None
        if course is None:
            etype = line.event.get("type")
            outcome = Rejection(
                "no_course",
                "the course was never opened (its course_opened was rejected)",
                etype if isinstance(etype, str) else None,
            )
        else:
            outcome = course.apply(line.event)
        _record(result, line, outcome, course, sink, titles)
    if course is not None:
        result.state = course.state
        result.sessions_held = course.sessions_held
        result.open_reviews = course.open_reviews
        out = course.outcome
        result.outcome = out.to_dict() if out else None
        result.course = course
    return result


def _rebuilder(
    reread: Callable[[], Iterable[Line]], registry: Registry, course: Course, at_line: list[int]
) -> Callable[[], Course]:
    """How a streaming replay's course is rebuilt to before the line being applied: the lines
    before it read again and applied (rejected ones change nothing)."""
    compiled = course.compiled

    def rebuild() -> Course:
        fresh = None
        for line in reread():
            if line.number >= at_line[0]:
                break
            if line.event is None:
                continue
            if fresh is None:  # the course_opened line: it opened the first time
                fresh, _ = Course.try_open(line.event, registry, notify=False, compiled=compiled)
                assert fresh is not None
                fresh.keep_no_history(rebuild)
            else:
                fresh.apply(line.event)
        assert fresh is not None
        return fresh

    return rebuild


def _record(
    result: ReplayResult, line: Line, outcome: Any, course: Course | None, on_entry: Entry | None,
    titles: dict[str, str],
) -> None:
    # line, event_type, state, rejection, deviations, expected_error (positional: one per line)
    entry = TimelineEntry(line.number, outcome.event_type, course.state if course else None, None,
                          [], line.expect_error)
    if outcome.ok:
        result.accepted += 1
        for dev in outcome.deviations:  # raised by this event (its seq)
            item = {"line": line.number, "code": dev.code, "message": dev.message}
            result.deviations.append(item)
            entry.deviations.append(item)
        if on_entry is not None and course is not None and line.event is not None:
            entry.note = event_note(line.event, outcome.opened_reviews, outcome.closed_reviews,
                                    titles)
        if line.expect_error is not None:
            result.expectations_failed.append(
                {
                    "line": line.number,
                    "message": f"expected rejection {line.expect_error}, but the event was accepted",
                }
            )
    else:
        entry.rejection = outcome
        result.rejected.append(
            {
                "line": line.number,
                "type": outcome.event_type,
                "code": outcome.code,
                "guards": list(outcome.guards),
                "message": outcome.message,
            }
        )
        if line.expect_error is None:
            result.unexpected_rejections += 1
        elif line.expect_error != outcome.code:
            result.expectations_failed.append(
                {
                    "line": line.number,
                    "message": f"expected rejection {line.expect_error}, got {outcome.code}: "
                    f"{outcome.message}",
                }
            )
    if on_entry is not None:
        on_entry(entry)


def replay_file(
    path: Path | str,
    registry: Registry | None = None,
    *,
    streaming: bool = False,
    on_entry: Entry | None = None,
) -> ReplayResult:
    """Replay a course file. ``streaming`` keeps only what the course's state needs (the
    module docstring says how; ``result.course`` then has no ``history``), giving timeline
    entries to ``on_entry``."""
    if not streaming:
        return replay_lines(read_lines(path), str(path), registry)
    return replay_lines(read_lines(path), str(path), registry,
                        reread=lambda: read_lines(path), on_entry=on_entry)


def course_files(paths: Iterable[Path | str], pattern: str = "*.jsonl") -> Iterator[Path]:
    """Expand files and directories (every ``pattern`` file below, by relative path)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                (p for p in path.rglob(pattern) if p.is_file()),
                key=lambda p: p.relative_to(path).as_posix(),
            )
        else:
            yield path
