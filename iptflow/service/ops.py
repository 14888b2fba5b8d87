"""The service's outer layer, one ASGI middleware: a request id on every request and answer
(``X-Request-ID``), one JSON access-log line per request, the request size limit (413), and the
catch-all that turns an unexpected error into a 500 problem naming only the request id (the
traceback goes to the log, never into a response).

The access log (logger ``iptflow.service.access``) holds no patient data: method, path (course
ids are pseudonyms), status, duration, request id and the token's id and role; never a body, a
query string or a header's value.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from iptflow.service.problems import problem_body

__all__ = ["ACCESS_LOG", "ERROR_LOG", "Operations"]

ACCESS_LOG = logging.getLogger("iptflow.service.access")
ERROR_LOG = logging.getLogger("iptflow.service.error")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_GIVEN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class Operations:
    """The middleware (see the module docstring); ``max_body`` bytes per request body."""

    def __init__(self, app: App, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _GIVEN_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 0}
        rid_header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            length = _header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                raise BodyTooLarge
            await self.app(scope, self._limited(receive), send_with_id)
        except BodyTooLarge:
            if status["code"] == 0:
                await self._problem(send_with_id, 413, "request_too_large",
                                    f"the request body is over {self.max_body} bytes", request_id)
        except Exception:  # noqa: BLE001 - the catch-all: logged, answered without details
            ERROR_LOG.exception("request %s %s %s failed", request_id, scope["method"], scope["path"])
            if status["code"] == 0:
                await self._problem(send_with_id, 500, "internal_error",
                                    f"the server failed to answer this request (request id "
                                    f"{request_id}); its log has the details", request_id)
        finally:
            state = scope.get("state", {})
            ACCESS_LOG.info(json.dumps({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status["code"],
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "token": state.get("token_id"),
                "role": state.get("role"),
            }))

    def _limited(self, receive: Receive) -> Receive:
        seen = {"bytes": 0}

        async def receive_limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_body:
                    raise BodyTooLarge
            return message

        return receive_limited

    @staticmethod
    async def _problem(send: Send, status: int, code: str, message: str, request_id: str) -> None:
        body = json.dumps(problem_body(status, code, message, request_id=request_id)).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
