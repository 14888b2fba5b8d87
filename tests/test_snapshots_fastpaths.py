"""The replay fast paths (issue 16) decide exactly as the general code they skip."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from iptflow.engine.jsonio import MAX_INTEGER, value_problem

_scalars = (
    st.text(max_size=6)
    | st.integers(min_value=-2 * MAX_INTEGER, max_value=2 * MAX_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.sampled_from(["\ud800", "caf\u00e9", "x\udfffy"])
)
_values = _scalars | st.lists(_scalars, max_size=4) | st.dictionaries(st.text(max_size=3), _scalars,
                                                                       max_size=3)
_keys = st.text(max_size=5) | st.sampled_from(["type", "at", "\ud800k", "\u00e9"])


@given(st.dictionaries(_keys, _values, max_size=6))
def test_the_flat_event_fast_path_finds_what_the_full_walk_finds(event: dict) -> None:
    # a mapping proxy is not a dict: value_problem walks it the general way
    assert value_problem(event) == value_problem(MappingProxyType(event))
