"""The store's bulk paths (issue 16): ``Store.apply`` on a course the store has cached writes
without reading the course row first, and must still see every other writer; imports of many
files at once. On a SQLite file and on a real PostgreSQL server (``store_url``)."""

from __future__ import annotations

import pytest
from store_support import measure_for_seq, opened

from iptflow.store.api import Store


@pytest.fixture
def db(store_url: str) -> str:
    return store_url


def test_a_cached_course_sees_the_other_writer_before_answering(db: str):
    with Store.open(db) as a, Store.open(db) as b:
        assert a.open_course(opened()).ok
        assert a.apply("c-001", measure_for_seq(2), expected_seq=1).seq == 2  # a caches it at 2
        assert b.apply("c-001", measure_for_seq(3), idempotency_key="k3").seq == 3
        stale = a.apply("c-001", measure_for_seq(4), expected_seq=2)
        assert stale.code == "conflict" and "at event 3" in stale.message
        # the same key and event b stored: b's answer, nothing stored twice
        again = a.apply("c-001", measure_for_seq(3), idempotency_key="k3")
        assert again.ok and again.seq == 3
        assert a.apply("c-001", measure_for_seq(4), expected_seq=3).seq == 4
        assert b.apply("c-001", measure_for_seq(5)).seq == 5
        assert a.apply("c-001", measure_for_seq(6)).seq == 6  # a's cache was at 4
        assert [e.seq for e in a.history("c-001")] == [1, 2, 3, 4, 5, 6]
        assert a.get("c-001").snapshot() == b.get("c-001").snapshot()
        assert a.verify().ok


def test_a_rejection_on_a_cached_course_writes_nothing_and_keeps_the_cache_usable(db: str):
    with Store.open(db) as store:
        assert store.open_course(opened()).ok
        assert store.apply("c-001", measure_for_seq(2)).seq == 2
        rejected = store.apply("c-001", {"type": "treatment_started", "at": "2025-01-06T12:00:00Z"})
        assert not rejected.ok
        assert store.apply("c-001", measure_for_seq(3), expected_seq=2).seq == 3
        assert store.row("c-001").last_seq == 3 and store.verify().ok
