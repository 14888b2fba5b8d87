"""The FastAPI application of ``iptflow serve``: :func:`create_app` (docs/service.md)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from iptflow.engine.registry import Registry, default_registry
from iptflow.service import courses, meta, worklist
from iptflow.service.ops import Operations
from iptflow.service.pool import StorePool
from iptflow.service.problems import HANDLERS
from iptflow.service.schema import finish_openapi
from iptflow.store.urls import display_url

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_POOL_SIZE", "app_from_environment", "create_app",
           "openapi_document"]

DEFAULT_MAX_BODY = 256 * 1024
"""Bytes a request body may hold (an event is a few hundred): more is 413."""

DEFAULT_POOL_SIZE = 4
"""Store connections (threads) per worker process."""

OPEN_PATHS = ("/healthz", "/readyz")
"""The only paths answered without a token."""

DESCRIPTION = """Courses of Interpersonal Psychotherapy run by iptflow, over HTTP.

Every request but /healthz and /readyz carries `Authorization: Bearer TOKEN` (`iptflow token
create`); the token's role decides what it may do and its actor is recorded with every event.
Rejections and errors are RFC 9457 problems (`application/problem+json`) with iptflow's `code`,
`message` and, for a rejected event, the failed `guards`. `GET /courses/{id}` gives the course's
seq as `ETag`: send it as `If-Match` with the next event (a mismatch is 412 `conflict`); an
`Idempotency-Key` makes a retried event count once.
"""


def _version() -> str:
    try:
        return version("iptflow")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
        return "0"


def _operation_id(route: APIRoute) -> str:
    """Each operation's id is its handler's name (get_course, record_event, ...): what
    generated clients name their methods after."""
    return route.name


def create_app(
    store_url: str,
    *,
    registry: Registry | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_body: int = DEFAULT_MAX_BODY,
    timeout: float = 30.0,
) -> FastAPI:
    """The service for the store at ``store_url`` (a SQLite path, ``sqlite:///PATH`` or a
    ``postgresql://`` URL). Its stores open when it starts (and at the latest on its first
    request) on ``pool_size`` threads, and close when it stops, after the work under way.

    :param registry: resolves protocols and carries the plugins (``authorize`` among them);
        default ``default_registry()``.
    :param max_body: the largest request body in bytes (more is a 413 problem).
    :param timeout: seconds a write waits for another writer's lock (then 503 ``store_busy``).
    """
    pool = StorePool(store_url, size=pool_size, registry=registry or default_registry(),
                     timeout=timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        try:
            yield
        finally:
            pool.close()  # uvicorn stops here only once the requests under way have answered

    app = FastAPI(title="iptflow", version=_version(), description=DESCRIPTION,
                  lifespan=lifespan, exception_handlers=HANDLERS,
                  generate_unique_id_function=_operation_id)
    app.state.pool = pool
    app.state.store_path = display_url(store_url)
    app.include_router(courses.router)
    app.include_router(meta.router)
    app.include_router(worklist.router)
    app.add_middleware(Operations, max_body=max_body)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from iptflow token create."}}
            spec["security"] = [{"bearer": []}]
            for path in OPEN_PATHS:
                for operation in spec["paths"][path].values():
                    operation["security"] = []
            app.openapi_schema = finish_openapi(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


ENV_DB = "IPTFLOW_SERVE_DB"
ENV_POOL = "IPTFLOW_SERVE_POOL"
ENV_MAX_BODY = "IPTFLOW_SERVE_MAX_BODY"


def app_from_environment() -> FastAPI:
    """The app ``iptflow serve`` starts in each worker process (uvicorn's factory): the store
    and limits come from ``$IPTFLOW_SERVE_DB``, ``$IPTFLOW_SERVE_POOL`` and
    ``$IPTFLOW_SERVE_MAX_BODY``, which ``iptflow serve`` sets."""
    return create_app(
        os.environ[ENV_DB],
        pool_size=int(os.environ.get(ENV_POOL, DEFAULT_POOL_SIZE)),
        max_body=int(os.environ.get(ENV_MAX_BODY, DEFAULT_MAX_BODY)),
    )


def openapi_document() -> str:
    """The OpenAPI document as published in docs/openapi.json (the same for every store)."""
    return json.dumps(create_app(":memory:").openapi(), indent=2, ensure_ascii=False) + "\n"
