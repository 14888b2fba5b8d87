"""Parallel and resumable simulation: the same store for any number of workers, chunk size or
interruption (content and hash chains compared row by row)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.engine.registry import default_registry
from iptflow.research.model import TrajectoryModel
from iptflow.research.simulate import SimulationSpec, simulate_cohort, simulate_course
from iptflow.store.api import Store

TABLES = {
    "protocols": "fingerprint",
    "courses": "id",
    "events": "course_id, seq",
    "course_adaptations": "course_id, adaptation",
    "simulation_runs": "run",
}
SPEC = SimulationSpec("ipt-depression", ("ptsd",), 23, 5, TrajectoryModel())


def content(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall() for t, key in TABLES.items()}
    finally:
        conn.close()


class Interrupted(Exception):
    pass


def interrupt_after(courses: int):
    done = [0]

    def progress(k: int) -> None:
        done[0] += k
        if done[0] >= courses:
            raise Interrupted

    return progress


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, list[tuple]]:
    db = tmp_path_factory.mktemp("sim") / "whole.db"
    summary = simulate_cohort(SPEC, db, workers=1)
    assert summary.created == 23
    return content(db)


@pytest.mark.parametrize("workers,chunk", [(2, 4), (2, 23), (3, 5), (1, 3)])
def test_any_number_of_workers_and_chunks_gives_the_same_store(tmp_path, uninterrupted, workers, chunk):
    db = tmp_path / "s.db"
    summary = simulate_cohort(SPEC, db, workers=workers, chunk_size=chunk)
    assert summary.created == 23 and sum(summary.final_states.values()) == 23
    got = content(db)
    assert len(got["courses"]) == 23 and len(got["events"]) > 23 * 10
    assert got == uninterrupted
    hashes = [row[7] for row in got["events"]]  # the hash chain, event by event
    assert hashes == [row[7] for row in uninterrupted["events"]]
    with Store.open(db, readonly=True) as store:
        assert store.verify().ok


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_run_resumed_gives_the_uninterrupted_store(tmp_path, uninterrupted, workers):
    db = tmp_path / "s.db"
    with pytest.raises(Interrupted):
        simulate_cohort(SPEC, db, workers=workers, chunk_size=4, progress=interrupt_after(8))
    partial = content(db)
    assert partial["simulation_runs"] == []  # the run was not recorded: it did not finish
    # one worker stops where it was interrupted; two may have stored chunks ahead of it
    assert 8 <= len(partial["courses"]) < 23 if workers == 1 else 8 <= len(partial["courses"]) <= 23
    resumed = simulate_cohort(SPEC, db, workers=workers, chunk_size=4)
    assert resumed.created == 23 - len(partial["courses"])
    assert sum(resumed.final_states.values()) == 23
    assert content(db) == uninterrupted


def test_a_store_holding_some_of_the_courses_is_completed(tmp_path, uninterrupted):
    db = tmp_path / "s.db"
    compiled = default_registry().compile(SPEC.protocol, SPEC.adaptations)
    with Store.open(db, clock=None) as store:  # courses 3, 4 and 17 only, stored some other way
        store.import_many([simulate_course(compiled, SPEC.model, SPEC.seed, i) for i in (17, 3, 4)],
                          synthetic=True)
    again = simulate_cohort(SPEC, db, workers=2, chunk_size=6)
    assert again.created == 20
    assert content(db) == uninterrupted  # and the run is recorded once


def test_the_cli_run_again_adds_nothing_and_says_so(tmp_path):
    db = str(tmp_path / "s.db")
    args = ["simulate", "ipt-depression", "--n", "6", "--seed", "3", "--db", db, "--json", "--workers", "2"]
    first = CliRunner().invoke(cli, args)
    second = CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    one, two = json.loads(first.output), json.loads(second.output)
    assert (one["created"], two["created"]) == (6, 0)
    assert one["final_states"] == two["final_states"]
