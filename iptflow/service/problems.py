"""Every answer that is not a success: RFC 9457 ``application/problem+json`` documents carrying
the product's ``code``, ``message`` and, for a rejected event, its ``guards`` and
``event_type`` (docs/service.md#problems). A response never holds a stack trace: an unexpected
error is a 500 problem naming only the request id, and the details go to the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from iptflow.engine.results import Rejection
from iptflow.store.errors import StoreBusy, StoreError, StoreFull, StoreReadOnly

__all__ = [
    "PROBLEM_TYPE",
    "REJECTION_STATUS",
    "Problem",
    "ProblemError",
    "problem_response",
    "rejection_problem",
]

STORE_LOG = logging.getLogger("iptflow.service.error")

PROBLEM_TYPE = "urn:iptflow:problem:"
"""A problem's ``type`` is this prefix and its ``code`` (a URN: nothing to dereference)."""

REJECTION_STATUS: dict[str, int] = {
    "invalid_event": 422,
    "not_allowed": 409,
    "guard_failed": 409,
    "out_of_order": 409,
    "course_closed": 409,
    "no_course": 404,
    "conflict": 412,
}
"""The HTTP status of each rejection code (``conflict`` on ``POST /courses``, a course id that
exists, is 409: there was no precondition to fail)."""

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Rejected",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal server error",
    501: "Not implemented",
    503: "Service unavailable",
    507: "Insufficient storage",
}


class Problem(BaseModel):
    """An RFC 9457 problem document with iptflow's members."""

    type: str = Field(description="urn:iptflow:problem:CODE")
    title: str
    status: int
    detail: str = Field(description="The same as message.")
    code: str = Field(description="The product's stable code: a rejection code (invalid_event, "
                      "not_allowed, guard_failed, out_of_order, course_closed, no_course, "
                      "conflict) or a service code (unauthorized, forbidden, ...).")
    message: str
    guards: list[str] = Field(default_factory=list,
                              description="The requirements that failed (guard_failed).")
    event_type: str | None = None
    request_id: str | None = None


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem."""

    def __init__(self, status: int, code: str, message: str, *, guards: tuple[str, ...] = (),
                 event_type: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.guards = guards
        self.event_type = event_type
        self.headers = headers or {}


def rejection_problem(rejection: Rejection, *, status: int | None = None) -> ProblemError:
    """The problem for a rejected event (``status``: the code's own unless given)."""
    return ProblemError(
        status if status is not None else REJECTION_STATUS.get(rejection.code, 409),
        rejection.code, rejection.message, guards=rejection.guards,
        event_type=rejection.event_type,
    )


def problem_body(status: int, code: str, message: str, *, guards: tuple[str, ...] = (),
                 event_type: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    return Problem(
        type=PROBLEM_TYPE + code, title=TITLES.get(status, "Error"), status=status,
        detail=message, code=code, message=message, guards=list(guards), event_type=event_type,
        request_id=request_id,
    ).model_dump()


def problem_response(request: Request | None, exc: ProblemError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    return JSONResponse(
        problem_body(exc.status, exc.code, exc.message, guards=exc.guards,
                     event_type=exc.event_type, request_id=request_id),
        status_code=exc.status, headers=exc.headers, media_type="application/problem+json",
    )


async def handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc)


async def handle_http(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own errors (a body that is not JSON: 400, an unknown path: 404,
    a wrong method: 405) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed"}
    message = {400: "the body is not valid JSON",
               404: f"no resource at {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}
    status = exc.status_code
    return problem_response(request, ProblemError(
        status, codes.get(status, "http_error"), message.get(status, str(exc.detail)),
        headers=dict(exc.headers or {}),
    ))


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    """A request whose parameters or headers do not fit the OpenAPI document: 422, each
    mistake named by where it is."""
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return problem_response(request, ProblemError(422, "invalid_request", "; ".join(parts)))


async def handle_store(request: Request, exc: Exception) -> JSONResponse:
    """The store could not do it now: busy (503, retry), full (507), read-only (503); any
    other store error is a 500 naming its code, its message kept for the log."""
    assert isinstance(exc, StoreError)
    if isinstance(exc, StoreBusy):
        problem = ProblemError(503, exc.code, "the store is busy with other writers; retry",
                               headers={"Retry-After": "1"})
    elif isinstance(exc, StoreFull):
        problem = ProblemError(507, exc.code, "the store is out of space; nothing was stored")
    elif isinstance(exc, StoreReadOnly):
        problem = ProblemError(503, exc.code, "the store cannot be written now; nothing was stored")
    else:
        request_id = getattr(request.state, "request_id", None)
        STORE_LOG.error("request %s: store error %s: %s", request_id, exc.code, exc.message)
        problem = ProblemError(500, exc.code, f"the store failed (request id {request_id}); "
                               "its log has the details")
    return problem_response(request, problem)


HANDLERS: dict[Any, Any] = {
    ProblemError: handle_problem,
    StoreError: handle_store,
    StarletteHTTPException: handle_http,
    RequestValidationError: handle_validation,
}
