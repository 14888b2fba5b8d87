"""Composition: a base protocol + adaptations (+ variant settings) -> ResolvedProtocol.

Rules (SPEC §4): session ranges of adaptations replace the base range and combine by
intersection (empty = conflict naming both adaptations); indications of adaptations replace
the base's and combine by union; declared incompatibilities are conflicts; states,
transitions, instruments, problem areas, requirements and deviations are added. Scalar
settings that two adaptations set differently are conflicts too. Variant settings are applied
last and win, which resolves a settings conflict on purpose.

Adaptations are applied in sorted order so that the same set always gives the same
resolved protocol and fingerprint, whatever order a course file lists them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iptflow.errors import ProtocolConflict
from iptflow.protocol.models import (
    ANY_ACTIVE,
    AdaptationDef,
    ProtocolDef,
    ResolvedProtocol,
    SessionRange,
    StateDef,
    TransitionDef,
)

if TYPE_CHECKING:
    from iptflow.protocol.variants import VariantDef


def _merge_named(
    target: dict[str, Any], items: dict[str, Any], owner: str, owners: dict[str, str], kind: str
) -> None:
    for name, item in items.items():
        if name in target and target[name] != item:
            raise ProtocolConflict(
                f"{owner} and {owners.get(name, 'the base protocol')} define the {kind} "
                f"{name!r} differently"
            )
        target[name] = item
        owners.setdefault(name, owner)


def _check_incompatible(adaptations: list[AdaptationDef]) -> None:
    ids = {a.id for a in adaptations}
    for a in adaptations:
        for other in a.incompatible_with:
            if other in ids:
                raise ProtocolConflict(
                    f"adaptations {a.id} and {other} cannot be combined "
                    f"({a.id} declares it incompatible with {other})"
                )


def _session_range(
    base: SessionRange, adaptations: list[AdaptationDef]
) -> SessionRange:
    ranged = [a for a in adaptations if a.session_range is not None]
    if not ranged:
        return base
    lo, hi = ranged[0].session_range.min, ranged[0].session_range.max  # type: ignore[union-attr]
    for i, a in enumerate(ranged):
        rng = a.session_range
        assert rng is not None
        new_lo, new_hi = max(lo, rng.min), min(hi, rng.max)
        if new_lo > new_hi:
            other = next(
                b for b in ranged[:i]
                if b.session_range is not None
                and (b.session_range.max < rng.min or rng.max < b.session_range.min)
            ) if any(
                b.session_range is not None
                and (b.session_range.max < rng.min or rng.max < b.session_range.min)
                for b in ranged[:i]
            ) else ranged[0]
            orng = other.session_range
            assert orng is not None
            raise ProtocolConflict(
                f"adaptations {other.id} and {a.id} have session ranges that do not overlap "
                f"({orng.min}-{orng.max} and {rng.min}-{rng.max})"
            )
        lo, hi = new_lo, new_hi
    return SessionRange(min=lo, max=hi)


def _single_setting(adaptations: list[AdaptationDef], name: str, default: Any) -> Any:
    setters = [(a.id, getattr(a, name)) for a in adaptations if getattr(a, name) is not None]
    for (first, v1), (second, v2) in zip(setters, setters[1:], strict=False):
        if v1 != v2:
            raise ProtocolConflict(
                f"adaptations {first} and {second} set {name} differently ({v1} and {v2})"
            )
    return setters[0][1] if setters else default


def _outcome_order(base: ProtocolDef, adaptations: list[AdaptationDef]) -> list[str]:
    """The outcome order: the enabled adaptations' primary instruments (adaptations sorted by
    id, each in its own order), then the base's order. A base without an order keeps the 1.0.0
    rule (the first primary measure is the baseline) and so gets none."""
    if not base.outcome_order:
        return []
    order: list[str] = []
    for a in adaptations:
        order.extend(i for i in a.primary_instruments if i not in order)
    order.extend(i for i in base.outcome_order if i not in order)
    return order


def _check_supported(base: ProtocolDef, adaptations: list[AdaptationDef]) -> None:
    for a in adaptations:
        if not a.supports(base.version):
            raise ProtocolConflict(
                f"adaptation {a.id} does not apply to {base.id} {base.version} "
                f"(it applies to: {', '.join(a.base_versions)})"
            )


def _indications(base: ProtocolDef, adaptations: list[AdaptationDef]) -> list[str]:
    """The adaptations' indications (union, in order), else the base's."""
    indications: list[str] = []
    for a in adaptations:
        for ind in a.indications or []:
            if ind not in indications:
                indications.append(ind)
    return indications or list(base.indications)


def _added(base_list: list[str], adaptations: list[AdaptationDef], attr: str) -> list[str]:
    """The base's list, then what each adaptation adds to it (no duplicates)."""
    out = list(base_list)
    for a in adaptations:
        out.extend(x for x in getattr(a, attr) if x not in out)
    return out


def _states(base: ProtocolDef, adaptations: list[AdaptationDef]) -> list[StateDef]:
    """The base's states, then each adaptation's (marked ``added_by``); a name may not repeat."""
    states: list[StateDef] = list(base.states)
    names = {s.name: "the base protocol" for s in states}
    for a in adaptations:
        for s in a.states:
            if s.name in names:
                raise ProtocolConflict(f"{a.id} adds state {s.name!r}, already added by {names[s.name]}")
            names[s.name] = a.id
            states.append(s.model_copy(update={"added_by": a.id}))
    return states


def _exploded(transitions: list[TransitionDef], active: list[str]) -> list[TransitionDef]:
    """One transition per source state, with "*" expanded to every active state."""
    exploded: list[TransitionDef] = []
    for t in transitions:
        sources = active if t.source == [ANY_ACTIVE] else t.source
        for src in sources:
            exploded.append(t.model_copy(update={"source": [src], "requires": list(t.requires)}))
    return exploded


def _add_extra_requires(exploded: list[TransitionDef], adaptations: list[AdaptationDef],
                        active: list[str]) -> None:
    """Add each adaptation's ``extra_requires`` to the transitions they name (in place)."""
    for a in adaptations:
        for extra in a.extra_requires:
            sources = active if extra.source == [ANY_ACTIVE] else extra.source
            hit = False
            for i, t in enumerate(exploded):
                if t.event == extra.event and t.source[0] in sources:
                    reqs = list(t.requires)
                    reqs.extend(r for r in extra.requires if r not in reqs)
                    exploded[i] = t.model_copy(update={"requires": reqs})
                    hit = True
            if not hit:
                raise ProtocolConflict(
                    f"{a.id} adds requirements to {extra.event} from {', '.join(extra.source)}, "
                    "which the protocol does not allow"
                )


def _added_parts(base: ProtocolDef, adaptations: list[AdaptationDef]) -> dict[str, Any]:
    """Instruments, requirements, reviews (merged by name), deviations, transitions and
    opening requirements: the base's and what each adaptation adds."""
    instruments: dict[str, Any] = dict(base.instruments)
    requirements: dict[str, Any] = dict(base.requirements)
    reviews: dict[str, Any] = dict(base.reviews)
    owners: dict[str, dict[str, str]] = {"instrument": {}, "requirement": {}, "review": {}}
    deviations = list(base.deviations)
    transitions: list[TransitionDef] = list(base.transitions)
    open_requires = list(base.open_requires)
    for a in adaptations:
        _merge_named(instruments, a.instruments, a.id, owners["instrument"], "instrument")
        _merge_named(requirements, a.requirements, a.id, owners["requirement"], "requirement")
        _merge_named(reviews, a.reviews, a.id, owners["review"], "review")
        deviations.extend(d for d in a.deviations if d not in deviations)
        transitions.extend(t.model_copy(update={"added_by": a.id}) for t in a.transitions)
        open_requires.extend(r for r in a.open_requires if r not in open_requires)
    return {"instruments": instruments, "requirements": requirements, "reviews": reviews,
            "deviations": deviations, "transitions": transitions, "open_requires": open_requires}


def compose(
    base: ProtocolDef,
    adaptations: list[AdaptationDef],
    variant: VariantDef | None = None,
) -> ResolvedProtocol:
    """The resolved protocol of ``base`` with ``adaptations`` and ``variant`` (see module doc)."""
    adaptations = sorted(adaptations, key=lambda a: a.id)
    _check_supported(base, adaptations)
    _check_incompatible(adaptations)

    if variant is not None and variant.session_range is not None:
        session_range = variant.session_range
    else:
        session_range = _session_range(base.session_range, adaptations)
    if variant is not None and variant.review_session is not None:
        review_session = variant.review_session
    else:
        review_session = _single_setting(adaptations, "review_session", base.review_session)

    states = _states(base, adaptations)
    active = [s.name for s in states if not s.final]
    parts = _added_parts(base, adaptations)
    exploded = _exploded(parts["transitions"], active)
    _add_extra_requires(exploded, adaptations, active)

    resolved_data: dict[str, Any] = {
        **base.model_dump(),
        "indications": _indications(base, adaptations),
        "session_range": session_range,
        "review_session": review_session,
        "states": states,
        "transitions": exploded,
        "requirements": parts["requirements"],
        "open_requires": parts["open_requires"],
        "primary_instruments": _added(base.primary_instruments, adaptations, "primary_instruments"),
        "instruments": parts["instruments"],
        "problem_areas": _added(base.problem_areas, adaptations, "problem_areas"),
        "formats": _added(base.formats, adaptations, "formats"),
        "reviews": parts["reviews"],
        "deviations": parts["deviations"],
        "task_events": _added(base.task_events, adaptations, "task_events"),
        "outcome_order": _outcome_order(base, adaptations),
        "outcome_measure_also": _added(base.outcome_measure_also, adaptations, "outcome_measure_also"),
        "base": f"{base.id}@{base.version}",
        "adaptations": [a.id for a in adaptations],
    }
    if variant is not None:
        resolved_data = variant.apply(resolved_data)
    return ResolvedProtocol.model_validate(resolved_data)
