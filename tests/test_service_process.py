"""A real ``iptflow serve`` process on a loopback port, driven over HTTP: a whole course, a
conflicting write, an idempotent retry, a revoked token (revoked by the CLI while it runs),
and a graceful stop that finishes the appends under way."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import httpx
import pytest
from service_process import Server, cli, new_token

from iptflow.research.demo import demo_events
from iptflow.store import Store


@pytest.fixture
def served(tmp_path: Path):
    db = str(tmp_path / "clinic.db")
    token = new_token(db, "clinician", "clinician-7")
    server = Server(db, tmp_path / "serve.log")
    try:
        yield db, token, server
    finally:
        server.stop()


def test_a_course_a_conflict_a_retry_and_a_revoked_token_over_http(served) -> None:
    db, token, server = served
    auth = {"Authorization": f"Bearer {token['secret']}"}
    events = demo_events("p-1")
    with httpx.Client(base_url=server.base, headers=auth, timeout=30) as http:
        opened = http.post("/courses", json=events[0], headers={"Idempotency-Key": "open"})
        assert opened.status_code == 201 and opened.headers["etag"] == '"1"'
        etag = opened.headers["etag"]
        for n, event in enumerate(events[1:], start=2):
            key = {"Idempotency-Key": f"p-1-{n}", "If-Match": etag}
            answer = http.post("/courses/p-1/events", json=event, headers=key)
            assert answer.status_code == 201, answer.text
            if n == 5:  # the client lost the answer and retries: the original comes back
                retry = http.post("/courses/p-1/events", json=event, headers=key)
                assert retry.status_code == 201 and retry.json() == answer.json()
            if n == 6:  # a write from a stale read
                stale = http.post("/courses/p-1/events", json=events[n], headers={"If-Match": etag})
                assert stale.status_code == 412 and stale.json()["code"] == "conflict"
                assert stale.headers["content-type"] == "application/problem+json"
            etag = answer.headers["etag"]
        course = http.get("/courses/p-1")
        assert course.json()["state"] == "completed" and course.headers["etag"] == f'"{len(events)}"'
        assert http.get("/openapi.json").json()["info"]["title"] == "iptflow"

        revoked = cli("token", "revoke", token["id"], db=db)
        assert revoked.returncode == 0, revoked.stderr
        refused = http.get("/courses/p-1")
        assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    with Store.open(db, readonly=True) as store:
        assert len(store.history("p-1")) == len(events)  # the retry stored nothing twice
        assert store.verify().ok
    assert cli("verify", db=db).returncode == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert {(x["method"], x["status"]) for x in lines} >= {("POST", 201), ("POST", 412), ("GET", 401)}
    assert "warning" not in server.log()  # loopback, and a token exists


def test_sigterm_finishes_the_appends_under_way(served) -> None:
    db, token, server = served
    auth = {"Authorization": f"Bearer {token['secret']}"}
    courses = [f"g-{n}" for n in range(6)]
    with httpx.Client(base_url=server.base, headers=auth, timeout=30) as http:
        for cid in courses:
            assert http.post("/courses", json=demo_events(cid)[0]).status_code == 201
    accepted: dict[str, int] = dict.fromkeys(courses, 1)
    started = threading.Barrier(len(courses) + 1)

    def client(cid: str) -> None:
        with httpx.Client(base_url=server.base, headers=auth, timeout=30) as http:
            started.wait()
            for event in demo_events(cid)[1:]:
                try:
                    answer = http.post(f"/courses/{cid}/events", json=event)
                except httpx.TransportError:
                    return  # the server stopped accepting: this event was never received
                if answer.status_code != 201:
                    return
                accepted[cid] = answer.json()["seq"]

    threads = [threading.Thread(target=client, args=(cid,)) for cid in courses]
    for thread in threads:
        thread.start()
    started.wait()
    code = server.stop(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert code in (0, -signal.SIGTERM), server.log()  # uvicorn ends by the signal it stopped on
    assert "Application shutdown complete" in server.log()
    with Store.open(db, readonly=True) as store:
        for cid in courses:  # every answered append is stored, nothing more
            assert len(store.history(cid)) == accepted[cid], cid
        assert store.verify().ok
    assert "Traceback" not in server.log()
