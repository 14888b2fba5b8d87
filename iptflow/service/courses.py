"""``/courses``: open a course, list courses, read one (with what may come next), record and
read its events, export it as FHIR (docs/service.md#resources).

Every handler reads the request on the event loop, then runs one function on a thread of the
store pool (:mod:`iptflow.service.pool`): authenticate, authorize, then the Store's own call,
so a denied request never reaches a write.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from iptflow.engine.access import Principal
from iptflow.engine.course import Course
from iptflow.engine.jsonio import strict_loads
from iptflow.engine.results import Accepted, Result
from iptflow.errors import MissingExtra, ProtocolError
from iptflow.interop.fhir import bundle_json
from iptflow.service.auth import Caller
from iptflow.service.models import CourseDetail, CourseList, EventAccepted, EventList
from iptflow.service.problems import ProblemError, rejection_problem
from iptflow.service.schema import (
    COURSE_OPENED_BODY,
    ETAG_HEADER,
    EVENT_BODY,
    FHIR_RESPONSE,
    IDEMPOTENCY_KEY,
    problems,
)
from iptflow.store import IdempotencyKeyReused, Store, UnknownCourse
from iptflow.store.sql import course_ids_with_actor

__all__ = ["router"]

router = APIRouter(tags=["courses"])

_IF_MATCH = re.compile(r'^(?:W/)?"?([0-9]{1,15})"?$')
_JSON_TYPES = re.compile(r"^application/([a-z0-9.+-]*\+)?json$")


def _etag(seq: int) -> str:
    return f'"{seq}"'


async def _event_body(request: Request) -> Any:
    """The request's JSON body, read with the library's strict decoder (no NaN, bounded
    nesting and integers): 415 for another media type, 400 when it is not JSON."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not _JSON_TYPES.match(media):
        raise ProblemError(415, "unsupported_media_type",
                           "send the event as application/json")
    raw = await request.body()
    try:
        return strict_loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProblemError(400, "invalid_json", "the body is not UTF-8 text") from None
    except ValueError as exc:
        raise ProblemError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _as_actor(event: Any, principal: Principal) -> Any:
    """The event recorded under the token's actor: an ``actor`` that names someone else is
    refused (403 ``actor_mismatch``); none is filled in from the token."""
    if not isinstance(event, dict):
        return event  # not an event: the store rejects it invalid_event
    actor = event.get("actor")
    if actor is None:
        return {**event, "actor": principal.actor}
    if actor != principal.actor:
        raise ProblemError(403, "actor_mismatch",
                           f"this token acts as {principal.actor!r}; the event names actor "
                           f"{actor!r}")
    return event


def _accepted(course_id: str, result: Result, *, status: int, opened: bool = False) -> JSONResponse:
    if not isinstance(result, Accepted):
        problem = rejection_problem(result)
        if opened and result.code == "conflict":  # the id exists: no precondition failed
            problem.status = 409
        raise problem
    headers = {"ETag": _etag(result.seq), "Location": f"/courses/{course_id}"}
    return JSONResponse({"course_id": course_id, **result.to_dict()}, status_code=status,
                        headers=headers)


def _store_call(fn: Any, *args: Any, **kwargs: Any) -> Result:
    try:
        return fn(*args, **kwargs)  # type: ignore[no-any-return]
    except IdempotencyKeyReused as exc:
        raise ProblemError(422, exc.code, exc.message) from None
    except ProtocolError as exc:  # course_opened names a protocol or adaptation that is not here
        raise ProblemError(422, exc.code, exc.message, event_type="course_opened") from None


@router.post(
    "/courses", status_code=201, response_model=EventAccepted,
    summary="Open a course (its course_opened event)",
    responses={201: {"headers": {"ETag": ETAG_HEADER}}, **problems(400, 401, 403, 409, 413, 415, 422)},
    openapi_extra=COURSE_OPENED_BODY,
)
async def open_course(
    request: Request,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> JSONResponse:
    """Open a course. The actor is the token's; a retry with the same `Idempotency-Key` and
    event returns the original answer and stores nothing twice."""
    event = await _event_body(request)
    caller = Caller(request)
    if isinstance(event, dict) and event.get("type") != "course_opened":
        raise ProblemError(422, "invalid_event", "POST /courses takes a course_opened event; "
                           "record other events with POST /courses/{id}/events",
                           event_type=event.get("type") if isinstance(event.get("type"), str) else None)

    def work(store: Store) -> JSONResponse:
        principal = caller.allow(store, "open_course")
        opened = _as_actor(event, principal)
        result = _store_call(store.open_course, opened, idempotency_key=idempotency_key)
        course_id = opened.get("course_id") if isinstance(opened, dict) else None
        return _accepted(str(course_id), result, status=201, opened=True)

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


def _decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=="))
    except (UnicodeError, ValueError, binascii.Error):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("after"), str):
        raise ProblemError(400, "invalid_cursor", "cursor is not one this service gave")
    return data["after"]


def _encode_cursor(after: str) -> str:
    text = json.dumps({"after": after}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


@router.get(
    "/courses", response_model=CourseList, summary="List courses (filtered, a page at a time)",
    responses=problems(400, 401, 403, 422),
)
async def list_courses(
    request: Request,
    state: str | None = Query(None, description="Only courses in this state."),
    protocol: str | None = Query(None, description="ID (every version) or ID@VERSION."),
    actor: str | None = Query(None, description="Only courses this actor recorded an event in."),
    limit: int = Query(100, ge=1, le=1000, description="Courses per page."),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
) -> dict[str, Any]:
    """Course rows by id; `next_cursor` pages through them (opaque: pass it back as it is)."""
    after = _decode_cursor(cursor)
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "list_courses")
        rows = store.list(state=state, protocol=protocol)
        if actor is not None:
            ids = course_ids_with_actor(store.recorder, actor)
            rows = [r for r in rows if r.id in ids]
        if after is not None:
            rows = [r for r in rows if r.id > after]
        page = rows[:limit]
        more = len(rows) > limit
        return {"courses": [r.to_dict() for r in page],
                "next_cursor": _encode_cursor(page[-1].id) if more else None}

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


def _detail(course: Course) -> dict[str, Any]:
    snapshot = course.snapshot()
    allowed = [
        {"type": etype,
         "unmet_requirements": [{"name": n, "message": m} for n, m in course.unmet_requirements(etype)]}
        for etype in course.allowed_events()
    ]
    return {**snapshot, "closed": course.is_closed, "open_reviews": course.open_reviews,
            "allowed_events": allowed}


def _course(store: Store, course_id: str) -> Course:
    try:
        return store.get(course_id)
    except UnknownCourse:
        raise ProblemError(404, "no_course", f"no course {course_id!r}: it was never opened") from None


@router.get(
    "/courses/{course_id}", response_model=CourseDetail,
    summary="A course: state, facts, reviews, deviations, outcome, what may come next",
    responses={200: {"headers": {"ETag": ETAG_HEADER}}, **problems(401, 403, 404)},
)
async def get_course(request: Request, course_id: str) -> JSONResponse:
    """The course replayed from its log. `ETag` is its seq: send it back as `If-Match` with the
    next event to be sure nobody wrote in between."""
    caller = Caller(request)

    def work(store: Store) -> JSONResponse:
        caller.allow(store, "read_course", course_id)
        course = _course(store, course_id)
        return JSONResponse(_detail(course), headers={"ETag": _etag(course.seq)})

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


def _expected_seq(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.match(if_match.strip())
    if match is None:
        raise ProblemError(400, "invalid_if_match",
                           "If-Match must be the ETag GET /courses/{id} gave (a seq, e.g. \"3\")")
    return int(match.group(1))


@router.post(
    "/courses/{course_id}/events", status_code=201, response_model=EventAccepted,
    summary="Record an event",
    responses={201: {"headers": {"ETag": ETAG_HEADER}},
               **problems(400, 401, 403, 404, 409, 412, 413, 415, 422)},
    openapi_extra=EVENT_BODY,
)
async def record_event(
    request: Request,
    course_id: str,
    if_match: str | None = Header(None, alias="If-Match", description="The course's ETag (seq) "
                                  "as last read: another seq is 412 conflict."),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> JSONResponse:
    """Apply one event. Rejections are problems with the product's code (guard_failed lists
    the failed `guards`); nothing is written for them."""
    expected = _expected_seq(if_match)
    event = await _event_body(request)
    caller = Caller(request)

    def work(store: Store) -> JSONResponse:
        principal = caller.allow(store, "record_event", course_id)
        result = _store_call(store.apply, course_id, _as_actor(event, principal),
                             expected_seq=expected, idempotency_key=idempotency_key)
        return _accepted(course_id, result, status=201)

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.get(
    "/courses/{course_id}/events", response_model=EventList, summary="A course's stored events",
    responses=problems(401, 403, 404),
)
async def course_events(request: Request, course_id: str) -> dict[str, Any]:
    """Every stored event in order, with its hash chain and audit data."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "read_events", course_id)
        try:
            history = store.history(course_id)
        except UnknownCourse:
            raise ProblemError(404, "no_course", f"no course {course_id!r}: it was never opened") from None
        return {"course_id": course_id, "events": [e.to_dict() for e in history]}

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.get(
    "/courses/{course_id}/fhir", summary="The course as a FHIR R4 Bundle",
    responses={200: FHIR_RESPONSE, **problems(401, 403, 404, 501)},
)
async def course_fhir(request: Request, course_id: str) -> Response:
    """A FHIR R4 `Bundle` (collection) of the course (docs/fhir.md); needs the `fhir` extra."""
    caller = Caller(request)

    def work(store: Store) -> Response:
        caller.allow(store, "read_fhir", course_id)
        course = _course(store, course_id)
        try:
            text = bundle_json(course, indent=None)
        except MissingExtra as exc:
            raise ProblemError(501, exc.code, exc.message) from None
        return Response(text, media_type="application/fhir+json")

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]
