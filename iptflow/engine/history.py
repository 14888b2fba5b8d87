"""A course's accepted events, decoded from their stored text only when read.

A course loaded from a store keeps its whole ``history`` (agendas, the worklist, timelines and
protocol migrations read it), but most loads never look at it: the course itself is restored
from its snapshot (docs/store.md#snapshots). :class:`LazyHistory` holds the stored bodies of
those events and decodes each the first time it is read, so that a load pays for a ``len``
and nothing more until then.

It behaves as the list of decoded events ``Course`` keeps otherwise: ``len`` (no decoding),
iteration, ``reversed``, indexing and slicing (a slice is a plain ``list``), ``append``,
``clear``, ``del h[i:]`` and every other mutable-sequence operation (one that would move an
event not decoded yet, such as an insertion or a deletion before the end, decodes every event
first), and equality with lists. What decoding raises (the store's ``CorruptCourse``, naming
the course and event) propagates from the read that needed the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from typing import Any, SupportsIndex, overload

__all__ = ["Decode", "LazyHistory"]

#: ``decode(index, text)``: the event stored as ``text`` at ``index`` (0-based) of the log.
Decode = Callable[[int, str], Any]

_PENDING: Any = object()  # an event not decoded yet (its text is in ``_texts``)


class LazyHistory(MutableSequence[Any]):
    """Events stored as ``texts``, decoded by ``decode`` the first time each is read."""

    __slots__ = ("_decode", "_items", "_pending", "_texts")
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value like a list

    def __init__(self, texts: Sequence[str], decode: Decode) -> None:
        self._texts: list[str | None] = list(texts)  # by position in the log
        self._items: list[Any] = [_PENDING] * len(self._texts)
        self._pending = len(self._texts)
        self._decode = decode

    # -- decoding ------------------------------------------------------------------------------
    def _load(self, index: int) -> Any:
        item = self._decode(index, self._texts[index])
        self._items[index] = item
        self._texts[index] = None
        self._pending -= 1
        return item

    def decoded(self) -> list[Any]:
        """Every event decoded, as the list this history holds (decodes what is left)."""
        if self._pending:
            items = self._items
            for i in range(len(items)):
                if items[i] is _PENDING:
                    self._load(i)
        return self._items

    @property
    def pending(self) -> int:
        """How many events are not decoded yet."""
        return self._pending

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        if isinstance(index, slice):
            if not self._pending:
                return self._items[index]
            return [self[i] for i in range(*index.indices(len(self._items)))]
        item = self._items[index]
        if item is _PENDING:
            i = index.__index__()
            return self._load(i + len(self._items) if i < 0 else i)
        return item

    def __iter__(self) -> Iterator[Any]:
        if not self._pending:
            return iter(self._items)
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        items = self._items
        i = 0
        while i < len(items):
            item = items[i]
            yield self._load(i) if item is _PENDING else item
            i += 1

    def __reversed__(self) -> Iterator[Any]:
        items = self._items
        i = len(items) - 1
        while i >= 0:
            if i < len(items):
                item = items[i]
                yield self._load(i) if item is _PENDING else item
            i -= 1

    def __contains__(self, value: object) -> bool:
        return value in self.decoded()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyHistory):
            other = other.decoded()
        if not isinstance(other, list):
            return NotImplemented
        return len(other) == len(self._items) and self.decoded() == other

    def __repr__(self) -> str:
        return repr(self.decoded())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied as the plain list of its events (the decoder stays behind)."""
        return (list, (self.decoded(),))

    # -- changing ------------------------------------------------------------------------------
    # An event not decoded yet is always at its position in the stored log (what ``decode`` is
    # told): appending, replacing one event and deleting a tail (``del h[n:]``, what ``Course``
    # does) move none; any other change that would move one decodes every event first.
    def append(self, value: Any) -> None:
        self._items.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self._items.extend(values)

    def clear(self) -> None:
        self._items.clear()
        self._texts = []
        self._pending = 0

    def insert(self, index: int, value: Any) -> None:
        if self._pending and index < len(self._items):
            self.decoded()
        self._items.insert(index, value)

    @overload
    def __setitem__(self, index: SupportsIndex, value: Any) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Any]) -> None: ...

    def __setitem__(self, index: SupportsIndex | slice, value: Any) -> None:
        items = self._items
        if isinstance(index, slice):
            if self._pending:
                self.decoded()
            items[index] = value
        else:
            if items[index] is _PENDING:
                self._pending -= 1
            items[index] = value

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        items = self._items
        if self._pending:
            n = len(items)
            if isinstance(index, slice):
                start, stop, step = index.indices(n)
                gone = range(start, stop, step)
                tail = step == 1 and (stop >= n or start >= stop)
            else:
                i = index.__index__()
                if i < 0:
                    i += n
                gone = range(i, i + 1)
                tail = i >= n - 1
            if tail:
                self._pending -= sum(1 for i in gone if 0 <= i < n and items[i] is _PENDING)
            else:
                self.decoded()
        del items[index]
