"""Strict JSON text: the one decoder for course files and stored event bodies.

``NaN``, ``Infinity`` and ``-Infinity`` are refused (they are not JSON), so what iptflow reads
is what any other JSON reader would read.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["strict_loads"]


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


# json.loads(text, parse_constant=...) builds a new decoder per call; one shared decoder is the
# same parser without that cost
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def strict_loads(text: str) -> Any:
    """Parse strict JSON text; raises ``ValueError`` (``json.JSONDecodeError``) if it is not."""
    if type(text) is not str or text.startswith("\ufeff"):  # json.loads' own errors for these
        return json.loads(text, parse_constant=_no_constants)
    return _DECODER.decode(text)
