"""iptflow serve in-process: bearer tokens, the default policy of every role on every
endpoint (a denied request is 403 and writes nothing), the actor from the token, token
management over HTTP, and the ``authorize`` hook replacing the policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import CLINICIAN, Service, running, tmp_store

from iptflow import hookimpl
from iptflow.engine.access import ACTIONS, Principal
from iptflow.engine.plugins import make_plugin_manager
from iptflow.engine.registry import Registry
from iptflow.research.demo import demo_events
from iptflow.service.auth import DEFAULT_POLICY
from iptflow.store import Store
from iptflow.store.tokens import tokens

AS_OF = {"as_of": "2025-03-01T09:00:00Z"}

#: every endpoint that needs a token: (action, method, path, query or body)
ENDPOINTS = [
    ("open_course", "POST", "/courses", None),
    ("record_event", "POST", "/courses/c-1/events", None),
    ("list_courses", "GET", "/courses", None),
    ("read_course", "GET", "/courses/c-1", None),
    ("read_events", "GET", "/courses/c-1/events", None),
    ("read_fhir", "GET", "/courses/c-1/fhir", None),
    ("read_protocols", "GET", "/protocols", None),
    ("read_protocols", "GET", "/protocols/ipt-depression", None),
    ("read_worklist", "GET", "/worklist", AS_OF),
    ("verify", "GET", "/verify", None),
    ("manage_tokens", "GET", "/tokens", None),
    ("manage_tokens", "POST", "/tokens", {"role": "researcher", "actor": "r-2"}),
]

EXPECTED = {
    "clinician": {"open_course", "record_event", "list_courses", "read_course", "read_events",
                  "read_fhir", "read_protocols", "read_worklist"},
    "researcher": {"list_courses", "read_course", "read_protocols"},
    "auditor": {"list_courses", "read_course", "read_events", "read_fhir", "read_protocols",
                "read_worklist", "verify"},
    "admin": {"manage_tokens", "read_protocols"},
}


@pytest.fixture
def service(tmp_path: Path):
    with running(tmp_store(tmp_path)) as svc:
        yield svc


def _call(service: Service, role: str, method: str, path: str, extra: dict | None, n: int):
    headers = service.auth(role)
    if path == "/courses" and method == "POST":
        return service.client.post(path, json=demo_events(f"new-{n}")[0] | {"actor": None},
                                   headers=headers)
    if path.endswith("/events") and method == "POST":
        return service.client.post(path, json=demo_events("c-1")[1], headers=headers)
    if method == "POST":
        return service.client.post(path, json=extra, headers=headers)
    return service.client.request(method, path, params=extra, headers=headers)


def _snapshot(url: str) -> tuple[int, int, int]:
    with Store.open(url, readonly=True) as store:
        events = len(store.history("c-1")) if store.exists("c-1") else 0
        return store.count(), events, len(tokens(store))


def test_the_documented_default_policy_is_the_one_applied() -> None:
    assert {role: set(actions) for role, actions in DEFAULT_POLICY.items()} == EXPECTED
    assert set().union(*EXPECTED.values()) == set(ACTIONS)


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_every_role_on_every_endpoint(service: Service, role: str) -> None:
    service.open("c-1")
    for n, (action, method, path, extra) in enumerate(ENDPOINTS):
        before = _snapshot(service.url)
        response = _call(service, role, method, path, extra, n)
        if action in EXPECTED[role]:
            assert response.status_code in (200, 201), (role, path, response.text)
        else:
            assert response.status_code == 403, (role, path, response.text)
            body = response.json()
            assert body["code"] == "forbidden" and role in body["message"]
            assert _snapshot(service.url) == before, (role, path)  # nothing written


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwdw==", "Bearer ipt_unknown",
                                    "Bearer not-even-ours"])
def test_missing_or_unknown_tokens_are_401_with_a_challenge(service: Service, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/courses"), ("POST", "/courses"), ("GET", "/protocols")):
        response = service.client.request(method, path, headers=headers, json=demo_events("x")[0])
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert _snapshot(service.url)[0] == 0


def test_health_and_readiness_need_no_token(service: Service) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/readyz").json() == {"status": "ready"}


def test_the_actor_comes_from_the_token(service: Service) -> None:
    opened = demo_events("c-1")[0]
    mismatch = service.client.post("/courses", json={**opened, "actor": "someone-else"},
                                   headers=service.auth())
    assert mismatch.status_code == 403 and mismatch.json()["code"] == "actor_mismatch"
    assert _snapshot(service.url)[0] == 0
    assert service.open("c-1").status_code == 201  # names the token's actor itself
    event = {**demo_events("c-1")[1], "actor": "clinician-8"}
    refused = service.event("c-1", event)
    assert refused.status_code == 403 and refused.json()["code"] == "actor_mismatch"
    assert service.stored("c-1") == 1
    assert service.event("c-1", {**event, "actor": None}).status_code == 201
    with Store.open(service.url, readonly=True) as store:
        assert [e.actor for e in store.history("c-1")] == [CLINICIAN, CLINICIAN]


def test_admin_manages_tokens_over_http_and_a_revoked_token_is_refused(service: Service) -> None:
    created = service.client.post("/tokens", json={"role": "clinician", "actor": "dr-b"},
                                  headers=service.auth("admin"))
    assert created.status_code == 201
    new = created.json()
    assert new["secret"].startswith("ipt_") and new["revoked_at"] is None
    bearer = {"Authorization": f"Bearer {new['secret']}"}
    assert service.client.get("/courses", headers=bearer).status_code == 200
    listed = service.client.get("/tokens", headers=service.auth("admin")).json()["tokens"]
    assert new["id"] in [t["id"] for t in listed] and all("secret" not in t for t in listed)
    revoked = service.client.delete(f"/tokens/{new['id']}", headers=service.auth("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = service.client.get("/courses", headers=bearer)
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    missing = service.client.delete("/tokens/tok_nope", headers=service.auth("admin"))
    assert missing.status_code == 404 and missing.json()["code"] == "no_token"
    bad = service.client.post("/tokens", json={"role": "nurse", "actor": "x"},
                              headers=service.auth("admin"))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_argument"


class AssignedCourses:
    """An integrator's policy: a clinician may only touch courses assigned to them (by id
    prefix here), and may never open one; everything else is left to the default policy."""

    def __init__(self) -> None:
        self.calls: list[tuple[Principal, str, str | None]] = []

    @hookimpl
    def authorize(self, principal: Principal, action: str, course) -> bool | None:
        self.calls.append((principal, action, course.course_id if course is not None else None))
        if principal.role != "clinician":
            return None
        if action == "open_course":
            return False
        if course is not None:
            return course.course_id.startswith("mine-")
        return None


def _registry(plugin: object) -> Registry:
    pm, _ = make_plugin_manager(entry_points_too=False, extra={"assigned-courses": plugin})
    return Registry(pm)


def test_authorize_hook_replaces_the_default_policy(tmp_path: Path) -> None:
    url = tmp_store(tmp_path)
    with Store.open(url) as store:
        store.open_course(demo_events("mine-1")[0])
        store.open_course(demo_events("other-1")[0])
    policy = AssignedCourses()
    registry = _registry(policy)
    assert [i.plugin_name for i in registry.pm.hook.authorize.get_hookimpls()] == ["assigned-courses"]
    with running(url, registry=registry) as service:
        refused = service.open("c-9")
        assert refused.status_code == 403 and service.stored("c-9") == 0
        assert service.event("mine-1", demo_events("mine-1")[1]).status_code == 201
        denied = service.event("other-1", demo_events("other-1")[1])
        assert denied.status_code == 403 and service.stored("other-1") == 1
        assert service.client.get("/courses/other-1", headers=service.auth()).status_code == 403
        assert service.client.get("/courses", headers=service.auth()).status_code == 200  # None
        assert service.client.get("/verify", headers=service.auth("auditor")).status_code == 200
        assert service.client.get("/verify", headers=service.auth()).status_code == 403
    principal, action, course_id = next(c for c in policy.calls if c[1] == "record_event")
    assert principal == Principal(service.token_ids["clinician"], "clinician", CLINICIAN)
    assert course_id == "mine-1"
    assert ("open_course", None) in {(a, c) for _, a, c in policy.calls}


class Broken:
    @hookimpl
    def authorize(self, principal: Principal, action: str, course) -> bool | None:
        raise RuntimeError("policy database unreachable: secret detail")


def test_a_failing_authorize_hook_is_a_500_problem_without_details(tmp_path: Path, caplog) -> None:
    with running(tmp_store(tmp_path), registry=_registry(Broken())) as service:
        response = service.open("c-1")
        assert response.status_code == 500
        body = response.json()
        assert body["code"] == "internal_error" and body["request_id"] in body["message"]
        assert "secret detail" not in response.text and "Traceback" not in response.text
        assert service.stored("c-1") == 0
    assert any("secret detail" in (r.exc_text or "") or r.exc_info for r in caplog.records
               if r.name == "iptflow.service.error")
