"""Strict JSON text: the one decoder for course files and stored event bodies, and the limits
every event is held to, whether it arrives as JSON text or as a Python mapping.

``NaN``, ``Infinity`` and ``-Infinity`` are refused (they are not JSON), so what iptflow reads
is what any other JSON reader would read. For the same reason an event may not nest objects or
arrays more than :data:`MAX_NESTING` levels deep (the event object is level 1), may not hold an
integer outside +/-:data:`MAX_INTEGER` (the integers every JSON reader reads exactly, I-JSON),
and may not hold a lone surrogate (``"\\ud800"``: not UTF-8 text). :func:`strict_loads` refuses
text nested too deeply, or with a number too long to read, with :class:`JSONLimitError`;
:func:`value_problem` names what breaks a limit in a value already decoded (the engine rejects
such an event ``invalid_event``, the store refuses to store it). Every check is iterative: no
depth of input reaches Python's recursion limit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_INTEGER",
    "MAX_NESTING",
    "JSONLimitError",
    "nesting_exceeds",
    "plain_copy",
    "strict_loads",
    "value_problem",
]

#: How deeply objects and arrays may nest in an event (the event object is level 1).
MAX_NESTING = 100

#: The largest integer (in absolute value) an event may hold: 2**53 - 1, the integers every
#: JSON reader reads exactly.
MAX_INTEGER = 2**53 - 1

#: How many digits Python reads in an integer literal by default (``sys.int_info``).
_MAX_DIGITS = getattr(sys.int_info, "default_max_str_digits", 4300)


class JSONLimitError(ValueError):
    """JSON text or a value beyond iptflow's limits: nested more than :data:`MAX_NESTING`
    levels, or a number too large. A ``ValueError``, like every other reason text is not
    strict JSON."""


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


# json.loads(text, parse_constant=...) builds a new decoder per call; one shared decoder is the
# same parser without that cost
_DECODER = json.JSONDecoder(parse_constant=_no_constants)

_TOO_DEEP = f"objects or arrays are nested more than {MAX_NESTING} levels deep"


def strict_loads(text: str) -> Any:
    """Parse strict JSON text. Raises ``ValueError`` (``json.JSONDecodeError``) if it is not
    JSON, and :class:`JSONLimitError` when it nests more than :data:`MAX_NESTING` levels or
    holds an integer too long to read."""
    try:
        if type(text) is not str or text.startswith("\ufeff"):  # json.loads' own errors for these
            data = json.loads(text, parse_constant=_no_constants)
        else:
            data = _DECODER.decode(text)
    except RecursionError:
        raise JSONLimitError(_TOO_DEEP) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's own limit on digits
            raise JSONLimitError(
                f"a number is too large (more than {_MAX_DIGITS} digits)"
            ) from None
        raise
    # fewer brackets than the limit cannot nest deeper than it: the common case costs two counts
    if type(text) is str and text.count("[") + text.count("{") > MAX_NESTING and nesting_exceeds(data):
        raise JSONLimitError(_TOO_DEEP)
    return data


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether mappings, lists and tuples nest more than ``limit`` levels in ``value``
    (iterative: no recursion, whatever the depth; a cycle counts as too deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, Mapping | list | tuple):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, Mapping) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def value_problem(value: Any) -> str | None:
    """What makes ``value`` (an event, decoded) break iptflow's JSON limits, or None.

    One message, naming where (``items.2: ...``): nested more than :data:`MAX_NESTING` levels,
    an integer outside +/-:data:`MAX_INTEGER`, or a string (a key too) holding a lone surrogate.
    Iterative; a cycle counts as nested too deeply.
    """
    if type(value) is dict and _plainly_within_limits(value):
        return None
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and (bad := _lone_surrogate(item)):
                return _at(path, f"holds a lone surrogate ({bad}), which is not UTF-8 text")
        elif kind is int or (isinstance(item, int) and kind is not bool):
            if not -MAX_INTEGER <= item <= MAX_INTEGER:
                return _at(path, f"the number is too large (integers in an event lie between "
                                 f"-{MAX_INTEGER} and {MAX_INTEGER})")
        elif isinstance(item, Mapping | list | tuple):
            if depth > MAX_NESTING:
                return f"the event nests objects or arrays more than {MAX_NESTING} levels deep"
            if isinstance(item, Mapping):
                for key, child in item.items():
                    if type(key) is str and not key.isascii() and (bad := _lone_surrogate(key)):
                        return _at(path, f"a key holds a lone surrogate ({bad}), which is not "
                                         "UTF-8 text")
                    stack.append((child, depth + 1, (*path, key)))
            else:
                stack.extend((child, depth + 1, (*path, i)) for i, child in enumerate(item))
    return None


_SCALARS = (float, bool, type(None))


def plain_copy(event: dict[Any, Any]) -> dict[Any, Any] | None:
    """A copy of ``event`` (its lists copied too) when it is plainly within the limits, the
    common case decided without walking paths: an object of ASCII keys whose values are ASCII
    strings, integers within the limits, other scalars, lists of those, or objects of those
    (one level: a course_opened's patient). ``None`` means
    "look closely" (:func:`value_problem` walks it), never "too large". The engine keeps the
    copy as the event it accepted, so the one pass does both."""
    try:
        if not "".join(event).isascii():  # every key at once (TypeError: a key not a string)
            return None
    except TypeError:
        return None
    out = dict(event)
    for key, v in event.items():
        kind = type(v)
        if kind is str:
            if not v.isascii():
                return None
        elif kind is int:
            if not -MAX_INTEGER <= v <= MAX_INTEGER:
                return None
        elif kind is list:
            for x in v:
                t = type(x)
                if t is str:
                    if not x.isascii():
                        return None
                elif t is int:
                    if not -MAX_INTEGER <= x <= MAX_INTEGER:
                        return None
                elif t not in _SCALARS:
                    return None
            out[key] = list(v)
        elif kind is dict:
            if not all(map(_plain_item, v.items())):
                return None
            out[key] = dict(v)
        elif kind not in _SCALARS:
            return None
    return out


def _plain_item(item: tuple[Any, Any]) -> bool:
    """An object's member is plain: an ASCII key and an ASCII string, an integer within the
    limits or another scalar."""
    key, x = item
    if type(key) is not str or not key.isascii():
        return False
    t = type(x)
    if t is str:
        return x.isascii()
    if t is int:
        return -MAX_INTEGER <= x <= MAX_INTEGER
    return t in _SCALARS


def _plainly_within_limits(event: dict[Any, Any]) -> bool:
    return plain_copy(event) is not None


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate of ``text``, escaped (``'\\ud800'``), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ascii(exc.object[exc.start])
    return None


def _at(path: tuple[Any, ...], message: str) -> str:
    where = ".".join(_ascii_key(p) for p in path)
    return f"{where}: {message}" if where else message


def _ascii_key(key: Any) -> str:
    text = str(key)
    return text if _lone_surrogate(text) is None else ascii(text)
