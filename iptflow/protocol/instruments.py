"""Instrument definitions (data), measure validation and outcome rules.

Instruments are declared in protocol and adaptation files (``[instruments.ID]``);
this module holds their model and the arithmetic of SPEC §2 "Outcome" and §3.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

Number = int | float
# strict: `items = true` or `max = "27"` is an error, not 1 or 27 (an integer is a number);
# infinity and NaN are not scores
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class HidesNewDefaults(BaseModel):
    """Leaves fields added after protocol 1.0.0 out of dumps while they hold their defaults.

    A resolved protocol is stored as canonical JSON under its fingerprint; a protocol stored
    before a field existed must dump (and so fingerprint) exactly as it did then.
    ``_new_defaults`` maps each such field to its default as dumped.
    """

    _new_defaults: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _hide_new_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name, default in self._new_defaults.items():
                if name in data and data[name] == default:
                    del data[name]
        return data


class ItemRange(BaseModel):
    """A range that applies to some items (1-based positions)."""

    model_config = _STRICT
    items: list[Annotated[int, Field(ge=1)]] = Field(
        description="1-based item positions this range applies to"
    )
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> ItemRange:
        if self.min > self.max:
            raise ValueError(f"the item range {self.min}-{self.max} is empty (min above max)")
        return self


class ReviewTrigger(HidesNewDefaults):
    """A measure that opens a review: an item above a value, or a score at least a value."""

    model_config = _STRICT
    _new_defaults = {"unknown_item_score_above": None}
    review: str
    item: int | None = Field(None, ge=1, description="1-based item position")
    above: float | None = Field(None, description="the item (or score) must be above this")
    score_at_least: float | None = None
    unknown_item_score_above: float | None = Field(
        None,
        description="an item trigger also fires when the item is unknown (no items, no item9) "
        "and the score is above this",
    )

    @model_validator(mode="after")
    def _one_condition(self) -> ReviewTrigger:
        if (self.item is None) == (self.score_at_least is None):
            raise ValueError("a review trigger needs exactly one of 'item' or 'score_at_least'")
        if self.item is not None and self.above is None:
            raise ValueError("an item trigger needs 'above'")
        return self

    def fires(self, score: Number, items: list[int] | None, item9: int | None = None) -> bool:
        if self.item is not None:
            value: Number | None = None
            if items is not None and self.item <= len(items):
                value = items[self.item - 1]
            elif self.item == 9 and item9 is not None:
                value = item9
            if value is None:
                limit = self.unknown_item_score_above
                return items is None and limit is not None and score > limit
            return value > (self.above or 0)
        return score >= (self.score_at_least or 0)


class AlsoAtMost(BaseModel):
    """A condition on another instrument's latest measure (e.g. compensatory episodes at 0)."""

    model_config = _STRICT
    instrument: str
    latest_at_most: float
    when_diagnosis: str | None = Field(
        None, description="applies only when the latest confirmed diagnosis is this one"
    )

    def holds(self, diagnosis: str | None, latest_of: Callable[[str], Number | None]) -> bool:
        if self.when_diagnosis is not None and diagnosis != self.when_diagnosis:
            return True
        other = latest_of(self.instrument)
        return other is not None and other <= self.latest_at_most


class OutcomeRule(HidesNewDefaults):
    """One outcome status; every condition given must hold. Rules are tried in order.

    Percent conditions compare the reduction from baseline, ``100 * (baseline - latest) /
    baseline``; with a baseline of 0 they never hold.
    """

    model_config = _STRICT
    _new_defaults = {"also": None}
    status: str
    latest_below: float | None = None
    latest_at_most: float | None = None
    reduction_pct_at_least: float | None = None
    reduction_pct_above: float | None = None
    drop_at_least: float | None = Field(None, description="baseline - latest, in points")
    also: AlsoAtMost | None = Field(
        None, description="a condition on another instrument's latest measure (see holds_also)"
    )

    def holds(self, baseline: Number, latest: Number) -> bool:
        if self.latest_below is not None and not latest < self.latest_below:
            return False
        if self.latest_at_most is not None and not latest <= self.latest_at_most:
            return False
        if self.drop_at_least is not None and not (
            Fraction(baseline) - Fraction(latest) >= _exact(self.drop_at_least)
        ):
            return False
        for threshold, strict in (
            (self.reduction_pct_at_least, False),
            (self.reduction_pct_above, True),
        ):
            if threshold is None:
                continue
            if baseline == 0:
                return False
            reduction = reduction_pct(baseline, latest)
            exact = _exact(threshold)
            if reduction < exact or (strict and reduction == exact):
                return False
        return True


_EXACT: dict[float, Fraction] = {}  # a rule's threshold as a Fraction, made once per value


def _exact(value: float) -> Fraction:
    exact = _EXACT.get(value)
    if exact is None:
        exact = _EXACT[value] = Fraction(value)
    return exact


class Instrument(HidesNewDefaults):
    """A rating scale: its range, its items, what it opens, and its outcome rules."""

    model_config = _STRICT
    _new_defaults = {"item9": False, "recurrence_at_least": None}
    title: str
    min: float = 0
    max: float | None = Field(None, description="upper bound; omitted means unbounded")
    integer: bool = Field(True, description="scores must be JSON integers")
    items: int = Field(0, ge=0, description="number of items; 0 means the instrument has no items")
    item_min: int = 0
    item_max: int = 0
    item_ranges: list[ItemRange] = Field(
        default_factory=list, description="ranges for particular items, overriding item_min/max"
    )
    opens_reviews: list[ReviewTrigger] = Field(default_factory=list)
    outcome: list[OutcomeRule] = Field(default_factory=list)
    otherwise: str = Field("non_response", description="status when no outcome rule holds")
    loinc: str | None = Field(None, description="LOINC code of the total score, if any")
    item9: bool = Field(
        False, description="a measure may carry item9 (item 9 alone, the suicide item)"
    )
    recurrence_at_least: float | None = Field(
        None, description="a score at or above this in maintenance is a recurrence"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Instrument:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"the score range {_fmt(self.min)}-{_fmt(self.max)} is empty "
                             "(min above max)")
        if self.item_min > self.item_max:
            raise ValueError(f"the item range {self.item_min}-{self.item_max} is empty "
                             "(item_min above item_max)")
        return self

    def item_bounds(self, position: int) -> tuple[int, int]:
        for rng in self.item_ranges:
            if position in rng.items:
                return rng.min, rng.max
        return self.item_min, self.item_max

    def check(self, score: Number, items: list[int] | None) -> str | None:
        """Return what is wrong with a measure, in words, or None when it is valid."""
        if self.integer and not isinstance(score, int):
            return f"score must be an integer, got {score!r}"
        if score < self.min or (self.max is not None and score > self.max):
            if self.max is None:
                return f"score {score!r} is below the minimum {_fmt(self.min)}"
            return f"score {score!r} is outside {_fmt(self.min)}-{_fmt(self.max)}"
        if items is None:
            return None
        if self.items == 0:
            return "this instrument has no items: 'items' is not allowed"
        if len(items) != self.items:
            return f"expected {self.items} items, got {len(items)}"
        ranges = self.item_ranges
        lo, hi = self.item_min, self.item_max
        for pos, value in enumerate(items, start=1):
            if ranges:
                lo, hi = self.item_bounds(pos)
            if not lo <= value <= hi:
                return f"item {pos} is {value}, outside {lo}-{hi}"
        if sum(items) != score:
            return f"items sum to {sum(items)}, not to the score {score!r}"
        return None

    def check_item9(self, score: Number, items: list[int] | None, item9: int) -> str | None:
        """What is wrong with a measure's ``item9``, or None."""
        if not self.item9:
            return "item9 is only recorded with the PHQ-9 or PHQ-A (item 9 is their suicide item)"
        if item9 > score:
            return f"item9 is {item9}, more than the score {score!r}"
        if items is not None and len(items) >= 9 and items[8] != item9:
            return f"item9 is {item9} but the 9th item is {items[8]}"
        return None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _as_written(value: Number) -> str:
    """A score as the event wrote it: floats by their shortest repr (1.1, not 1.1000000000000000888)."""
    return str(value)


@lru_cache(maxsize=4096)  # an outcome asks each of its rules; 1 and 1.0 give equal Fractions
def reduction_pct(baseline: Number, latest: Number) -> Fraction:
    """Exact percentage reduction from baseline (positive = improvement)."""
    if type(baseline) is int and type(latest) is int:  # the common case: one exact Fraction
        return Fraction(100 * (baseline - latest), baseline)
    base, last = Fraction(_as_written(baseline)), Fraction(_as_written(latest))
    return Fraction(100) * (base - last) / base


def change_pct(baseline: Number, latest: Number) -> float | None:
    """``100 * (latest - baseline) / baseline`` to 1 decimal, halves away from zero."""
    if baseline == 0:
        return None
    base, last = Decimal(_as_written(baseline)), Decimal(_as_written(latest))
    exact = Decimal(100) * (last - base) / base
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


OutcomeStatus = Literal["remission", "response", "partial_response", "non_response"]


def outcome_status(
    instrument: Instrument,
    baseline: Number,
    latest: Number,
    diagnosis: str | None = None,
    latest_of: Callable[[str], Number | None] | None = None,
) -> str:
    """The first outcome rule that holds. ``latest_of(instrument)`` gives another instrument's
    latest score, for rules with ``also`` (without it, such a rule does not hold)."""
    for rule in instrument.outcome:
        if not rule.holds(baseline, latest):
            continue
        if rule.also is not None and (
            latest_of is None or not rule.also.holds(diagnosis, latest_of)
        ):
            continue
        return rule.status
    return instrument.otherwise
