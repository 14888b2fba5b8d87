"""Crash safety and concurrency of the store, with real processes on a real SQLite file.

Children are forked from the test process (which holds no open connection while it forks),
so starting one costs milliseconds and the test stays short.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from store_support import measure_for_seq, opened

from iptflow.store.api import Store

fork = multiprocessing.get_context("fork")


def _appender(path: str, fd: int) -> None:
    """Append events forever; after each commit, report its seq on the pipe (unbuffered)."""
    store = Store.open(path)
    while True:
        seq = store.row("c-001").last_seq
        result = store.apply("c-001", measure_for_seq(seq + 1, score=(seq + 1) % 28), expected_seq=seq)
        if not result.ok:  # pragma: no cover - a single writer never conflicts
            os.write(fd, f"REJECTED {result.code}\n".encode())
            continue
        os.write(fd, f"{result.seq}\n".encode())


def _read_all(fd: int, first: bytes = b"") -> str:
    chunks = [first]
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_sigkill_at_random_moments_loses_no_acknowledged_event(tmp_path: Path):
    path = str(tmp_path / "crash.db")
    with Store.open(path) as store:
        assert store.open_course(opened()).ok
    rng = random.Random(20250106)
    rounds = 24
    acknowledged: list[int] = []
    kills = 0  # rounds whose child was killed while it was writing
    for _ in range(rounds):
        read_fd, write_fd = os.pipe()
        child = fork.Process(target=_appender, args=(path, write_fd))
        child.start()
        os.close(write_fd)
        # wait until the child is appending (its first acknowledgement), so that the kill lands
        # at a random moment of the append loop however slow a loaded machine is to start it
        first = os.read(read_fd, 65536)
        time.sleep(rng.uniform(0.0, 0.12))
        alive = child.is_alive()
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        lines = _read_all(read_fd, first).split()
        assert not [line for line in lines if not line.isdigit()], lines
        acks = [int(line) for line in lines]
        # the kill landed in the append loop: the child was still running, had committed and
        # acknowledged at least one event, and died of the signal, not of an error
        if alive and acks and child.exitcode == -signal.SIGKILL:
            kills += 1
        acknowledged += acks
    assert kills == rounds
    assert len(acknowledged) > 20, "the children should have committed events between kills"
    assert acknowledged == sorted(set(acknowledged))

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store.open(path) as store:
        stored = {e.seq: e.event for e in store.history("c-001")}
        assert set(acknowledged) <= set(stored)
        assert sorted(stored) == list(range(1, max(stored) + 1))
        for seq in acknowledged:
            assert stored[seq] == measure_for_seq(seq, score=seq % 28)
        assert store.row("c-001").last_seq == max(stored)
        report = store.verify()
        assert report.ok, report.problems
        assert store.get("c-001").seq == max(stored)


def _racer(path: str, name: str, rounds: int, barrier, queue) -> None:
    """Each round: read the course's seq, wait for the other racer, append with expected_seq."""
    store = Store.open(path)
    outcomes = []
    for _ in range(rounds):
        seq = store.row("c-001").last_seq
        barrier.wait()
        result = store.apply("c-001", measure_for_seq(seq + 1, actor=name), expected_seq=seq)
        outcomes.append((seq, result.seq if result.ok else result.code))
        barrier.wait()
    free = []
    while len(free) < rounds:  # free-running: retry on conflict until it lands
        seq = store.row("c-001").last_seq
        result = store.apply("c-001", measure_for_seq(seq + 1, actor=name), expected_seq=seq)
        if result.ok:
            free.append(result.seq)
        elif result.code != "conflict":  # pragma: no cover - reported to the test
            free.append(result.code)
    store.close()
    queue.put((name, outcomes, free))


def test_two_processes_racing_with_expected_seq(tmp_path: Path):
    path = str(tmp_path / "race.db")
    with Store.open(path) as store:
        assert store.open_course(opened()).ok
    rounds = 15
    barrier = fork.Barrier(2)
    queue = fork.Queue()
    racers = [fork.Process(target=_racer, args=(path, n, rounds, barrier, queue)) for n in ("a", "b")]
    for racer in racers:
        racer.start()
    results = {}
    for _ in racers:
        name, outcomes, free = queue.get(timeout=120)
        results[name] = (outcomes, free)
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0

    won: dict[int, str] = {}
    for i in range(rounds):
        (seq_a, got_a), (seq_b, got_b) = results["a"][0][i], results["b"][0][i]
        assert seq_a == seq_b  # both read the same course
        assert sorted([got_a, got_b], key=str) == sorted([seq_a + 1, "conflict"], key=str)
        won[seq_a + 1] = "a" if got_a == seq_a + 1 else "b"
    for name in ("a", "b"):
        for seq in results[name][1]:
            assert isinstance(seq, int), seq
            assert seq not in won
            won[seq] = name

    with Store.open(path) as store:
        history = store.history("c-001")
        assert [e.seq for e in history] == list(range(1, 2 + 3 * rounds))  # no gaps, no duplicates
        assert {e.seq: e.actor for e in history[1:]} == won  # every seq written once, by its winner
        assert store.verify().ok


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_synchronous_setting_is_applied(tmp_path: Path, synchronous: str):
    with Store.open(tmp_path / "s.db", synchronous=synchronous) as store:
        level = store.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert level == {"NORMAL": 1, "FULL": 2}[synchronous]
