"""JSON Schemas: published copies are current, shipped files validate, broken ones are rejected."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from iptflow import default_registry
from iptflow.cli import cli
from iptflow.interop.schemas import KINDS, schema_for, schema_text

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = sorted((ROOT / "protocols").glob("*/*.toml"))
ADAPTATIONS = sorted((ROOT / "plugins").glob("*.toml"))
VARIANTS = sorted((ROOT / "examples").glob("**/variants/*.toml"))
COURSE_FILES = sorted((ROOT / "tests" / "courses").glob("**/*.jsonl"))


def validator(kind: str, registry: Any = None) -> Draft202012Validator:
    schema = schema_for(kind, registry)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(v: Draft202012Validator, data: Any) -> list[str]:
    return [e.message for e in v.iter_errors(data)]


@pytest.mark.parametrize("kind", KINDS)
def test_published_schemas_are_current(kind: str) -> None:
    published = ROOT / "docs" / "schemas" / f"{kind}.json"
    assert published.read_text(encoding="utf-8") == schema_text(kind), (
        f"{published} is stale: run python -m iptflow.interop.schemas docs/schemas"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_cli_prints_the_schema(kind: str) -> None:
    result = CliRunner().invoke(cli, ["schema", kind])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == schema_for(kind)


def test_shipped_protocols_and_adaptations_validate() -> None:
    assert PROTOCOLS and ADAPTATIONS
    protocol = validator("protocol")
    for path in PROTOCOLS:
        assert errors(protocol, tomllib.loads(path.read_text())) == [], path
    adaptation = validator("adaptation")
    for path in ADAPTATIONS:
        assert errors(adaptation, tomllib.loads(path.read_text())) == [], path


def test_variants_validate() -> None:
    variant = validator("variant")
    for path in VARIANTS:
        assert errors(variant, tomllib.loads(path.read_text())) == [], path
    written = {"id": "ipt-b", "version": "1.0.0", "title": "brief", "extends": "ipt-depression",
               "session_range": {"min": 8, "max": 8},
               "deviations": {"long_initial_phase": {"max_sessions": 2}}}
    assert errors(variant, written) == []


def test_every_course_file_line_validates() -> None:
    assert COURSE_FILES
    line_schema = validator("course-file", default_registry())
    checked = 0
    for path in COURSE_FILES:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if text.strip():
                assert errors(line_schema, json.loads(text)) == [], f"{path}:{number}"
                checked += 1
    assert checked > 100


def test_broken_files_are_rejected() -> None:
    protocol = tomllib.loads(PROTOCOLS[0].read_text())
    v = validator("protocol")
    broken = dict(protocol, sesion_range={"min": 1, "max": 2})  # a misspelt key
    assert errors(v, broken)
    missing = {k: val for k, val in protocol.items() if k != "states"}
    assert any("states" in m for m in errors(v, missing))
    wrong_type = dict(protocol, review_session="eight")
    assert errors(v, wrong_type)
    variant = validator("variant")
    assert errors(variant, {"id": "x", "version": "1", "title": "t"})  # no extends


@pytest.mark.parametrize(
    "line",
    [
        {"type": "session_held", "at": "2025-01-06T09:00:00"},  # naive time
        {"type": "session_held", "at": "2025-01-06T09:00:00Z", "number": 1.5, "expect_error": "guard_failed"},
        {"type": "session_held", "at": "2025-01-06T09:00:00Z", "expect_error": "oops"},
        {"type": "measure_recorded", "at": "2025-01-06T09:00:00Z", "instrument": "phq9"},  # no score
        {"type": "no_such_event", "at": "2025-01-06T09:00:00Z"},
        {"expect": {"stat": "middle"}},
        {"expect": {"state": "middle"}, "type": "session_held"},
    ],
)
def test_broken_course_file_lines_are_rejected(line: dict[str, Any]) -> None:
    assert errors(validator("course-file", default_registry()), line)


def test_event_schema_is_the_base_events_unless_plugins_are_asked_for() -> None:
    adaptation_event = {"type": "pharmacotherapy_confirmed", "at": "2025-01-06T09:00:00Z", "medication": "x"}
    assert errors(validator("event"), adaptation_event)
    assert errors(validator("event", default_registry()), adaptation_event) == []
    assert errors(validator("event"), {"type": "risk_flagged", "at": "2025-01-06T09:00:00+02:00",
                                       "reason": "item 9"}) == []
    result = CliRunner().invoke(cli, ["schema", "event", "--plugins"])
    assert result.exit_code == 0
    assert json.loads(result.output) == schema_for("event", default_registry())
