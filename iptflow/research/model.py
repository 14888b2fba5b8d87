"""The trajectory model of cohort simulation: parameters, defaults and their TOML file.

Every parameter has a built-in default (the values in ``examples/simulation/default-model.toml``);
a model file overrides any of them. Files are validated with ``extra="forbid"``, so a misspelt
key is an error naming the file, line and field. See docs/research.md for what each
parameter does to a simulated course.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iptflow.protocol.files import load_model


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Probability = Field(ge=0.0, le=1.0)


class Cohort(_Section):
    enrolment_days: int = Field(365, ge=1, description="courses open on a day drawn from this window")
    age_min: int = Field(18, ge=0, le=130, description="patient ages when the protocol sets no range")
    age_max: int = Field(70, ge=0, le=130)
    group_share: float = Field(
        0.3, ge=0.0, le=1.0, description="share of courses in group format, where one is offered"
    )

    @model_validator(mode="after")
    def _ages(self) -> Cohort:
        if self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}")
        return self


class Symptoms(_Section):
    baseline_mean: float = Field(0.62, ge=0.0, le=1.0,
                                 description="baseline severity, as a fraction of the instrument's range")
    baseline_sd: float = Field(0.12, ge=0.0)
    weekly_change_mean: float = Field(-0.035, description="change of severity per week of treatment")
    weekly_change_sd: float = Field(0.015, ge=0.0, description="between patients")
    non_responder_share: float = Field(0.25, ge=0.0, le=1.0,
                                       description="patients whose severity does not change on average")
    noise_sd: float = Field(0.05, ge=0.0, description="week-to-week noise of a measure")
    measure_every_sessions: int = Field(2, ge=1, description="a primary measure every N sessions")
    other_instruments_level: float = Field(0.1, ge=0.0, le=1.0,
                                           description="non-primary measures, as a fraction of their range")
    instrument_preference: list[str] = Field(
        default_factory=lambda: ["phq9a", "pcl5", "binge_episodes", "phq9"],
        description="the primary instrument used, first one the protocol has (else its first primary)",
    )


class Attendance(_Section):
    attend_probability: float = Field(0.88, ge=0.0, le=1.0, description="each planned session")
    session_interval_days: float = Field(7.0, gt=0)
    jitter_days: float = Field(1.0, ge=0.0, description="sessions move by up to this many days")
    reschedule_days: float = Field(4.0, gt=0, description="a missed session is offered again this soon")
    pre_treatment_step_days: float = Field(
        2.0, ge=0.0, description="days between the steps recorded before sessions start (assessment)"
    )
    tasks_per_session: int = Field(2, ge=1, description="protocol tasks a clinician records per session")


class Dropout(_Section):
    weekly_hazard: float = Field(0.015, ge=0.0, le=1.0, description="discontinuation, per planned session")


class Risk(_Section):
    weekly_probability: float = Field(0.02, ge=0.0, le=1.0, description="a risk flag, per planned session")
    high_share: float = Field(0.15, ge=0.0, le=1.0, description="share of flags assessed high")
    refer_if_high: float = Field(0.5, ge=0.0, le=1.0, description="referral after a high assessment")


class Referral(_Section):
    non_responder_probability: float = Field(
        0.3, ge=0.0, le=1.0,
        description="referral at the review session when improvement is below 25%",
    )


class Contract(_Section):
    planned_sessions: str = Field(
        "uniform", pattern="^(uniform|min|max)$",
        description="planned sessions: uniform over the session range, or its min or max",
    )


class Maintenance(_Section):
    probability: float = Field(0.1, ge=0.0, le=1.0, description="maintenance after termination")
    planned_sessions: int = Field(4, ge=1)
    frequency: str = Field("monthly", pattern="^(weekly|biweekly|monthly)$")
    interval_days: float = Field(28.0, gt=0)


class TrajectoryModel(_Section):
    """Every parameter of the simulation, in sections."""

    cohort: Cohort = Cohort()
    symptoms: Symptoms = Symptoms()
    attendance: Attendance = Attendance()
    dropout: Dropout = Dropout()
    risk: Risk = Risk()
    referral: Referral = Referral()
    contract: Contract = Contract()
    maintenance: Maintenance = Maintenance()


def load_trajectory_model(path: Path | str | None) -> TrajectoryModel:
    """The built-in defaults, or a TOML file's values over them."""
    if path is None:
        return TrajectoryModel()
    return load_model(Path(path), TrajectoryModel)
