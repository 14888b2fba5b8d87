"""Protocol, adaptation and variant models, and the resolved protocol with its fingerprint.

Everything here is data: a protocol names guards and deviation checks, it never holds code.
Files are validated with ``extra="forbid"`` so a misspelt key is an error, not a silent no-op,
and strictly: ``review_session = true`` or ``max = "8"`` is an error, not 1 or 8 (an integer
is accepted where a number is expected). Ids become parts of file names (``iptflow generate``
names its course files after the protocol and its adaptations), so they are held to a safe
character set (:data:`SAFE_ID`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from iptflow.protocol.instruments import HidesNewDefaults, Instrument

ANY_ACTIVE = "*"
SAFE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""What a protocol, adaptation or variant id may be: lower-case letters, digits, ``.``, ``_``
and ``-``, starting with a letter or digit, at most 64 characters."""
MAX_SESSIONS = 100
"""The most sessions a session range (and the review session) may name."""


def _safe_id(value: str) -> str:
    if SAFE_ID.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a valid id: use lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64 characters (an id becomes part of "
            "file names)"
        )
    return value


SafeId = Annotated[
    str, AfterValidator(_safe_id), Field(json_schema_extra={"pattern": f"^{SAFE_ID.pattern}$"})
]
"""An id that may become part of a file name (see :data:`SAFE_ID`)."""
SessionCount = Annotated[int, Field(ge=1, le=MAX_SESSIONS)]
Indications = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
"""The diagnoses a protocol treats: at least one, none of them empty. A course's
``diagnosis_confirmed`` must name one of them, so a protocol without any could open no course."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class StateDef(_Strict):
    name: str
    phase: str | None = Field(None, description="the phase this state belongs to (diagrams)")
    final: bool = False
    description: str = ""
    added_by: str | None = Field(None, description="set by composition: the adaptation that added it")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StateList = Annotated[list[str], BeforeValidator(_as_list)]


class TransitionDef(_Strict):
    """An event allowed in some states. Without ``dest`` the course stays where it is."""

    event: str
    source: StateList = Field(description=f"states; {ANY_ACTIVE!r} means every non-final state")
    dest: str | None = None
    requires: list[str] = Field(default_factory=list, description="names of requirements")
    when: dict[str, str] = Field(
        default_factory=dict,
        description="course attributes that route to this transition (e.g. {format = 'group'});"
        " routed transitions are tried before the unconditional one",
    )
    description: str = ""
    added_by: str | None = None


class RequirementDef(_Strict):
    """A named, parameterised guard. ``guard`` is looked up in the guard registry."""

    guard: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = Field("", description="what is required, in a clinician's words")
    message: str | None = Field(
        None, description="shown when the requirement fails, instead of the guard's own message"
    )


class DeviationDef(_Strict):
    code: str
    check: str = Field(description="name of a registered deviation check")
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class ReviewDef(_Strict):
    title: str
    opened_by: list[str] = Field(default_factory=list, description="events that open it")
    closed_by: list[str] = Field(default_factory=list, description="events that close it")


class SessionRange(_Strict):
    """The number of acute sessions a treatment contract may plan: ``min`` to ``max``."""

    min: SessionCount
    max: SessionCount

    @model_validator(mode="after")
    def _not_empty(self) -> SessionRange:
        if self.min > self.max:
            raise ValueError(f"the session range {self.min}-{self.max} is empty (min above max): "
                             "no treatment contract could be agreed")
        return self


class ExtraRequires(_Strict):
    """Requirements an adaptation adds to transitions that already exist."""

    event: str
    source: StateList
    requires: list[str]


class AgendaDef(_Strict):
    """When sessions and measures fall due (``[agenda]``; docs/worklist.md). Only the agenda
    reads it: it changes no rule of a course. A protocol without the table has these
    defaults, and a table holding exactly the defaults fingerprints as if it were absent."""

    session_every_days: float = Field(
        7, gt=0, description="an acute session is due this many days after the previous one"
    )
    outcome_every_days: float = Field(
        28, gt=0,
        description="the outcome instrument is due this many days after its latest measure, in "
        "every state that holds sessions",
    )
    maintenance_frequency_days: dict[str, float] = Field(
        default_factory=lambda: {"weekly": 7, "biweekly": 14, "monthly": 28},
        description="days between maintenance sessions, by maintenance_started.frequency",
    )


AGENDA_DEFAULTS: dict[str, Any] = AgendaDef().model_dump(mode="json")


class ProtocolDef(HidesNewDefaults, _Strict):
    """A base protocol file (``protocols/ID/VERSION.toml``).

    Fields added after protocol 1.0.0 (``event_revisions``, ``outcome_order``,
    ``outcome_measure_also``, ``agenda``) are left out of the canonical JSON while they hold
    their defaults, so a protocol stored before they existed keeps its fingerprint.
    """

    _new_defaults = {
        "event_revisions": {},
        "outcome_order": [],
        "outcome_measure_also": [],
        "agenda": AGENDA_DEFAULTS,
    }

    id: SafeId
    version: str
    title: str
    description: str = ""
    indications: Indications = Field(description="the diagnoses it treats (at least one)")
    initial_state: str
    states: list[StateDef]
    transitions: list[TransitionDef]
    requirements: dict[str, RequirementDef] = Field(default_factory=dict)
    open_requires: list[str] = Field(
        default_factory=list, description="requirements checked on course_opened"
    )
    session_range: SessionRange
    acute_states: list[str] = Field(description="states whose sessions count against the contract")
    review_session: SessionCount = Field(description="the session at which response is reviewed")
    primary_instruments: list[str]
    instruments: dict[str, Instrument]
    problem_areas: list[str]
    max_problem_areas: int = Field(2, ge=1)
    formats: list[str] = Field(default_factory=lambda: ["individual"])
    reviews: dict[str, ReviewDef] = Field(default_factory=dict)
    deviations: list[DeviationDef] = Field(default_factory=list)
    task_events: list[str] = Field(default_factory=list, description="events that complete a task")
    event_revisions: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="event types whose model is a later revision (e.g. measure_recorded = 2): "
        "the fields a course may send; events not listed use revision 1",
    )
    outcome_order: list[str] = Field(
        default_factory=list,
        description="the outcome instrument is the first instrument in this order (after the "
        "primary instruments of the enabled adaptations) with a measure in the initial state; "
        "empty: the first primary measure there is the baseline",
    )
    outcome_measure_also: list[str] = Field(
        default_factory=list,
        description="instruments whose measures also meet a requirement for a measure of the "
        "outcome instrument",
    )
    agenda: AgendaDef = Field(
        default_factory=AgendaDef,
        description="when sessions and measures fall due (the worklist); absent: the defaults",
    )


class AdaptationDef(_Strict):
    """What an adaptation changes. Registered by a plugin through ``register_adaptations``."""

    id: SafeId
    version: str | None = Field(None, description="the adaptation's own version")
    base_versions: list[str] = Field(
        default_factory=list,
        description="versions of the base protocol this adaptation applies to (empty: all)",
    )
    title: str
    description: str = ""
    indications: Indications | None = Field(None, description="replace the base indications")
    session_range: SessionRange | None = None
    review_session: SessionCount | None = None
    incompatible_with: list[str] = Field(default_factory=list)
    formats: list[str] = Field(default_factory=list, description="course formats it offers")
    primary_instruments: list[str] = Field(default_factory=list)
    instruments: dict[str, Instrument] = Field(default_factory=dict)
    problem_areas: list[str] = Field(default_factory=list)
    states: list[StateDef] = Field(default_factory=list)
    transitions: list[TransitionDef] = Field(default_factory=list)
    requirements: dict[str, RequirementDef] = Field(default_factory=dict)
    extra_requires: list[ExtraRequires] = Field(default_factory=list)
    open_requires: list[str] = Field(default_factory=list)
    reviews: dict[str, ReviewDef] = Field(default_factory=dict)
    deviations: list[DeviationDef] = Field(default_factory=list)
    task_events: list[str] = Field(default_factory=list)
    outcome_measure_also: list[str] = Field(
        default_factory=list,
        description="instruments whose measures also meet the outcome-measure requirements",
    )

    def supports(self, base_version: str) -> bool:
        """Whether this adaptation applies to that version of the base protocol."""
        return not self.base_versions or base_version in self.base_versions


class ResolvedProtocol(ProtocolDef):
    """A protocol with its adaptations (and variant settings) applied: what a course runs on."""

    id: str  # validated in the files it was composed from; a stored protocol keeps its own
    base: str = Field(description="id@version of the base protocol")
    adaptations: list[str] = Field(default_factory=list)
    variant: str | None = Field(None, description="id@version of the variant, if any")

    _fingerprint: str | None = PrivateAttr(None)

    def canonical_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> ResolvedProtocol:
        """A copy; its fingerprint is computed afresh (a changed copy must not keep the old one)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._fingerprint = None
        return copy

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
            self._fingerprint = f"sha256:{digest}"
        return self._fingerprint

    def state_def(self, name: str) -> StateDef:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    @property
    def final_states(self) -> list[str]:
        return [s.name for s in self.states if s.final]

    @property
    def event_types(self) -> list[str]:
        """Every event type this protocol knows, ``course_opened`` first."""
        seen = {"course_opened": None}
        for t in self.transitions:
            seen.setdefault(t.event, None)
        return list(seen)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "adaptations": list(self.adaptations),
            "fingerprint": self.fingerprint,
        }
