"""Rounds, timing and the shape of a figure.

Every figure is measured in rounds; inside a round the baseline and the subject run back to
back (their order alternates between rounds), so the ratio of the two compares runs made
under the same load on a shared, noisy machine. A figure reports the median and the min-max
over the rounds of the subject, of the baseline and of their per-round ratio.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

Stats = dict[str, float]


def stats(values: list[float], digits: int = 3) -> Stats:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call takes, with the garbage collector run before and paused during it."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def compare(
    rounds: int,
    subject: Callable[[], Any],
    baseline: Callable[[], Any],
    per_round: Callable[[float], float],
    *,
    unit: str,
    baseline_name: str,
    target: float | None = None,
    target_of: str = "ratio",
    higher_is_better: bool = False,
    note: str = "",
    also: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, Any]:
    """Run ``subject`` and ``baseline`` once per round, interleaved; report both and the ratio.

    ``also`` names further runs timed in the same rounds (reported under ``also`` in the same
    unit, with their ratio to the baseline): e.g. the store's own SQL without the engine.

    ``per_round`` turns a call's seconds into the figure's unit (e.g. events/s or us per
    event). The ratio is subject/baseline in the "cost" direction (time per unit of work):
    above 1 means slower than the baseline. ``target`` is the upper bound of ``target_of``
    (``"ratio"`` or ``"subject"``: the subject's median in ``unit``).
    """
    subject_values: list[float] = []
    baseline_values: list[float] = []
    ratios: list[float] = []
    others: dict[str, list[tuple[float, float]]] = {name: [] for name in also or {}}
    for i in range(rounds):
        if i % 2 == 0:
            b = timed(baseline)
            s = timed(subject)
        else:
            s = timed(subject)
            b = timed(baseline)
        for name, fn in (also or {}).items():
            seconds = timed(fn)
            others[name].append((per_round(seconds), seconds / b))
        subject_values.append(per_round(s))
        baseline_values.append(per_round(b))
        ratios.append(s / b)
    extra = {
        "also": {
            name: {"value": stats([v for v, _ in pairs]), "ratio": stats([r for _, r in pairs])}
            for name, pairs in others.items()
        }
    } if others else None
    return figure(
        unit=unit,
        subject=subject_values,
        baseline=baseline_values,
        ratios=ratios,
        baseline_name=baseline_name,
        target=target,
        target_of=target_of,
        higher_is_better=higher_is_better,
        note=note,
        extra=extra,
    )


def figure(
    *,
    unit: str,
    subject: list[float],
    baseline: list[float] | None,
    ratios: list[float] | None,
    baseline_name: str,
    target: float | None = None,
    target_of: str = "ratio",
    higher_is_better: bool = False,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unit": unit,
        "rounds": len(subject),
        "subject": stats(subject),
        "baseline": stats(baseline) if baseline else None,
        "baseline_name": baseline_name,
        "ratio": stats(ratios) if ratios else None,
        "target": None,
        "met": None,
    }
    if target is not None:
        if target_of == "ratio":
            assert ratios is not None
            value = statistics.median(ratios)
            out["target"] = f"ratio <= {target:g}"
            out["met"] = value <= target
        else:
            value = statistics.median(subject)
            out["target"] = f"{unit} {'>=' if higher_is_better else '<='} {target:g}"
            out["met"] = value >= target if higher_is_better else value <= target
    if note:
        out["note"] = note
    if extra:
        out.update(extra)
    return out


def not_available(reason: str) -> dict[str, Any]:
    """A figure that could not be measured, saying why (never a made-up number)."""
    return {"not_available": reason}
