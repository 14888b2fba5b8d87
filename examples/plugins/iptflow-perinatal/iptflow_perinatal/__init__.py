"""IPT for perinatal depression: an iptflow plugin (entry point ``perinatal``).

It registers three things:

* the adaptation (``perinatal.toml``): the EPDS as a primary instrument whose item 10 opens
  the risk review, a new event, and a requirement added to ``treatment_started``;
* the event ``perinatal_status_recorded`` (a pydantic model and its effect);
* the guard ``perinatal_period`` that the requirement names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, model_validator

import iptflow
from iptflow.engine.events import Event, EventType

DATA = Path(__file__).with_name("perinatal.toml")
PREGNANCY_WEEKS = 42


class PerinatalStatusRecorded(Event):
    """Pregnant (weeks of pregnancy) or postpartum (weeks since birth)."""

    type: Literal["perinatal_status_recorded"]
    stage: Literal["pregnant", "postpartum"]
    weeks: Annotated[StrictInt, Field(ge=0, le=104)]

    @model_validator(mode="after")
    def _weeks(self) -> PerinatalStatusRecorded:
        if self.stage == "pregnant" and self.weeks > PREGNANCY_WEEKS:
            raise ValueError(f"a pregnancy lasts at most {PREGNANCY_WEEKS} weeks")
        return self


def record_status(course: iptflow.Course, event: PerinatalStatusRecorded) -> None:
    course.facts.records["perinatal"] = {"stage": event.stage, "weeks": event.weeks}


def perinatal_period(course: iptflow.Course, event: Any, max_weeks_postpartum: int) -> str | None:
    """The patient is pregnant, or gave birth at most ``max_weeks_postpartum`` weeks ago."""
    status = course.facts.records.get("perinatal")
    if status is None:
        return "the perinatal status (pregnant or postpartum) has not been recorded"
    if status["stage"] == "postpartum" and status["weeks"] > max_weeks_postpartum:
        return (
            f"the patient gave birth {status['weeks']} weeks ago; this adaptation is for up to "
            f"{max_weeks_postpartum} weeks after birth"
        )
    return None


@iptflow.hookimpl
def register_adaptations(register: Callable[[iptflow.AdaptationDef], None]) -> None:
    register(iptflow.load_adaptation(DATA))


@iptflow.hookimpl
def register_events(register: Callable[[EventType], None]) -> None:
    register(EventType("perinatal_status_recorded", PerinatalStatusRecorded, effect=record_status,
                       description="pregnant or postpartum, in weeks"))


@iptflow.hookimpl
def register_guards(register: Callable[[str, Callable[..., str | None]], None]) -> None:
    register("perinatal_period", perinatal_period)
