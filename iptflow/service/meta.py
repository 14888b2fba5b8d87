"""Everything but courses: ``/protocols``, ``/healthz``, ``/readyz``, ``/verify`` and
``/tokens`` (docs/service.md#resources)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from iptflow.errors import ProtocolError
from iptflow.interop import diagram, svg
from iptflow.service.auth import Caller
from iptflow.service.models import (
    CreatedToken,
    Health,
    NewToken,
    ProtocolDetail,
    ProtocolList,
    TokenList,
    TokenOut,
    VerifyOut,
)
from iptflow.service.ops import ERROR_LOG
from iptflow.service.problems import ProblemError
from iptflow.service.schema import problems
from iptflow.store import Store
from iptflow.store.errors import InvalidArgument
from iptflow.store.tokens import UnknownToken, create_token, revoke_token, tokens

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves (no token needed)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, tags=["operations"],
            summary="The store answers", responses=problems(503))
async def readyz(request: Request) -> dict[str, str]:
    """200 when a store connection answers a read, else a 503 problem (no token needed)."""
    try:
        await request.app.state.pool.run(lambda store: store.count())
    except Exception:  # any failure to read is "not ready"; the log has the details
        ERROR_LOG.exception("readyz: the store at %s does not answer", request.app.state.store_path)
        raise ProblemError(503, "not_ready", "the store does not answer") from None
    return {"status": "ready"}


@router.get("/protocols", response_model=ProtocolList, tags=["protocols"],
            summary="Protocols, variants and adaptations, every version",
            responses=problems(401, 403))
async def list_protocols(request: Request) -> dict[str, Any]:
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "read_protocols")
        registry = store.registry
        items = []
        for pid in registry.protocol_ids():
            versions = registry.protocol_versions(pid)
            for version in versions:
                item = registry.find(f"{pid}@{version}")
                items.append({"id": pid, "kind": "variant" if pid in registry.variants else "protocol",
                              "version": item.version, "newest": version == versions[-1],
                              "title": item.title})
        adaptations = [
            {"id": aid, "version": a.version, "base_versions": list(a.base_versions), "title": a.title}
            for aid in sorted(registry.adaptation_versions)
            for a, _ in registry.adaptation_versions[aid]
        ]
        return {"protocols": items, "adaptations": adaptations}

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.get(
    "/protocols/{ref}", response_model=ProtocolDetail, tags=["protocols"],
    summary="A resolved protocol (ID or ID@VERSION) with its diagram",
    responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string"}},
                                 "text/vnd.mermaid": {"schema": {"type": "string"}}}},
               **problems(401, 403, 404)},
)
async def get_protocol(
    request: Request,
    ref: str,
    adapt: Annotated[list[str] | None, Query(description="Adaptations to apply (repeatable).")] = None,
    format: str = Query("json", pattern="^(json|svg|mermaid)$",
                        description="json (with Mermaid text), svg, or mermaid."),
) -> Response:
    caller = Caller(request)

    def work(store: Store) -> Response:
        caller.allow(store, "read_protocols")
        registry = store.registry
        try:
            resolved = registry.resolve(ref, adapt or ())
            registry.compile_resolved(resolved)
        except ProtocolError as exc:
            raise ProblemError(404, exc.code, exc.message) from None
        if format == "svg":
            return Response(svg.to_svg(resolved, registry), media_type="image/svg+xml")
        mermaid = diagram.to_mermaid(resolved, registry)
        if format == "mermaid":
            return Response(mermaid, media_type="text/vnd.mermaid")
        return JSONResponse({
            "id": resolved.id, "version": resolved.version, "adaptations": list(resolved.adaptations),
            "fingerprint": resolved.fingerprint, "diagram": diagram.to_json(resolved, registry),
            "mermaid": mermaid,
        })

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.get("/verify", response_model=VerifyOut, tags=["audit"],
            summary="Check every course's hash chain, replay and derived row",
            responses=problems(401, 403))
async def verify(request: Request) -> dict[str, Any]:
    """`iptflow verify` over HTTP (auditors)."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "verify")
        return store.verify().to_dict()

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.get("/tokens", response_model=TokenList, tags=["tokens"], summary="Every token",
            responses=problems(401, 403))
async def list_tokens(request: Request) -> dict[str, Any]:
    """Tokens with their role and actor, revoked ones too; never a secret (admins)."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "manage_tokens")
        return {"tokens": [t.to_dict() for t in tokens(store)]}

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.post("/tokens", response_model=CreatedToken, status_code=201, tags=["tokens"],
             summary="Create a token", responses=problems(401, 403, 422))
async def new_token(request: Request, body: NewToken) -> dict[str, Any]:
    """A new token; its `secret` is in this answer only (admins)."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "manage_tokens")
        try:
            token, secret = create_token(store, role=body.role, actor=body.actor, label=body.label)
        except InvalidArgument as exc:
            raise ProblemError(422, exc.code, exc.message) from None
        return {**token.to_dict(), "secret": secret}

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"],
               summary="Revoke a token", responses=problems(401, 403, 404))
async def delete_token(request: Request, token_id: str) -> dict[str, Any]:
    """Revoke a token: from now on it authenticates nothing (admins)."""
    caller = Caller(request)

    def work(store: Store) -> dict[str, Any]:
        caller.allow(store, "manage_tokens")
        try:
            return revoke_token(store, token_id).to_dict()
        except UnknownToken as exc:
            raise ProblemError(404, exc.code, exc.message) from None

    return await request.app.state.pool.run(work)  # type: ignore[no-any-return]
