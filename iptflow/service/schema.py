"""Pieces of the OpenAPI document the handlers share: request bodies (read with the library's
strict decoder, so described here rather than by a model), headers, and the problem responses.
:func:`finish_openapi` gives every 4xx/5xx response the ``application/problem+json`` media type
with the :class:`~iptflow.service.problems.Problem` schema."""

from __future__ import annotations

from typing import Any

from fastapi import Header

from iptflow.service.problems import TITLES, Problem

__all__ = [
    "COURSE_OPENED_BODY",
    "ETAG_HEADER",
    "EVENT_BODY",
    "FHIR_RESPONSE",
    "IDEMPOTENCY_KEY",
    "finish_openapi",
    "problems",
]

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_EVENT = {
    "type": "object",
    "description": "An event (docs/events.md): `type`, `at` (RFC 3339 with an offset) and the "
    "fields of its type; GET /protocols/{ref} lists each state's events. `actor` may be "
    "left out: the token's actor is recorded.",
    "required": ["type", "at"],
    "properties": {
        "type": {"type": "string", "example": "measure_recorded"},
        "at": {"type": "string", "example": "2025-01-06T10:00:00Z"},
        "actor": {"type": "string", "description": "Must be the token's actor."},
    },
    "additionalProperties": True,
}

EVENT_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT}}},
}

COURSE_OPENED_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        **_EVENT,
        "description": "The course_opened event: the course's pseudonymous id, its protocol "
        "(ID or ID@VERSION), adaptations, format and patient age.",
        "required": ["type", "at", "course_id", "protocol"],
        "properties": {
            **_EVENT["properties"],  # type: ignore[dict-item]
            "type": {"type": "string", "enum": ["course_opened"]},
            "course_id": {"type": "string", "example": "c-001"},
            "protocol": {"type": "string", "example": "ipt-depression"},
            "adaptations": {"type": "array", "items": {"type": "string"}},
            "format": {"type": "string", "enum": ["individual", "group"]},
            "patient": {"type": "object", "properties": {"age": {"type": "integer"}}},
        },
    }}}},
}

ETAG_HEADER = {"description": "The course's seq, quoted (\"3\"): send it as If-Match.",
               "schema": {"type": "string"}}

IDEMPOTENCY_KEY: Any = Header(
    None, alias="Idempotency-Key", max_length=200,
    description="A key of your choosing per event: a retry with the same key and event returns "
    "the original answer and stores nothing twice; the same key with another event is 422.",
)

FHIR_RESPONSE = {
    "description": "A FHIR R4 Bundle (type collection).",
    "content": {"application/fhir+json": {"schema": {"type": "object"}}},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these problem statuses (finished by :func:`finish_openapi`)."""
    return {status: {"model": Problem, "description": TITLES.get(status, "Error")}
            for status in statuses}


def finish_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response as ``application/problem+json`` (FastAPI's own 422 included), the
    400 of every operation with a body, the 500 and 503 every operation may give, and no trace
    of FastAPI's validation error models."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation:  # a body that is not JSON at all
                responses.setdefault("400", {"description": TITLES[400]})
            responses.setdefault("500", {"description": TITLES[500]})
            responses.setdefault("503", {"description": TITLES[503]})
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = {"application/problem+json": {"schema": _PROBLEM_REF}}
                    if status == "422":
                        response["description"] = TITLES[422]
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return spec
