"""``LazyHistory`` (the history of a course loaded from its snapshot) behaves as the list of its
decoded events, decodes each stored body at most once and only when it is read, and lets a
decoding error propagate from the read that needed it."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iptflow.engine.history import LazyHistory

_events = st.lists(st.fixed_dictionaries({"type": st.text(max_size=3), "n": st.integers()}),
                   max_size=8)


class Decoder:
    """json.loads that counts what it decodes, checks that it is told the event's position in
    the stored ``texts``, and refuses the text ``bad``."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls: list[int] = []

    def __call__(self, index: int, text: str) -> Any:
        assert text == self.texts[index]
        self.calls.append(index)
        if text == "bad":
            raise ValueError(f"event {index + 1} is not JSON")
        return json.loads(text)


def _lazy(events: list[dict[str, Any]]) -> tuple[LazyHistory, Decoder]:
    texts = [json.dumps(e) for e in events]
    decoder = Decoder(texts)
    return LazyHistory(texts, decoder), decoder


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers()),
        st.tuples(st.just("clear"), st.none()),
        st.tuples(st.just("del_from"), st.integers(-10, 10)),
        st.tuples(st.just("del_at"), st.integers(-10, 10)),
        st.tuples(st.just("get"), st.integers(-10, 10)),
        st.tuples(st.just("set"), st.integers(-10, 10)),
        st.tuples(st.just("insert"), st.integers(-10, 10)),
        st.tuples(st.just("slice"), st.tuples(st.integers(-10, 10), st.integers(-10, 10))),
        st.tuples(st.just("reversed"), st.none()),
        st.tuples(st.just("iter"), st.none()),
        st.tuples(st.just("len"), st.none()),
        st.tuples(st.just("pop"), st.none()),
    ),
    max_size=12,
)


def _do(target: Any, op: str, arg: Any) -> Any:
    """One operation on a list or a LazyHistory: what it returns, or the exception's type."""
    try:
        if op == "append":
            target.append({"type": "x", "n": arg})
        elif op == "clear":
            target.clear()
        elif op == "del_from":
            del target[arg:]
        elif op == "del_at":
            del target[arg]
        elif op == "get":
            return target[arg]
        elif op == "set":
            target[arg] = {"type": "set", "n": arg}
        elif op == "insert":
            target.insert(arg, {"type": "ins", "n": arg})
        elif op == "slice":
            return target[arg[0]:arg[1]]
        elif op == "reversed":
            return list(reversed(target))
        elif op == "iter":
            return list(target)
        elif op == "len":
            return len(target)
        elif op == "pop":
            return target.pop()
    except IndexError:
        return IndexError
    return None


@given(_events, _ops)
def test_a_lazy_history_behaves_as_the_list_of_its_decoded_events(
    events: list[dict[str, Any]], ops: list[tuple[str, Any]]
) -> None:
    lazy, decoder = _lazy(events)
    plain = copy.deepcopy(events)
    for op, arg in ops:
        assert _do(lazy, op, arg) == _do(plain, op, arg), (op, arg)
        assert len(lazy) == len(plain)
    assert lazy == plain and plain == lazy and list(lazy) == plain
    assert len(decoder.calls) == len(set(decoder.calls))  # each body decoded at most once


def test_nothing_is_decoded_until_an_event_is_read() -> None:
    events = [{"type": "course_opened", "n": 1}, {"type": "a", "n": 2}, {"type": "b", "n": 3}]
    lazy, decoder = _lazy(events)
    assert len(lazy) == 3 and lazy.pending == 3
    lazy.append({"type": "c", "n": 4})
    del lazy[3:]  # what Course.apply does when an observer fails after the event was logged
    assert decoder.calls == [] and len(lazy) == 3
    assert lazy[-1] == events[2] and decoder.calls == [2]
    assert next(reversed(lazy)) == events[2] and decoder.calls == [2]
    assert lazy[0] == events[0] and lazy.pending == 1
    assert lazy == events and lazy.pending == 0 and sorted(decoder.calls) == [0, 1, 2]
    assert lazy != events[:2] and lazy != "not a list"
    lazy.clear()
    assert lazy == [] and lazy.pending == 0


def test_a_body_that_does_not_decode_fails_the_read_that_needs_it() -> None:
    texts = ['{"type": "a"}', "bad", '{"type": "c"}']
    lazy = LazyHistory(texts, Decoder(texts))
    assert lazy[0] == {"type": "a"} and lazy[2] == {"type": "c"} and len(lazy) == 3
    for read in (lambda: lazy[1], lambda: list(lazy), lambda: lazy == [{}, {}, {}], lambda: lazy[:2]):
        with pytest.raises(ValueError, match="event 2 is not JSON"):
            read()
    assert lazy.pending == 1  # the failed read changed nothing
    with pytest.raises(ValueError, match="event 2"):  # a change that moves events decodes first
        del lazy[0]
    assert lazy.pending == 1 and len(lazy) == 3
    del lazy[1:]  # a tail goes without decoding
    assert lazy == [{"type": "a"}] and lazy.pending == 0


def test_a_copied_or_pickled_history_is_the_plain_list_of_its_events() -> None:
    events = [{"type": "a", "n": 1}, {"type": "b", "n": 2}]
    lazy, _ = _lazy(events)
    assert copy.deepcopy(lazy) == events and type(copy.deepcopy(lazy)) is list
    assert pickle.loads(pickle.dumps(lazy)) == events
    assert copy.copy(lazy) == events
    assert repr(lazy) == repr(events)
