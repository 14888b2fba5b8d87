"""schemathesis against the published OpenAPI document (docs/openapi.json), sent to the app
in-process on a real store: no generated request, valid or not, gets a 5xx, an undocumented
status, content type or header, or a body that breaks its documented schema. Bounded: at
most 20 examples per operation, no shrinking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_support import Service, running

from iptflow.research.demo import demo_events

ROOT = Path(__file__).parent.parent
schema = schemathesis.openapi.from_dict(json.loads((ROOT / "docs" / "openapi.json").read_text()))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]

ROLE_BY_PATH = {"/tokens": "admin", "/tokens/{token_id}": "admin", "/verify": "auditor"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    url = str(tmp_path_factory.mktemp("schema") / "fuzzed.db")
    with running(url) as svc:
        for cid in ("c-1", "c-2"):
            svc.open(cid)
        svc.event("c-1", demo_events("c-1")[1])
        yield svc


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers(case: schemathesis.Case, service: Service) -> None:
    role = ROLE_BY_PATH.get(case.path, "clinician")
    kwargs = case.as_transport_kwargs(base_url="http://testserver",
                                      headers=service.auth(role))
    sent = {k: kwargs[k] for k in ("method", "url", "headers", "params", "json") if kwargs.get(k)
            is not None}
    if isinstance(kwargs.get("data"), (bytes, str)):
        sent["content"] = kwargs["data"]
    response = service.client.request(**sent)
    case.validate_response(response, checks=CHECKS)
