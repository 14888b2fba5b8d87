"""The engine's event vocabulary: the :class:`Event` base model, :class:`EventType` and
``course_opened`` (the engine opens courses), with RFC 3339 time stamps (SPEC §1).

An :class:`EventType` bundles an event's model with two optional functions:

* ``check(course, event) -> str | None``: validation that needs the course's resolved
  protocol (a known instrument, a known problem area). A message means ``invalid_event``.
* ``effect(course, event) -> None``: how an *accepted* event changes the course's facts,
  beyond the bookkeeping every event gets (counts, tasks, reviews, state).

Every event type, the base protocol's included (:mod:`iptflow.builtins.events`), reaches the
engine through the ``register_events`` hook.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

if TYPE_CHECKING:
    from iptflow.engine.course import Course

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 date-time with ``Z`` or an offset; a naive time is invalid."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a date-time needs a time zone ('Z' or an offset like +01:00)")
        return value
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time string")
    if not _RFC3339.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with 'Z' or an offset "
            "(e.g. 2025-01-06T09:00:00Z)"
        )
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date-time: {exc}") from None


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]


class NullMeansAbsent(BaseModel):
    """SPEC §1: an optional field given as ``null`` counts as absent (its default applies); a
    required field given as ``null`` stays invalid, and so does an unknown one."""

    @model_validator(mode="before")
    @classmethod
    def _drop_optional_nulls(cls, data: Any) -> Any:
        if not isinstance(data, dict) or None not in data.values():
            return data
        fields = cls.model_fields
        return {
            k: v for k, v in data.items()
            if not (v is None and k in fields and not fields[k].is_required())
        }


class Event(NullMeansAbsent):
    """Fields every event has."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    type: str
    at: Timestamp
    actor: StrictStr | None = None


class Patient(NullMeansAbsent):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    age: Annotated[StrictInt, Field(ge=0, le=130)] | None = None


class CourseOpened(Event):
    type: Literal["course_opened"]
    course_id: NonEmptyStr
    protocol: NonEmptyStr
    adaptations: list[NonEmptyStr] = Field(default_factory=list)
    patient: Patient | None = None
    format: Literal["individual", "group"] = "individual"

    @model_validator(mode="after")
    def _distinct(self) -> CourseOpened:
        if len(set(self.adaptations)) != len(self.adaptations):
            raise ValueError("adaptations must be distinct")
        return self


CheckFn = Callable[["Course", Any], "str | None"]
EffectFn = Callable[["Course", Any], None]


@dataclass(frozen=True)
class EventType:
    """An event type: its pydantic model and what it does to a course."""

    name: str
    model: type[Event]
    check: CheckFn | None = None
    effect: EffectFn | None = None
    description: str = ""
    #: a later model of the same event (more fields); protocols choose it in event_revisions
    revision: int = 1
