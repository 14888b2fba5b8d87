"""Helpers of the service tests: a store with one token per role, the app in-process, and the
demo course as HTTP calls."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():  # starlette suggests httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from iptflow.engine.registry import Registry
from iptflow.research.demo import demo_events
from iptflow.service import create_app
from iptflow.store import Store
from iptflow.store.tokens import ROLES, create_token

CLINICIAN = "clinician-7"  # the actor of research.demo's courses


@dataclass
class Service:
    client: TestClient
    url: str
    secrets: dict[str, str]  # role -> bearer secret
    token_ids: dict[str, str]

    def auth(self, role: str = "clinician", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}", **headers}

    def open(self, course_id: str = "c-1", role: str = "clinician", **headers: str) -> Any:
        return self.client.post("/courses", json=demo_events(course_id)[0],
                                headers=self.auth(role, **headers))

    def event(self, course_id: str, event: dict[str, Any], role: str = "clinician",
              **headers: str) -> Any:
        return self.client.post(f"/courses/{course_id}/events", json=event,
                                headers=self.auth(role, **headers))

    def stored(self, course_id: str) -> int:
        with Store.open(self.url, readonly=True) as store:
            return len(store.history(course_id)) if store.exists(course_id) else 0


def make_tokens(url: str) -> tuple[dict[str, str], dict[str, str]]:
    secrets, ids = {}, {}
    with Store.open(url) as store:
        for role in ROLES:
            actor = CLINICIAN if role == "clinician" else f"{role}-1"
            token, secret = create_token(store, role=role, actor=actor)
            secrets[role], ids[role] = secret, token.id
    return secrets, ids


@contextmanager
def running(url: str, registry: Registry | None = None, **options: Any) -> Iterator[Service]:
    secrets, ids = make_tokens(url)
    app = create_app(url, registry=registry, pool_size=2, **options)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, url, secrets, ids)


def run_demo(service: Service, course_id: str) -> list[Any]:
    """Every event of the demo course through the API; the responses."""
    events = demo_events(course_id)
    answers = [service.open(course_id)]
    answers += [service.event(course_id, e) for e in events[1:]]
    return answers


def tmp_store(tmp_path: Path) -> str:
    return str(tmp_path / "service.db")
