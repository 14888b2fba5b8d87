"""FHIR R4 export: resources validate with fhir.resources.R4B, references resolve, codes and values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from iptflow import Course
from iptflow.engine.replay import replay_file
from iptflow.interop.fhir import LOINC, bundle_json, course_bundle
from iptflow.research.demo import demo_events

COURSES = Path(__file__).parent / "courses"
PHQ9_ITEM_LOINC = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
                   "44253-3", "44260-8"]


def run(events: list[dict[str, Any]]) -> Course:
    course = Course.open(events[0])
    for event in events[1:]:
        result = course.apply(event)
        assert result.ok, result
    return course


def as_dict(course: Course) -> dict[str, Any]:
    return json.loads(bundle_json(course))


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["reference"]] if isinstance(node.get("reference"), str) else []
        for value in node.values():
            out += references(value)
        return out
    if isinstance(node, list):
        return [r for item in node for r in references(item)]
    return []


def codes(resource: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in resource["code"]["coding"] if c["system"] == system]


@pytest.fixture(scope="module")
def demo() -> Course:
    return run(demo_events())


@pytest.fixture(scope="module")
def demo_bundle(demo: Course) -> dict[str, Any]:
    return as_dict(demo)


def bipolar_course() -> Course:
    result = replay_file(COURSES / "bipolar" / "complete.course.jsonl")
    assert result.course is not None
    return result.course


def discontinued_course() -> Course:
    ev = demo_events("drop-1")[:10]  # opened .. 3 sessions in initial
    ev += [
        {"type": "session_missed", "at": "2025-01-27T09:00:00Z"},
        {"type": "session_missed", "at": "2025-02-03T09:00:00Z", "actor": "clinician-9"},
        {"type": "course_discontinued", "at": "2025-02-04T09:00:00Z", "reason": "moved away"},
    ]
    return run(ev)


@pytest.mark.parametrize("make", [lambda: run(demo_events()), bipolar_course, discontinued_course],
                         ids=["demo", "bipolar", "discontinued"])
def test_every_resource_and_the_bundle_validate_and_references_resolve(make: Any) -> None:
    course = make()
    assert isinstance(course_bundle(course), Bundle)
    text = bundle_json(course)
    bundle = Bundle.model_validate_json(text)  # the bundle as a whole, re-read
    data = json.loads(text)
    assert data["type"] == "collection"
    full_urls = [e["fullUrl"] for e in data["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    for entry in data["entry"]:
        resource = entry["resource"]
        model = get_fhir_model_class(resource["resourceType"])
        model.model_validate(resource)  # each resource on its own
        assert entry["fullUrl"] == "urn:uuid:" + resource["id"]
    refs = references(data)
    assert refs, "a bundle without references tests nothing"
    assert set(refs) <= set(full_urls)
    assert len(bundle.entry) == len(data["entry"])
    # one Provenance per accepted event, each naming what it produced
    provenances = resources(data, "Provenance")
    assert len(provenances) == len(course.history)
    assert [p["activity"]["coding"][0]["code"] for p in provenances] == [e["type"] for e in course.history]


def test_export_is_reproducible(demo: Course) -> None:
    again = run(demo_events())
    assert bundle_json(again) == bundle_json(demo)
    other = run(demo_events("demo-002"))
    ids = {e["fullUrl"] for e in as_dict(other)["entry"]}
    assert ids.isdisjoint(e["fullUrl"] for e in as_dict(demo)["entry"])


def test_phq9_measures_carry_loinc_codes_and_values(demo: Course, demo_bundle: dict[str, Any]) -> None:
    observations = resources(demo_bundle, "Observation")
    totals = [o for o in observations if "44261-6" in codes(o, LOINC)]
    measures = [e for e in demo.history if e["type"] == "measure_recorded"]
    assert [o["valueInteger"] for o in totals] == [m["score"] for m in measures]
    assert [o["effectiveDateTime"] for o in totals] == [m["at"] for m in measures]
    by_url = {e["fullUrl"]: e["resource"] for e in demo_bundle["entry"]}
    panels = [o for o in observations if "44249-1" in codes(o, LOINC)]
    assert len(panels) == len(measures)
    for panel, measure, total in zip(panels, measures, totals, strict=True):
        assert "valueInteger" not in panel
        members = [by_url[m["reference"]] for m in panel["hasMember"]]
        items = members[:-1]
        assert members[-1] is not None and members[-1]["id"] == total["id"]
        assert [codes(o, LOINC)[0] for o in items] == PHQ9_ITEM_LOINC
        assert [o["valueInteger"] for o in items] == measure["items"]
        assert all(o["subject"]["reference"] == panel["subject"]["reference"] for o in members)


def test_other_instruments_use_the_iptflow_code_system() -> None:
    data = as_dict(bipolar_course())
    observations = resources(data, "Observation")
    srm = [o for o in observations if codes(o, "urn:iptflow:instrument") == ["srm"]]
    assert srm and all(not codes(o, LOINC) for o in srm)
    assert srm[0]["valueQuantity"]["value"] == 3.5
    ymrs_items = [o for o in observations if codes(o, "urn:iptflow:instrument")[0].startswith("ymrs-item-")]
    assert ymrs_items and all(not codes(o, LOINC) for o in ymrs_items)
    (codesystem,) = resources(data, "CodeSystem")
    defined = {c["code"] for c in codesystem["concept"]}
    used = {c["code"] for o in observations for c in o["code"]["coding"] if c["system"] == codesystem["url"]}
    assert used <= defined


def test_plan_definition_names_phases_and_adaptations() -> None:
    course = bipolar_course()
    data = as_dict(course)
    (plan,) = resources(data, "PlanDefinition")
    phases = [a["id"] for a in plan["action"]]
    expected = []
    for s in course.protocol.states:
        if f"phase-{s.phase}" not in expected:
            expected.append(f"phase-{s.phase}")
    assert phases == expected
    states = {n["title"]: n for a in plan["action"] for n in a["action"]}
    assert set(states) == {s.name for s in course.protocol.states}
    assert "added by adaptation bipolar" in states["preventive"]["description"]
    assert {"type": "named-event", "name": "preventive_phase_started"} in states["preventive"]["trigger"]
    composed = [r["label"] for r in plan["relatedArtifact"] if r["type"] == "composed-of"]
    assert composed == ["bipolar"]
    assert plan["identifier"][0]["value"] == course.protocol.fingerprint
    (careplan,) = resources(data, "CarePlan")
    assert careplan["instantiatesCanonical"] == [f"{plan['url']}|{plan['version']}"]


def test_careplan_status_encounters_condition_and_provenance_actor() -> None:
    course = discontinued_course()
    data = as_dict(course)
    (careplan,) = resources(data, "CarePlan")
    assert careplan["status"] == "revoked"
    assert careplan["period"]["end"] == "2025-02-04T09:00:00Z"
    assert any("moved away" in n["text"] for n in careplan["note"])
    encounters = resources(data, "Encounter")
    assert [e["status"] for e in encounters] == ["finished"] * 3 + ["cancelled"] * 2
    (condition,) = resources(data, "Condition")
    assert condition["code"]["coding"][0]["code"] == "major_depressive_disorder"
    (patient,) = resources(data, "Patient")
    assert set(patient) == {"resourceType", "id", "identifier"}
    assert patient["identifier"] == [{"system": "urn:iptflow:course", "value": "drop-1"}]
    provenances = resources(data, "Provenance")
    missed = provenances[-2]
    assert missed["agent"][0]["who"]["identifier"]["value"] == "clinician-9"
    assert missed["target"] == [{"reference": [e for e in data["entry"]
                                               if e["resource"]["id"] == encounters[-1]["id"]][0]["fullUrl"]}]
    unnamed = provenances[-1]
    assert unnamed["agent"][0]["type"]["coding"][0]["code"] == "assembler"


def test_careplan_status_follows_the_course_state(demo: Course) -> None:
    events = demo_events("states")
    course = run(events[:1])
    assert resources(as_dict(course), "CarePlan")[0]["status"] == "draft"
    course = run(events[:5])
    assert course.state == "initial"
    assert resources(as_dict(course), "CarePlan")[0]["status"] == "active"
    assert resources(as_dict(demo), "CarePlan")[0]["status"] == "completed"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from iptflow.store.api import Store

    path = tmp_path_factory.mktemp("fhir") / "courses.db"
    events = demo_events()
    with Store.open(path) as store:
        assert store.open_course(events[0]).ok
        for event in events[1:]:
            assert store.apply(events[0]["course_id"], event).ok
    return path


def test_cli_exports_a_stored_course(db: Path, tmp_path: Path, demo: Course) -> None:
    from click.testing import CliRunner

    from iptflow.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["export", "fhir", "--db", str(db), "demo-001"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == as_dict(demo)
    out = tmp_path / "bundle.json"
    result = runner.invoke(cli, ["export", "fhir", "--db", str(db), "demo-001", "--out", str(out)])
    assert result.exit_code == 0
    Bundle.model_validate_json(out.read_text(encoding="utf-8"))
    result = runner.invoke(cli, ["export", "fhir", "--db", str(db), "nope"])
    assert result.exit_code == 2 and "no course 'nope'" in result.output


def test_cli_without_the_extra_says_what_to_install(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from click.testing import CliRunner

    from iptflow.cli import cli

    monkeypatch.setitem(sys.modules, "fhir.resources.R4B.bundle", None)
    monkeypatch.delitem(sys.modules, "iptflow.interop.fhir", raising=False)
    result = CliRunner().invoke(cli, ["export", "fhir", "--db", str(db), "demo-001"])
    assert result.exit_code == 2
    assert "pip install 'iptflow[fhir]'" in result.output
    assert "Traceback" not in result.output


def test_docs_show_entries_exactly_as_exported(demo_bundle: dict[str, Any]) -> None:
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "fhir.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", doc, re.S)]
    shown = blocks[0]
    assert {k: v for k, v in shown.items() if k != "entry"} == {
        k: v for k, v in demo_bundle.items() if k != "entry"}
    exported = {e["fullUrl"]: e for e in demo_bundle["entry"]}
    assert len(shown["entry"]) >= 5
    for entry in shown["entry"]:
        assert entry == exported[entry["fullUrl"]]
    (plan,) = resources(demo_bundle, "PlanDefinition")
    assert blocks[1] == dict(plan, action=plan["action"][:2])
    (codesystem,) = resources(demo_bundle, "CodeSystem")
    assert blocks[2] == dict(codesystem, concept=codesystem["concept"][:4])
