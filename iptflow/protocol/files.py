"""Reading protocol, adaptation and variant TOML files into their models.

Every problem is reported with the file, the line (found from the field path; TOML parsers
do not keep positions, so the line is located by table header and key) and the field path.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from iptflow.errors import ProtocolFileError

M = TypeVar("M", bound=BaseModel)

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _key_line(lines: list[str], start: int, end: int, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, end):
        if pattern.match(lines[i]):
            return i + 1
    return None


def locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort 1-based line of a field path in a TOML text."""
    lines = text.splitlines()
    headers: list[tuple[int, str, bool]] = []
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            headers.append((i, m.group(2).strip().replace('"', ""), m.group(1) == "[["))
    keys = [p for p in loc if not isinstance(p, int)]
    # deepest table header that matches a prefix of the path (counting array-of-table indices)
    best: tuple[int, int] | None = None  # (line index, number of path parts consumed)
    for depth in range(len(loc), 0, -1):
        prefix = loc[:depth]
        names = [str(p) for p in prefix if not isinstance(p, int)]
        dotted = ".".join(names)
        index = prefix[-1] if isinstance(prefix[-1], int) else None
        if index is not None:
            matches = [h for h in headers if h[1] == dotted and h[2]]
            if len(matches) > index:
                best = (matches[index][0], depth)
                break
        else:
            matches = [h for h in headers if h[1] == dotted and not h[2]]
            if matches:
                best = (matches[0][0], depth)
                break
    if best is None:
        first_header = headers[0][0] if headers else len(lines)
        if keys:
            found = _key_line(lines, 0, first_header, keys[0])
            if found is None:
                found = _key_line(lines, 0, len(lines), keys[-1])
            return found
        return None
    start, depth = best
    following = [h[0] for h in headers if h[0] > start]
    end = following[0] if following else len(lines)
    rest = [p for p in loc[depth:] if not isinstance(p, int)]
    if rest:
        found = _key_line(lines, start + 1, end, str(rest[0]))
        if found is not None:
            return found
    return start + 1


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """Read and parse a TOML file; syntax errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolFileError(
            f"{path}: cannot read: {exc.strerror or exc}",
            [{"file": str(path), "line": None, "field": None,
              "message": f"cannot read: {exc.strerror or exc}"}],
        ) from None
    except UnicodeDecodeError:
        raise ProtocolFileError(
            f"{path}: not UTF-8 text",
            [{"file": str(path), "line": None, "field": None, "message": "not UTF-8 text"}],
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        line = int(m.group(1)) if m else None
        msg = _TOML_POS.sub("", str(exc)).strip()
        raise ProtocolFileError(
            f"{path}:{line}: invalid TOML: {msg}" if line else f"{path}: invalid TOML: {msg}",
            [{"file": str(path), "line": line, "field": None, "message": f"invalid TOML: {msg}"}],
        ) from None
    return text, data


def validation_problems(
    exc: ValidationError, path: Path | str, text: str | None
) -> list[dict[str, Any]]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append(
            {
                "file": str(path),
                "line": locate(text, loc) if text is not None else None,
                "field": field_path(loc),
                "message": _message(err),
            }
        )
    return problems


def toml_value(value: Any, limit: int = 60) -> str:
    """A value as a TOML file writes it (``"ten"``, ``true``, ``[1, 2]``), cut at ``limit``."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list | tuple):
        shown = "[" + ", ".join(toml_value(v, limit) for v in value) + "]"
    elif isinstance(value, dict):
        shown = "{" + ", ".join(f"{k} = {toml_value(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, int) and abs(value) >= 10**limit:
        shown = f"a number of more than {limit} digits"
    else:
        shown = str(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


_TYPE_WORDS = {
    "int_type": "an integer", "float_type": "a number", "string_type": "text (a quoted string)",
    "bool_type": "true or false", "list_type": "a list", "dict_type": "a table",
    "model_type": "a table", "finite_number": "a finite number",
}


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "unknown field (not part of the format)"
    if kind == "missing":
        return "required field is missing"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, not {toml_value(err.get('input'))}"
    if kind == "too_short" and not (err.get("ctx") or {}).get("actual_length"):
        return "must not be empty"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return f"must be {msg.removeprefix('Input should be ')}, not {toml_value(err.get('input'))}"
    return msg


def format_problems(problems: list[dict[str, Any]]) -> str:
    parts = []
    for p in problems:
        where = p["file"] + (f":{p['line']}" if p.get("line") else "")
        field = f" {p['field']}:" if p.get("field") else ""
        parts.append(f"{where}:{field} {p['message']}")
    return "; ".join(parts)


def load_model(path: Path, model: type[M]) -> M:
    """Load a TOML file into ``model``, raising ProtocolFileError listing every problem."""
    text, data = read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, path, text)
        raise ProtocolFileError(format_problems(problems), problems) from None
