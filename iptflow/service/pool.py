"""A fixed set of threads, each with its own open :class:`~iptflow.store.Store` (a Store belongs
to one thread): the service hands every piece of work that touches the store to them.

``size`` threads means at most ``size`` connections per process (``iptflow serve --workers N``
opens ``N * size``), however many requests wait; SQLite serializes writers on its lock and
PostgreSQL on the course row, as for any other writer (docs/store.md). :meth:`close` lets the
work already queued finish, then closes every store.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from iptflow.engine.registry import Registry
from iptflow.store import Store

__all__ = ["StorePool"]

T = TypeVar("T")

_STOP = object()


class StorePool:
    """``size`` threads, each holding one store opened on ``url``; :meth:`run` awaits a function
    of the store on whichever thread is free."""

    def __init__(self, url: str, *, size: int = 4, registry: Registry | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url
        self.size = size
        self._registry = registry
        self._timeout = timeout
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._started = threading.RLock()

    def start(self) -> None:
        """Open the stores (in their threads) and raise the first error opening one raised."""
        with self._started:
            if self._threads:
                return
            ready: list[Future[None]] = []
            for n in range(self.size):
                opened: Future[None] = Future()
                thread = threading.Thread(target=self._work, args=(opened,),
                                          name=f"iptflow-store-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
                ready.append(opened)
            for opened in ready:
                error = opened.exception()
                if error is not None:
                    self.close()
                    raise error

    def _work(self, opened: Future[None]) -> None:
        try:
            store = Store.open(self.url, registry=self._registry, timeout=self._timeout)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    return
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn(store))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            store.close()

    def submit(self, fn: Callable[[Store], T]) -> Future[T]:
        """Queue ``fn(store)``; its future."""
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    async def run(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on a free thread of the pool (the event loop waits, never blocks; the
        stores open on the first call if :meth:`start` was not called)."""
        if not self._threads:
            self.start()
        return await asyncio.wrap_future(self.submit(fn))

    def close(self) -> None:
        """Finish the queued work, close every store, end the threads."""
        with self._started:
            for _ in self._threads:
                self._jobs.put(_STOP)
            for thread in self._threads:
                thread.join()
            self._threads = []
