"""Cohort simulation: synthetic courses from a trajectory model, run through the engine.

Each simulated patient has a baseline severity, a weekly change (near zero for non-responders)
and week-to-week noise; sessions are planned at a regular interval and attended with some
probability; a risk flag, a dropout or a referral can happen on any planned session; a
clinician (:class:`iptflow.simulate_clinician.Clinician`) records what the protocol requires,
derived from the resolved protocol's requirements, so most courses complete and some deviate.

Every course draws its randomness from ``random.Random(f"{seed}/{index}")``: the result of a
seed does not depend on how many worker processes generate the courses. Each worker simulates
a chunk of indices and stores it itself, in one transaction, each course marked ``synthetic``
(the engine validated every event as it was simulated: nothing is replayed again). A chunk's
courses already in the store are skipped, so running an interrupted simulation again completes
it. The run itself is recorded once in the ``simulation_runs`` table.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from iptflow.engine.course import Course
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry, default_registry
from iptflow.research.clinician import SESSION, Clinician, Stuck
from iptflow.research.generate import _next_goal
from iptflow.research.model import TrajectoryModel
from iptflow.research.report_facts import FactsTracker
from iptflow.store.api import Store
from iptflow.store.errors import UnknownCourse
from iptflow.store.report_tables import write_report_rows

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
MAX_EVENTS = 400
BATCH = 250


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Patient:
    severity0: float
    slope: float
    responder: bool
    noise: random.Random


@dataclass
class _Sim:
    """One simulated course in progress."""

    compiled: CompiledProtocol
    model: TrajectoryModel
    rng: random.Random
    course_id: str
    t: datetime = START
    course: Course | None = None
    treatment_start: datetime | None = None
    patient: _Patient | None = None
    tasks_since_session: int = 0
    missed_last: bool = False
    clinician: Clinician | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    tracker: FactsTracker | None = None  # the course's report facts, fed as it goes

    # -- the patient -----------------------------------------------------------------------
    def severity(self) -> float:
        p = self.patient
        assert p is not None
        weeks = 0.0 if self.treatment_start is None else (self.t - self.treatment_start).days / 7
        value = p.severity0 + p.slope * weeks + p.noise.gauss(0.0, self.model.symptoms.noise_sd)
        return min(1.0, max(0.0, value))

    def score(self, course: Course, instrument: str) -> int | float:
        inst = self.compiled.protocol.instruments[instrument]
        base = course.facts.baseline
        primary = base.instrument if base is not None else self.clinician_primary()
        tracks = instrument == primary or instrument in self.companions(primary)
        level = self.severity() if tracks else self.model.symptoms.other_instruments_level
        top = inst.max if inst.max is not None else inst.min + 20
        value = inst.min + level * (top - inst.min)
        return int(round(value)) if inst.integer else round(value, 1)

    def companions(self, primary: str) -> list[str]:
        """Instruments the outcome of ``primary`` also looks at (bulimia 2.0.0: compensatory
        episodes beside binge episodes): measured with it, they follow the same severity."""
        rules = self.compiled.protocol.instruments[primary].outcome
        return [r.also.instrument for r in rules if r.also is not None]

    def clinician_primary(self) -> str:
        assert self.clinician is not None
        return self.clinician.primary_instrument()

    def planned(self, course: Course) -> int:
        rng = self.compiled.protocol.session_range
        how = self.model.contract.planned_sessions
        if how == "min":
            return rng.min
        if how == "max":
            return rng.max
        return self.rng.randint(rng.min, rng.max)

    # -- recording -------------------------------------------------------------------------
    def fire(self, payload: dict[str, Any], minutes: int = 10) -> bool:
        assert self.course is not None
        self.t += timedelta(minutes=minutes)
        event = {"type": payload["type"], "at": _iso(self.t),
                 **{k: v for k, v in payload.items() if k != "type"}}
        result = self.course.apply(event)
        if result.ok and self.tracker is not None:
            self.tracker.accepted(event["at"])
        if result.ok and event["type"] in ("session_held", "session_missed"):
            self.tasks_since_session = 0
        elif result.ok:
            self.tasks_since_session += 1
        return result.ok

    def end(self, etype: str, reason: str) -> None:
        assert self.course is not None and self.clinician is not None
        # the clinician's payload names who holds an open review (handover, protocol 2.0.0)
        self.fire({**self.clinician.payload(self.course, etype), "reason": reason})


def _opening(sim: _Sim) -> dict[str, Any]:
    compiled, model, rng = sim.compiled, sim.model, sim.rng
    protocol = compiled.protocol
    age_min, age_max = model.cohort.age_min, model.cohort.age_max
    for req in compiled.open_requires:
        params = protocol.requirements[req.name].params
        if protocol.requirements[req.name].guard == "patient_age_between":
            age_min, age_max = params["min"], params["max"]
    fmt = "individual"
    if "group" in protocol.formats and rng.random() < model.cohort.group_share:
        fmt = "group"
    sim.attrs = {"format": fmt}
    return {
        "type": "course_opened",
        "at": _iso(sim.t),
        "course_id": sim.course_id,
        "protocol": protocol.id,
        "adaptations": [] if protocol.variant else list(protocol.adaptations),
        "patient": {"age": rng.randint(age_min, age_max)},
        "format": fmt,
    }


def simulate_course(compiled: CompiledProtocol, model: TrajectoryModel, seed: int, index: int) -> Course:
    """One synthetic course; the same (seed, index) always gives the same course.

    Its id is ``sim-PROTOCOL[-ADAPTATION...]-SEED-INDEX``.
    """
    return _simulate(compiled, model, seed, index)[0]


def _simulate(compiled: CompiledProtocol, model: TrajectoryModel, seed: int,
              index: int) -> tuple[Course, FactsTracker]:
    """:func:`simulate_course` and the course's report facts, tracked as it was simulated."""
    rng = random.Random(f"{seed}/{index}")
    sim = _Sim(compiled, model, rng, course_id_for(compiled, seed, index))
    sim.t = START + timedelta(days=rng.randrange(model.cohort.enrolment_days), hours=rng.randrange(8))
    s = model.symptoms
    responder = rng.random() >= s.non_responder_share
    slope = rng.gauss(s.weekly_change_mean, s.weekly_change_sd) if responder else rng.gauss(
        0.0, s.weekly_change_sd / 2)
    sim.patient = _Patient(min(0.95, max(0.15, rng.gauss(s.baseline_mean, s.baseline_sd))), slope,
                           responder, random.Random(rng.random()))
    sim.clinician = Clinician(compiled, score=sim.score, planned_sessions=sim.planned,
                              preferred_instruments=tuple(s.instrument_preference))
    opening = _opening(sim)
    course, _ = Course.try_open(opening, compiled.registry, notify=False, compiled=compiled)
    if course is None:  # pragma: no cover - the opening is built to satisfy open_requires
        raise RuntimeError(f"simulated course {sim.course_id} could not be opened")
    sim.course = course
    sim.tracker = FactsTracker(course, opening["at"])
    _run(sim)
    return course, sim.tracker


def _run(sim: _Sim) -> None:
    course, compiled, model, rng = sim.course, sim.compiled, sim.model, sim.rng
    clinician = sim.clinician
    assert course is not None and clinician is not None
    maintenance_decided = False
    for _ in range(MAX_EVENTS):
        if course.is_closed:
            return
        if sim.treatment_start is None and course.state != compiled.protocol.initial_state:
            sim.treatment_start = sim.t
        contract = course.facts.maintenance
        if contract and course.facts.sessions_by_state.get(course.state, 0) < contract["planned_sessions"]:
            if not _session_week(sim, model.maintenance.interval_days):
                return
            continue
        goal = _goal(compiled, sim.attrs, course.state)
        if goal is None:
            return
        try:
            step = clinician.next_step(course, goal)
        except Stuck:
            sim.end("course_referred", "the protocol could not be followed")
            return
        sessions_here = "session_held" in compiled.allowed.get(course.state, {})
        if step is not None and step != SESSION and sessions_here and (
                sim.tasks_since_session >= model.attendance.tasks_per_session):
            step = SESSION
        if step is None and sessions_here and _contract_left(course, goal):
            step = SESSION
        if step is None:
            if (goal == "course_completed" and not maintenance_decided
                    and "maintenance_started" in compiled.allowed.get(course.state, {})):
                maintenance_decided = True
                if rng.random() < model.maintenance.probability:
                    sim.fire({"type": "maintenance_started", "frequency": model.maintenance.frequency,
                              "planned_sessions": model.maintenance.planned_sessions})
                    continue
            if not sim.fire(clinician.payload(course, goal)):
                sim.end("course_referred", f"{goal} was not possible")
                return
        elif step == SESSION:
            if not sessions_here or not _session_week(sim, model.attendance.session_interval_days):
                return
        elif not sim.fire(step, 10 if sessions_here else
                          int(model.attendance.pre_treatment_step_days * 1440)):
            sim.end("course_referred", f"{step['type']} was not possible")
            return
    if not course.is_closed:
        sim.end("course_discontinued", "the simulation's event budget ran out")


_GOALS: weakref.WeakKeyDictionary[CompiledProtocol, dict[tuple[Any, ...], str | None]] = (
    weakref.WeakKeyDictionary())


def _goal(compiled: CompiledProtocol, attrs: dict[str, Any], state: str) -> str | None:
    """The next state-changing event towards completion (``generate._next_goal``), which only
    depends on the protocol, the opening attributes and the state: computed once per protocol."""
    goals = _GOALS.setdefault(compiled, {})
    key = (state, *sorted(attrs.items()))
    if key not in goals:
        goals[key] = _next_goal(compiled, attrs, state, "course_completed")
    return goals[key]


def _contract_left(course: Course, goal: str) -> bool:
    """Before ending the acute phase, a clinician holds the sessions still contracted."""
    routes = course.compiled.allowed.get(course.state, {}).get(goal, ())
    ends = any(r.dest in course.compiled.final_states for r in routes)
    planned = course.facts.planned_sessions
    return (ends and planned is not None and course.state in course.protocol.acute_states
            and course.facts.acute_sessions < planned)


def _session_week(sim: _Sim, interval: float) -> bool:
    """One planned session: dropout, risk, attendance, measures, review. False when it ended."""
    course, model, rng, clinician = sim.course, sim.model, sim.rng, sim.clinician
    assert course is not None and clinician is not None
    jitter = rng.uniform(-model.attendance.jitter_days, model.attendance.jitter_days)
    if sim.missed_last:
        interval = min(interval, model.attendance.reschedule_days)
    sim.t += timedelta(days=max(1.0, interval + jitter))
    if rng.random() < model.dropout.weekly_hazard:
        sim.end("course_discontinued", "the patient stopped attending")
        return False
    if rng.random() < model.risk.weekly_probability:
        sim.fire({"type": "risk_flagged", "reason": "suicidal thoughts reported"})
        high = rng.random() < model.risk.high_share
        sim.fire({"type": "risk_assessed", "level": "high" if high else "low", "safety_plan": True})
        if high and rng.random() < model.risk.refer_if_high:
            sim.end("course_referred", "high suicide risk")
            return False
    sim.missed_last = rng.random() >= model.attendance.attend_probability
    if sim.missed_last:
        sim.fire({"type": "session_missed"}, minutes=0)
        return True
    if not sim.fire(clinician.payload(course, "session_held"), minutes=0):
        return True  # the contract is used up: the clinician moves on
    held = course.facts.sessions_held
    if held % model.symptoms.measure_every_sessions == 0:
        sim.fire(clinician.measure(course, "baseline"))
        base = course.facts.baseline
        for companion in sim.companions(base.instrument) if base is not None else ():
            sim.fire(clinician.measure(course, companion))
    if (held == course.protocol.review_session and _improvement(course) < 25
            and rng.random() < model.referral.non_responder_probability):
        sim.end("course_referred", "no response at the review session")
        return False
    return True


def _improvement(course: Course) -> float:
    outcome = course.outcome
    if outcome is None or outcome.change_pct is None:
        return 0.0
    return -outcome.change_pct


# -- cohorts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationSpec:
    protocol: str
    adaptations: tuple[str, ...]
    n: int
    seed: int
    model: TrajectoryModel
    protocol_dirs: tuple[str, ...] = ()


_worker: dict[str, Any] = {}


def _registry(dirs: Sequence[str]) -> Registry:
    return Registry(protocol_dirs=dirs) if dirs else default_registry()


def course_id_for(compiled: CompiledProtocol, seed: int, index: int) -> str:
    """The id of the simulated course ``index`` of ``seed``: ``sim-PROTOCOL[-ADAPTATION...]-SEED-INDEX``."""
    label = "-".join([compiled.protocol.id, *compiled.protocol.adaptations])
    return f"sim-{label}-{seed}-{index:06d}"


def _open_store(db_path: str | Path, registry: Registry) -> Store:
    return Store.open(db_path, registry=registry, clock=None, synchronous="NORMAL", cache_size=0)


def write_chunk(store: Store, compiled: CompiledProtocol, spec: SimulationSpec,
                indices: range) -> tuple[dict[str, int], int]:
    """Simulate the courses of ``indices`` not yet in ``store`` and store them in one
    transaction; return the final states of every course of the chunk and how many were new.

    A course already stored (an earlier, interrupted run of the same seed) is kept as it is:
    the same (seed, index) always gives the same course. The new courses' report rows
    (:mod:`iptflow.store.report_tables`), tracked while they were simulated, are stored right
    after them, in a second transaction (a crash in between leaves them missing: the next
    report computes them).
    """
    states: dict[str, int] = {}
    fresh: list[Course] = []
    trackers: list[FactsTracker] = []
    for i in indices:
        course_id = course_id_for(compiled, spec.seed, i)
        try:
            state = store.row(course_id).state
        except UnknownCourse:
            course, tracker = _simulate(compiled, spec.model, spec.seed, i)
            fresh.append(course)
            trackers.append(tracker)
            state = course.state
        states[state] = states.get(state, 0) + 1
    if fresh:
        store.import_many(fresh, synthetic=True)
        write_report_rows(store.recorder, [t.rows() for t in trackers])
    return states, len(fresh)


def _init_worker(spec: SimulationSpec, db_path: str) -> None:
    """A worker's state: the compiled protocol (inherited from the parent when forked) and its
    own connection to the store."""
    if _worker.get("spec") != spec:
        _worker["spec"] = spec
        _worker["compiled"] = _registry(spec.protocol_dirs).compile(spec.protocol, spec.adaptations)
    compiled: CompiledProtocol = _worker["compiled"]
    _worker["store"] = _open_store(db_path, compiled.registry)


def _work(indices: range) -> tuple[dict[str, int], int, int]:
    states, new = write_chunk(_worker["store"], _worker["compiled"], _worker["spec"], indices)
    return states, new, len(indices)


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def _start_method() -> str:
    """``fork`` where there is one (workers inherit the imported modules and the compiled
    protocol: no start-up cost), else ``spawn``."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _run_chunks(spec: SimulationSpec, db_path: str | Path, compiled: CompiledProtocol,
                workers: int, chunk_size: int) -> Iterator[tuple[dict[str, int], int, int]]:
    """Each chunk's final states, new courses and size, in index order; with ``workers`` > 1,
    worker processes simulate and store their own chunks (each in its own transaction).

    The parent holds no connection while workers run (none is carried across a fork)."""
    chunks = _chunks(spec.n, chunk_size)
    if workers <= 1 or len(chunks) <= 1:
        with _open_store(db_path, compiled.registry) as store:
            for chunk in chunks:
                states, new = write_chunk(store, compiled, spec, chunk)
                yield states, new, len(chunk)
        return
    _worker.update(spec=spec, compiled=compiled)
    ctx = multiprocessing.get_context(_start_method())
    pool = ctx.Pool(min(workers, len(chunks)), initializer=_init_worker, initargs=(spec, str(db_path)))
    try:
        yield from pool.imap(_work, chunks)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        _worker.clear()


@dataclass
class SimulationSummary:
    n: int
    seed: int
    protocol: str
    adaptations: list[str]
    final_states: dict[str, int]
    created: int = 0  # courses simulated by this run (the others were stored by an earlier one)
    synthetic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"synthetic": self.synthetic, "n": self.n, "seed": self.seed, "protocol": self.protocol,
                "adaptations": self.adaptations, "final_states": self.final_states,
                "created": self.created}


def simulate_cohort(spec: SimulationSpec, db_path: str | Path, *, workers: int = 1,
                    progress: Callable[[int], None] | None = None,
                    chunk_size: int = BATCH) -> SimulationSummary:
    """Simulate ``spec.n`` courses into the store at ``db_path`` (every course marked synthetic).

    Courses are stored in chunks of ``chunk_size``, each in one transaction (by the worker that
    simulated it); the store's content does not depend on ``workers``. A run that was
    interrupted is completed by running it again: courses already stored are kept and only
    the missing ones are simulated. Memory does not grow with ``n``.
    """
    registry = _registry(spec.protocol_dirs)
    compiled = registry.compile(spec.protocol, spec.adaptations)  # unknown protocol: fail early
    states: dict[str, int] = {}
    created = 0
    with _open_store(db_path, registry):  # created and migrated before any worker opens it
        pass
    for chunk_states, new, size in _run_chunks(spec, db_path, compiled, workers, chunk_size):
        for state, k in chunk_states.items():
            states[state] = states.get(state, 0) + k
        created += new
        if progress is not None:
            progress(size)
    with _open_store(db_path, registry) as store:
        _record_run(store, spec, compiled)
    return SimulationSummary(spec.n, spec.seed, compiled.protocol.id, list(compiled.protocol.adaptations),
                             dict(sorted(states.items())), created=created)


def _record_run(store: Store, spec: SimulationSpec, compiled: CompiledProtocol) -> None:
    """Record the run unless the same run (a resumed one) is already recorded."""
    model = spec.model.model_dump(mode="json")
    for run in store.simulation_runs():
        if (run.protocol, run.adaptations, run.fingerprint, run.n, run.seed, run.model) == (
                compiled.protocol.id, list(compiled.protocol.adaptations), compiled.fingerprint,
                spec.n, spec.seed, json.loads(json.dumps(model, sort_keys=True))):
            return
    store.record_simulation_run(
        protocol=compiled.protocol.id,
        adaptations=list(compiled.protocol.adaptations),
        fingerprint=compiled.fingerprint,
        n=spec.n,
        seed=spec.seed,
        model=model,
    )


def default_workers() -> int:
    return max(1, min(4, (multiprocessing.cpu_count() or 1)))

