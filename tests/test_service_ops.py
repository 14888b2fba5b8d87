"""iptflow serve in-process: request ids, the JSON access log without patient data, the
request size limit, protocols with their diagrams, and the OpenAPI document published in
docs/openapi.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from service_support import Service, running, tmp_store

from iptflow.research.demo import demo_events
from iptflow.service import create_app
from iptflow.service.app import openapi_document

ROOT = Path(__file__).parent.parent


@pytest.fixture
def service(tmp_path: Path):
    with running(tmp_store(tmp_path), max_body=4096) as svc:
        yield svc


def test_request_id_is_echoed_or_made(service: Service) -> None:
    given = service.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = service.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != "bad id"
    problem = service.client.get("/courses/none", headers=service.auth())
    assert problem.json()["request_id"] == problem.headers["x-request-id"]


def test_access_log_is_one_json_line_per_request_without_bodies(service: Service, caplog) -> None:
    caplog.set_level(logging.INFO, logger="iptflow.service.access")
    event = demo_events("c-1")[0] | {"patient": {"age": 47}}
    service.client.post("/courses", json=event, headers=service.auth(**{"X-Request-ID": "r-1"}))
    service.client.get("/courses", params={"actor": "clinician-7"}, headers=service.auth())
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "iptflow.service.access"]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/courses", 201), ("GET", "/courses", 200)]
    assert lines[0]["request_id"] == "r-1" and lines[0]["role"] == "clinician"
    assert lines[0]["token"] == service.token_ids["clinician"]
    text = " ".join(r.getMessage() for r in caplog.records)
    # the fields that vary by run (time, duration, random request ids, token ids) may hold "47"
    varying = {"ts", "ms", "request_id", "token"}
    fixed = json.dumps([{k: v for k, v in x.items() if k not in varying} for x in lines])
    assert "47" not in fixed and "age" not in text and "patient" not in text and "ipt_" not in text
    assert "clinician-7" not in text  # neither the query string nor the body


def test_request_bodies_over_the_limit_are_413_and_write_nothing(service: Service) -> None:
    big = demo_events("c-1")[0] | {"note": "x" * 5000}
    response = service.client.post("/courses", json=big, headers=service.auth())
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit holds while reading
        yield json.dumps(big).encode()[:3000]
        yield json.dumps(big).encode()[3000:]

    streamed = service.client.post("/courses", content=chunks(),
                                   headers=service.auth(**{"Content-Type": "application/json"}))
    assert streamed.status_code == 413
    assert service.client.get("/courses", headers=service.auth()).json()["courses"] == []


def test_protocols_with_their_diagrams(service: Service) -> None:
    auth = service.auth("researcher")
    listed = service.client.get("/protocols", headers=auth).json()
    versions = {(p["id"], p["version"]) for p in listed["protocols"]}
    assert {("ipt-depression", "1.0.0"), ("ipt-depression", "2.0.0")} <= versions
    assert "adolescent" in {a["id"] for a in listed["adaptations"]}
    detail = service.client.get("/protocols/ipt-depression@1.0.0", headers=auth).json()
    assert detail["version"] == "1.0.0" and "stateDiagram-v2" in detail["mermaid"]
    assert any(s["name"] == "assessment" for s in detail["diagram"]["states"])
    adapted = service.client.get("/protocols/ipt-depression", params={"adapt": "adolescent"},
                                 headers=auth).json()
    assert adapted["adaptations"] == ["adolescent"]
    svg = service.client.get("/protocols/ipt-depression", params={"format": "svg"}, headers=auth)
    assert svg.headers["content-type"] == "image/svg+xml" and svg.text.startswith("<svg")
    mermaid = service.client.get("/protocols/ipt-depression", params={"format": "mermaid"},
                                 headers=auth)
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert "ipt-depression 2.0.0" in mermaid.text and "stateDiagram-v2" in mermaid.text
    missing = service.client.get("/protocols/no-such-protocol", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_protocol"
    bad_version = service.client.get("/protocols/ipt-depression@9.9.9", headers=auth)
    assert bad_version.status_code == 404


def test_published_openapi_document_is_the_apps() -> None:
    published = (ROOT / "docs" / "openapi.json").read_text()
    assert published == openapi_document(), (
        "docs/openapi.json is out of date: .venv/bin/python -c \"from iptflow.service.app import "
        "openapi_document; print(openapi_document(), end='')\" > docs/openapi.json")
    spec = json.loads(published)
    served = create_app(":memory:").openapi()
    assert spec == served
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (path, method)
            secured = operation.get("security", spec["security"])
            assert (secured == []) == (path in ("/healthz", "/readyz")), path
