"""The FHIR export names the outcome instrument (LOINC where it has a code, iptflow's own
instrument code system otherwise) and exports a PHQ-9 item 9 sent alone (protocol 2.0.0)."""

from __future__ import annotations

import json

import pytest
from spec_support import Driver, phq9

pytest.importorskip("fhir.resources")

from iptflow.interop.fhir import bundle_json  # noqa: E402
from iptflow.interop.fhir_codes import INSTRUMENT_SYSTEM, LOINC  # noqa: E402


def bundle(d: Driver) -> dict:
    return json.loads(bundle_json(d.course))


def careplan_outcome(b: dict) -> dict:
    (plan,) = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "CarePlan"]
    (concept,) = plan["activity"][0]["outcomeCodeableConcept"]
    return concept


def test_the_outcome_instrument_is_coded_with_loinc_where_it_has_a_code() -> None:
    d = Driver(protocol="ipt-depression")
    d.to_initial(phq9(18))
    d.ok("measure_recorded", **phq9(8))
    concept = careplan_outcome(bundle(d))
    assert concept["coding"][0] == {"system": LOINC, "code": "44261-6", "display":
                                    "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"}
    assert concept["text"] == "outcome measured on Patient Health Questionnaire-9: response (18 -> 8)"


def test_an_instrument_without_loinc_is_coded_in_iptflows_system() -> None:
    d = Driver(protocol="ipt-depression", adaptations=["ptsd"])
    d.ok("measure_recorded", **phq9(15))
    d.ok("measure_recorded", instrument="caps5", score=50)
    d.ok("diagnosis_confirmed", diagnosis="ptsd")
    d.ok("treatment_started")
    d.ok("measure_recorded", instrument="caps5", score=30)
    concept = careplan_outcome(bundle(d))
    assert [c["system"] for c in concept["coding"]] == [INSTRUMENT_SYSTEM]
    assert concept["coding"][0]["code"] == "caps5"
    assert concept["text"].endswith(": response (50 -> 30)")


def test_item9_sent_alone_is_exported_as_the_phq9_item_9_observation() -> None:
    d = Driver(protocol="ipt-depression")
    d.ok("measure_recorded", instrument="phq9", score=14, item9=2)
    observations = [e["resource"] for e in bundle(d)["entry"]
                    if e["resource"]["resourceType"] == "Observation"]
    item9 = [o for o in observations if o["code"]["text"].endswith("item 9")]
    assert len(item9) == 1 and item9[0]["valueInteger"] == 2
    assert item9[0]["code"]["coding"][0] == {"system": LOINC, "code": "44260-8"}
    panel = [o for o in observations if "hasMember" in o]
    assert len(panel) == 1 and len(panel[0]["hasMember"]) == 2  # item 9 and the total
