"""``GET /worklist``: what every active course needs as of a time (``Store.worklist``,
docs/worklist.md), for clinicians and auditors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from iptflow.errors import InvalidAsOf
from iptflow.service.auth import Caller
from iptflow.service.problems import ProblemError
from iptflow.service.schema import problems
from iptflow.store import Store
from iptflow.store.errors import InvalidArgument

__all__ = ["router"]

router = APIRouter(tags=["worklist"])


class WorklistItem(BaseModel):
    course_id: str
    actor: str | None
    state: str
    protocol: str
    kind: str
    severity: str
    message: str
    resolved_by: list[str]
    due: str | None
    details: dict[str, Any]
    source: str | None


class WorklistOut(BaseModel):
    as_of: str
    courses: int
    counts: dict[str, int]
    items: list[WorklistItem]


@router.get("/worklist", response_model=WorklistOut,
            summary="What every active course needs as of a time",
            responses=problems(401, 403, 422))
async def get_worklist(
    request: Request,
    as_of: Annotated[str, Query(description="RFC 3339 date-time with a time zone "
                                "(the service never reads the clock for you).")],
    actor: Annotated[str | None, Query(description="Only this clinician's courses.")] = None,
    severity: Annotated[list[str] | None, Query(description="urgent, due or info "
                                                "(repeatable; default all).")] = None,
) -> dict[str, Any]:
    """Urgent items first, then due, then info, by due time (`iptflow worklist`)."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "read_worklist")
        try:
            return store.worklist(as_of, actor=actor, severities=severity).to_dict()
        except (InvalidAsOf, InvalidArgument) as exc:
            raise ProblemError(422, exc.code, exc.message) from None

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]
