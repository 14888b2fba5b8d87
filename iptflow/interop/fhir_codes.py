"""Codes, systems and JSON fragments of the FHIR export (plain data: no ``fhir.resources``).

Identifiers are ``urn:uuid`` values derived from the course id, the event's ``seq`` and the
resource's role (:func:`urn`), so the same course always gives the same bundle.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.protocol.models import ResolvedProtocol

LOINC = "http://loinc.org"
COURSE_SYSTEM = "urn:iptflow:course"
ACTOR_SYSTEM = "urn:iptflow:actor"
SESSION_SYSTEM = "urn:iptflow:session"
INSTRUMENT_SYSTEM = "urn:iptflow:instrument"
EVENT_SYSTEM = "urn:iptflow:event"
DIAGNOSIS_SYSTEM = "urn:iptflow:diagnosis"
STATE_SYSTEM = "urn:iptflow:state"
FINGERPRINT_SYSTEM = "urn:iptflow:fingerprint"
PROTOCOL_URL = "urn:iptflow:protocol:"

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:iptflow:fhir")
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"

# LOINC panels keyed by the LOINC code of the total score an instrument declares (``loinc``).
LOINC_PANELS: dict[str, dict[str, Any]] = {
    "44261-6": {
        "panel": ("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
        "total": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        "items": ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
                  "44253-3", "44260-8"),
    },
}

CAREPLAN_STATUS: dict[str, str] = {
    "assessment": "draft",
    "completed": "completed",
}
"""CarePlan.status by course state. ``assessment`` is ``draft`` (no treatment agreed yet);
every other active state is ``active``; ``completed`` is ``completed``; every other final
state (``discontinued``, ``referred_out``, or one an adaptation adds) is ``revoked`` (ended
before completion). ``entered-in-error`` is never used: iptflow cannot know that a course
was recorded in error, and a course's events are never deleted."""


def careplan_status(course: Course) -> str:
    if course.state in CAREPLAN_STATUS:
        return CAREPLAN_STATUS[course.state]
    return "revoked" if course.is_closed else "active"


def plan_url(protocol: ResolvedProtocol) -> str:
    """The PlanDefinition's canonical URL: the protocol id and its adaptations, e.g.
    ``urn:iptflow:protocol:ipt-depression+bipolar`` (the fingerprint is its identifier)."""
    return PROTOCOL_URL + "+".join([protocol.id, *protocol.adaptations])


def urn(course_id: str, seq: int, role: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{course_id}|{seq}|{role}')}"


#: the largest offset from UTC a FHIR dateTime or instant may carry (-14:00 to +14:00)
FHIR_MAX_OFFSET = timedelta(hours=14)


def instant(at: datetime) -> str:
    """``at`` as a FHIR dateTime/instant. An offset beyond +/-14:00 (iptflow accepts up to
    +/-23:59) is written for the same instant at +14:00 or -14:00; the moments at the very
    ends of the calendar that cannot be written at that offset either (before
    0001-01-01T00:00+14:00, after 9999-12-31T23:59:59-14:00) are written as that first or
    last moment."""
    offset = at.utcoffset()
    if offset is not None and abs(offset) > FHIR_MAX_OFFSET:
        limit = FHIR_MAX_OFFSET if offset > timedelta(0) else -FHIR_MAX_OFFSET
        zone = timezone(limit)
        try:  # by the wall clock: astimezone would pass through UTC, outside the calendar
            at = (at.replace(tzinfo=None) + (limit - offset)).replace(tzinfo=zone)
        except OverflowError:
            at = (datetime.min if offset > timedelta(0) else datetime.max).replace(tzinfo=zone)
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


def actor_ref(actor: str) -> dict[str, Any]:
    return {"type": "Practitioner", "identifier": {"system": ACTOR_SYSTEM, "value": actor}, "display": actor}


def readable(name: str) -> str:
    return name.replace("_", " ")


def score_value(score: float) -> dict[str, Any]:
    if isinstance(score, int):
        return {"valueInteger": score}
    return {"valueQuantity": {"value": score, "unit": "{score}", "system": "http://unitsofmeasure.org",
                              "code": "{score}"}}
