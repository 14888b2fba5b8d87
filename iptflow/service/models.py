"""The shapes of the service's answers, as pydantic models: FastAPI writes them into the
OpenAPI document (docs/openapi.json), which is all a client needs to know."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AllowedEvent",
    "CourseDetail",
    "CourseList",
    "CourseSummary",
    "CreatedToken",
    "EventAccepted",
    "EventList",
    "Health",
    "NewToken",
    "ProtocolDetail",
    "ProtocolList",
    "StoredEventOut",
    "TokenList",
    "TokenOut",
    "Unmet",
    "VerifyOut",
]


class Deviation(BaseModel):
    code: str
    message: str
    seq: int
    event_type: str
    at: str


class EventAccepted(BaseModel):
    """What an accepted event did (``Accepted`` in the library)."""

    course_id: str
    seq: int = Field(description="The event's place in the course's log; the course's new ETag.")
    type: str
    state: str
    previous_state: str | None
    deviations: list[Deviation]
    opened_reviews: list[str]
    closed_reviews: list[str]


class CourseSummary(BaseModel):
    """A course's stored row: protocol, position in its log and derived summary."""

    id: str
    protocol_id: str
    protocol_version: str
    adaptations: list[str]
    fingerprint: str
    format: str
    state: str
    last_seq: int
    last_hash: str
    created_at: str
    updated_at: str
    synthetic: bool
    sessions_held: int
    outcome_status: str | None
    open_reviews: list[str]
    deviations: int


class CourseList(BaseModel):
    courses: list[CourseSummary]
    next_cursor: str | None = Field(
        description="Pass as cursor= to get the next page; null on the last page.")


class Unmet(BaseModel):
    name: str = Field(description="The requirement (guard) that would fail now.")
    message: str


class AllowedEvent(BaseModel):
    type: str
    unmet_requirements: list[Unmet] = Field(
        description="Requirements that would fail now for the event carrying no data of its "
        "own; empty: it would be accepted (its own data is checked when it arrives).")


class CourseDetail(BaseModel):
    """A course as it is now: the library's ``Course.snapshot()`` and what may come next."""

    course_id: str
    protocol: dict[str, Any]
    state: str
    seq: int
    closed: bool
    facts: dict[str, Any]
    open_reviews: list[str]
    deviations: list[Deviation]
    outcome: dict[str, Any] | None
    allowed_events: list[AllowedEvent]


class StoredEventOut(BaseModel):
    course_id: str
    seq: int
    type: str
    at: str
    actor: str | None
    event: dict[str, Any] = Field(description="The event as it was given.")
    prev_hash: str
    hash: str
    idempotency_key: str | None
    recorded_at: str | None


class EventList(BaseModel):
    course_id: str
    events: list[StoredEventOut]


class ProtocolItem(BaseModel):
    id: str
    kind: str = Field(description="protocol or variant")
    version: str
    newest: bool
    title: str


class AdaptationItem(BaseModel):
    id: str
    version: str | None
    base_versions: list[str]
    title: str


class ProtocolList(BaseModel):
    protocols: list[ProtocolItem]
    adaptations: list[AdaptationItem]


class ProtocolDetail(BaseModel):
    id: str
    version: str
    adaptations: list[str]
    fingerprint: str
    diagram: dict[str, Any] = Field(description="States, phases and transitions with their "
                                    "requirements (iptflow show --format json).")
    mermaid: str = Field(description="The state diagram as Mermaid text; ?format=svg gives SVG.")


class Health(BaseModel):
    status: str


class VerifyProblem(BaseModel):
    kind: str
    message: str
    course_id: str | None
    seq: int | None


class VerifyOut(BaseModel):
    ok: bool
    courses: int
    events: int
    protocols: int
    problems: list[VerifyProblem]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(description="clinician, researcher, auditor or admin")
    actor: str = Field(min_length=1)
    label: str | None = None


class TokenOut(BaseModel):
    id: str
    role: str
    actor: str
    label: str | None
    created_at: str
    revoked_at: str | None


class CreatedToken(TokenOut):
    secret: str = Field(description="The bearer secret: shown this once, never stored.")


class TokenList(BaseModel):
    tokens: list[TokenOut]
