"""iptflow serve in-process (the ASGI app through fastapi's TestClient, a real SQLite store):
courses and events, every rejection as a problem with its status, ETag/If-Match,
Idempotency-Key, listing with filters and cursors, FHIR and the worklist."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import CLINICIAN, Service, run_demo, running, tmp_store

from iptflow.research.demo import demo_events
from iptflow.store import Store


@pytest.fixture
def service(tmp_path: Path):
    with running(tmp_store(tmp_path)) as svc:
        yield svc


def test_a_whole_course_through_the_api(service: Service) -> None:
    answers = run_demo(service, "c-1")
    assert [a.status_code for a in answers] == [201] * len(answers)
    assert [a.json()["seq"] for a in answers] == list(range(1, len(answers) + 1))
    assert answers[-1].json()["state"] == "completed"
    assert answers[-1].headers["etag"] == f'"{len(answers)}"'
    assert answers[0].headers["location"] == "/courses/c-1"
    detail = service.client.get("/courses/c-1", headers=service.auth())
    assert detail.status_code == 200 and detail.headers["etag"] == f'"{len(answers)}"'
    body = detail.json()
    assert body["state"] == "completed" and body["closed"] and body["allowed_events"] == []
    assert body["outcome"]["status"] in ("response", "remission")
    with Store.open(service.url, readonly=True) as store:
        assert store.get("c-1").snapshot()["facts"] == body["facts"]
        assert store.verify().ok
        history = store.history("c-1")
    assert {e.actor for e in history} == {CLINICIAN}  # filled in from the token
    events = service.client.get("/courses/c-1/events", headers=service.auth()).json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(answers) + 1))
    assert events[1]["event"]["actor"] == CLINICIAN and events[1]["hash"] == history[1].hash


def test_course_detail_lists_allowed_events_with_their_unmet_requirements(service: Service) -> None:
    service.open("c-1")
    body = service.client.get("/courses/c-1", headers=service.auth()).json()
    assert body["state"] == "assessment" and body["seq"] == 1 and not body["closed"]
    allowed = {a["type"]: a["unmet_requirements"] for a in body["allowed_events"]}
    assert "measure_recorded" in allowed and allowed["measure_recorded"] == []
    unmet = {u["name"] for u in allowed["treatment_started"]}
    assert {"diagnosis_indicated", "baseline_recorded", "suicide_screen"} <= unmet
    assert all(u["message"] for u in allowed["treatment_started"])


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:iptflow:problem:{code}" and body["detail"] == body["message"]
    assert "Traceback" not in response.text
    return body


def test_every_rejection_is_a_problem_with_its_status_and_writes_nothing(service: Service) -> None:
    events = demo_events("c-1")
    service.open("c-1")
    body = _problem(service.event("c-1", {"type": "treatment_started", "at": events[1]["at"]}),
                    409, "guard_failed")
    assert "baseline_recorded" in body["guards"] and body["event_type"] == "treatment_started"
    _problem(service.event("c-1", {"type": "session_held", "at": events[1]["at"], "number": 1}),
             409, "not_allowed")
    _problem(service.event("c-1", {"type": "measure_recorded", "at": "2020-01-01T00:00:00Z",
                                   "instrument": "phq9", "score": 3}), 409, "out_of_order")
    _problem(service.event("c-1", {"type": "measure_recorded", "at": events[1]["at"],
                                   "instrument": "phq9", "score": "high"}), 422, "invalid_event")
    _problem(service.event("c-1", [1, 2]), 422, "invalid_event")
    _problem(service.event("nope", events[1]), 404, "no_course")
    assert service.stored("c-1") == 1
    for e in events[1:]:
        assert service.event("c-1", e).status_code == 201
    _problem(service.event("c-1", {**events[-1], "at": "2030-01-01T00:00:00Z"}), 409, "course_closed")
    _problem(service.open("c-1"), 409, "conflict")  # the id exists: no precondition to fail
    not_opening = service.client.post("/courses", json=events[1], headers=service.auth())
    assert "takes a course_opened event" in _problem(not_opening, 422, "invalid_event")["message"]
    assert service.stored("c-1") == len(events)


def test_unusable_bodies_and_headers_are_problems(service: Service) -> None:
    service.open("c-1")
    auth = service.auth()
    bad_json = service.client.post("/courses/c-1/events", content=b'{"type": NaN}',
                                   headers={**auth, "Content-Type": "application/json"})
    _problem(bad_json, 400, "invalid_json")
    text = service.client.post("/courses/c-1/events", content=b"{}",
                               headers={**auth, "Content-Type": "text/plain"})
    _problem(text, 415, "unsupported_media_type")
    event = demo_events("c-1")[1]
    _problem(service.event("c-1", event, **{"If-Match": "yesterday"}), 400, "invalid_if_match")
    _problem(service.client.get("/courses?limit=0", headers=auth), 422, "invalid_request")
    _problem(service.client.get("/courses?cursor=%%%", headers=auth), 400, "invalid_cursor")
    _problem(service.client.get("/no/such/thing", headers=auth), 404, "not_found")
    _problem(service.client.put("/courses", headers=auth), 405, "method_not_allowed")
    assert service.stored("c-1") == 1


def test_if_match_is_the_seq_and_a_stale_one_is_412_conflict(service: Service) -> None:
    events = demo_events("c-1")
    service.open("c-1")
    etag = service.client.get("/courses/c-1", headers=service.auth()).headers["etag"]
    first = service.event("c-1", events[1], **{"If-Match": etag})
    assert first.status_code == 201 and first.headers["etag"] == '"2"'
    stale = _problem(service.event("c-1", events[2], **{"If-Match": etag}), 412, "conflict")
    assert "it is at event 2, you expected 1" in stale["message"]
    assert service.stored("c-1") == 2
    assert service.event("c-1", events[2], **{"If-Match": "W/\"2\""}).status_code == 201
    assert service.event("c-1", events[3], **{"If-Match": "*"}).status_code == 201


def test_idempotency_key_returns_the_original_answer_and_stores_once(service: Service) -> None:
    events = demo_events("c-1")
    opened = service.open("c-1", **{"Idempotency-Key": "open-1"})
    again = service.open("c-1", **{"Idempotency-Key": "open-1"})
    assert again.status_code == 201 and again.json() == opened.json()
    first = service.event("c-1", events[1], **{"Idempotency-Key": "k-1"})
    retry = service.event("c-1", events[1], **{"Idempotency-Key": "k-1"})
    assert retry.status_code == 201 and retry.json() == first.json()
    assert service.stored("c-1") == 2
    other = service.event("c-1", events[2], **{"Idempotency-Key": "k-1"})
    assert "already used for a different event" in _problem(other, 422, "idempotency_key_reused")["message"]
    assert service.stored("c-1") == 2


def test_list_filters_and_cursor_pages(service: Service) -> None:
    for n in range(5):
        service.open(f"c-{n}")
    for e in demo_events("c-0")[1:]:
        service.event("c-0", e)
    auth = service.auth()
    seen, cursor = [], None
    while True:
        page = service.client.get("/courses", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                  headers=auth).json()
        seen += [c["id"] for c in page["courses"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert "c-" not in cursor  # opaque
    assert seen == [f"c-{n}" for n in range(5)]
    completed = service.client.get("/courses", params={"state": "completed"}, headers=auth).json()
    assert [c["id"] for c in completed["courses"]] == ["c-0"]
    by_protocol = service.client.get("/courses", params={"protocol": "ipt-depression"}, headers=auth)
    assert len(by_protocol.json()["courses"]) == 5
    assert service.client.get("/courses", params={"protocol": "other"}, headers=auth).json()["courses"] == []
    mine = service.client.get("/courses", params={"actor": CLINICIAN}, headers=auth).json()["courses"]
    assert len(mine) == 5
    assert service.client.get("/courses", params={"actor": "x"}, headers=auth).json()["courses"] == []


def test_fhir_bundle_of_a_course(service: Service) -> None:
    run_demo(service, "c-1")
    response = service.client.get("/courses/c-1/fhir", headers=service.auth())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.json()["resourceType"] == "Bundle"
    _problem(service.client.get("/courses/none/fhir", headers=service.auth()), 404, "no_course")


def test_worklist_as_of_a_time(service: Service) -> None:
    service.open("c-1")
    response = service.client.get("/worklist", params={"as_of": "2025-03-01T09:00:00Z"},
                                  headers=service.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["courses"] == 1 and body["items"] and body["items"][0]["course_id"] == "c-1"
    early = service.client.get("/worklist", params={"as_of": "2000-01-01T00:00:00Z"},
                               headers=service.auth())
    _problem(early, 422, "invalid_as_of")
    _problem(service.client.get("/worklist", headers=service.auth()), 422, "invalid_request")
