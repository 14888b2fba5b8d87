"""Protocol, adaptation and variant models, and the resolved protocol with its fingerprint.

Everything here is data: a protocol names guards and deviation checks, it never holds code.
Files are validated with ``extra="forbid"`` so a misspelt key is an error, not a silent no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from iptflow.protocol.instruments import HidesNewDefaults, Instrument

ANY_ACTIVE = "*"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    min: int = Field(ge=1)
    max: int = Field(ge=1)


class ExtraRequires(_Strict):
    """Requirements an adaptation adds to transitions that already exist."""

    event: str
    source: StateList
    requires: list[str]


class ProtocolDef(HidesNewDefaults, _Strict):
    """A base protocol file (``protocols/ID/VERSION.toml``).

    Fields added after protocol 1.0.0 (``event_revisions``, ``outcome_order``,
    ``outcome_measure_also``) are left out of the canonical JSON while they hold their
    defaults, so a protocol stored before they existed keeps its fingerprint.
    """

    _new_defaults = {"event_revisions": {}, "outcome_order": [], "outcome_measure_also": []}

    id: str
    version: str
    title: str
    description: str = ""
    indications: list[str]
    initial_state: str
    states: list[StateDef]
    transitions: list[TransitionDef]
    requirements: dict[str, RequirementDef] = Field(default_factory=dict)
    open_requires: list[str] = Field(
        default_factory=list, description="requirements checked on course_opened"
    )
    session_range: SessionRange
    acute_states: list[str] = Field(description="states whose sessions count against the contract")
    review_session: int = Field(ge=1, description="the session at which response is reviewed")
    primary_instruments: list[str]
    instruments: dict[str, Instrument]
    problem_areas: list[str]
    max_problem_areas: int = Field(2, ge=1)
    formats: list[str] = Field(default_factory=lambda: ["individual"])
    reviews: dict[str, ReviewDef] = Field(default_factory=dict)
    deviations: list[DeviationDef] = Field(default_factory=list)
    task_events: list[str] = Field(default_factory=list, description="events that complete a task")
    event_revisions: dict[str, int] = Field(
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


class AdaptationDef(_Strict):
    """What an adaptation changes. Registered by a plugin through ``register_adaptations``."""

    id: str
    version: str | None = Field(None, description="the adaptation's own version")
    base_versions: list[str] = Field(
        default_factory=list,
        description="versions of the base protocol this adaptation applies to (empty: all)",
    )
    title: str
    description: str = ""
    indications: list[str] | None = Field(None, description="replace the base indications")
    session_range: SessionRange | None = None
    review_session: int | None = Field(None, ge=1)
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
