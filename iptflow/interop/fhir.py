"""FHIR R4 export of a course (optional extra: ``pip install 'iptflow[fhir]'``).

:func:`course_bundle` turns an in-memory :class:`~iptflow.Course` into a FHIR ``Bundle`` of
type ``collection`` built with the ``fhir.resources.R4B`` models (R4B is R4-compatible for
every resource used here), so every resource is validated as it is built:

* ``Patient``: only an identifier, the course id (a pseudonym); no name, birth date or age;
* ``PlanDefinition``: the resolved protocol, its phases as actions (each with its states as
  nested actions, triggered by the events that enter them) and the adaptations named;
* ``CarePlan``: the course, its status from the course's state (see :data:`CAREPLAN_STATUS`);
* ``Condition``: the confirmed diagnosis;
* ``Encounter``: one per session held (``finished``) and per session missed (``cancelled``);
* ``Observation``: per measure, the total score; with items, one Observation per item and a
  panel Observation whose ``hasMember`` holds the items and the total. PHQ-9 uses LOINC
  (panel 44249-1, total 44261-6, items); other instruments use iptflow's own code system
  :data:`INSTRUMENT_SYSTEM`, included in the bundle as a ``CodeSystem`` (content fragment);
* ``Provenance``: one per accepted event, naming its actor and pointing at what it produced.

Every ``fullUrl`` is a ``urn:uuid`` derived from the course id, the event's ``seq`` and the
resource's role, so exporting the same course twice gives the same bundle, byte for byte.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from iptflow.engine.timeline import Step, phase_of, steps
from iptflow.errors import MissingExtra
from iptflow.interop.fhir_codes import (
    COURSE_SYSTEM,
    DIAGNOSIS_SYSTEM,
    EVENT_SYSTEM,
    FINGERPRINT_SYSTEM,
    INSTRUMENT_SYSTEM,
    LOINC,
    LOINC_PANELS,
    SESSION_SYSTEM,
    STATE_SYSTEM,
    TERMINOLOGY,
    actor_ref,
    careplan_status,
    coding,
    concept,
    instant,
    plan_url,
    readable,
    score_value,
    urn,
)

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.codesystem import CodeSystem
    from fhir.resources.R4B.resource import Resource

    from iptflow.engine.course import Course
    from iptflow.protocol.instruments import Instrument
    from iptflow.protocol.models import ResolvedProtocol


def _r4b() -> SimpleNamespace:
    """The ``fhir.resources.R4B`` models this export builds, by resource type.

    A lazy import of the optional extra ``iptflow[fhir]``: this module imports without it, and
    building a bundle without it raises MissingExtra (exit status 2 on the command line).
    """
    try:
        from fhir.resources.R4B.bundle import Bundle, BundleEntry
        from fhir.resources.R4B.careplan import CarePlan
        from fhir.resources.R4B.codesystem import CodeSystem
        from fhir.resources.R4B.condition import Condition
        from fhir.resources.R4B.encounter import Encounter
        from fhir.resources.R4B.observation import Observation
        from fhir.resources.R4B.patient import Patient
        from fhir.resources.R4B.plandefinition import PlanDefinition
        from fhir.resources.R4B.provenance import Provenance
    except ImportError as exc:  # pragma: no cover - exercised without the extra installed
        raise MissingExtra("FHIR export", "fhir", "fhir.resources") from exc
    return SimpleNamespace(
        Bundle=Bundle, BundleEntry=BundleEntry, CarePlan=CarePlan, CodeSystem=CodeSystem,
        Condition=Condition, Encounter=Encounter, Observation=Observation, Patient=Patient,
        PlanDefinition=PlanDefinition, Provenance=Provenance,
    )


class _Builder:
    def __init__(self, course: Course) -> None:
        self.r4b = _r4b()
        self.course = course
        self.cid = course.course_id
        self.protocol: ResolvedProtocol = course.protocol
        self.steps = steps(course)
        self.entries: list[tuple[str, Resource]] = []
        self.patient_url = urn(self.cid, 0, "patient")
        self.plan_url = urn(self.cid, 0, "plandefinition")
        self.codesystem_url = urn(self.cid, 0, "codesystem")
        self.careplan_url = urn(self.cid, 1, "careplan")
        self.condition_url = urn(self.cid, 0, "condition")
        self.subject = {"reference": self.patient_url}
        self.targets: dict[int, list[str]] = {}
        self.encounters: list[str] = []

    def add(self, url: str, resource: Resource) -> None:
        self.entries.append((url, resource))

    @staticmethod
    def rid(url: str) -> str:
        return url.removeprefix("urn:uuid:")

    # -- resources -------------------------------------------------------------------------------
    def patient(self) -> None:
        self.add(self.patient_url, self.r4b.Patient(
            id=self.rid(self.patient_url),
            identifier=[{"system": COURSE_SYSTEM, "value": self.cid}],
        ))

    def plan_definition(self) -> None:
        p = self.protocol
        registry = self.course.compiled.registry
        phases: dict[str, list[Any]] = {}
        for state in p.states:
            phases.setdefault(state.phase or state.name, []).append(state)
        actions = []
        previous = None
        for phase, states in phases.items():
            nested = []
            for state in states:
                entering = sorted({t.event for t in p.transitions if t.dest == state.name})
                desc = state.description or readable(state.name)
                if state.added_by:
                    desc += f" (added by adaptation {state.added_by})"
                if state.final:
                    desc += " (final)"
                nested.append({
                    "id": f"state-{state.name}",
                    "title": state.name,
                    "description": desc,
                    "code": [concept(STATE_SYSTEM, state.name, readable(state.name))],
                    **({"trigger": [{"type": "named-event", "name": e} for e in entering]}
                       if entering else {}),
                })
            action: dict[str, Any] = {
                "id": f"phase-{phase}",
                "title": f"{readable(phase)} phase" if phase != "end" else "end of the course",
                "groupingBehavior": "logical-group",
                "selectionBehavior": "exactly-one" if all(s.final for s in states) else "all",
                "action": nested,
            }
            if previous is not None:
                action["relatedAction"] = [{"actionId": previous, "relationship": "after-end"}]
            previous = action["id"]
            actions.append(action)
        artifacts = [{"type": "derived-from", "label": p.base, "display": f"base protocol {p.base}"}]
        if p.variant:
            artifacts.append({"type": "derived-from", "label": p.variant, "display": f"variant {p.variant}"})
        for aid in p.adaptations:
            entry = registry.adaptations.get(aid)
            title = entry[0].title if entry else aid
            plugin = f" (plugin {entry[1]})" if entry else ""
            artifacts.append({"type": "composed-of", "label": aid,
                              "display": f"adaptation {aid}: {title}{plugin}"})
        rng = p.session_range
        name = "".join(part.capitalize() for part in p.id.replace("_", "-").split("-") if part)
        self.add(self.plan_url, self.r4b.PlanDefinition(
            id=self.rid(self.plan_url),
            url=plan_url(p),
            version=p.version,
            identifier=[{"system": FINGERPRINT_SYSTEM, "value": p.fingerprint}],
            name=name if name[:1].isalpha() else "Protocol" + name,
            title=p.title + (f" + {', '.join(p.adaptations)}" if p.adaptations else ""),
            type=concept(TERMINOLOGY + "plan-definition-type", "clinical-protocol", "Clinical Protocol"),
            status="active",
            description=p.description or p.title,
            usage=(f"{rng.min}-{rng.max} sessions, response reviewed at session {p.review_session}; "
                   f"indications: {', '.join(p.indications)}; primary instruments: "
                   f"{', '.join(p.primary_instruments)}; adaptations: {', '.join(p.adaptations) or 'none'}"),
            relatedArtifact=artifacts,
            action=actions,
        ))

    def code_system(self) -> None:
        self.add(self.codesystem_url, instrument_code_system(self.protocol, self.rid(self.codesystem_url)))

    def condition(self) -> None:
        diagnoses = [s for s in self.steps if s.type == "diagnosis_confirmed"]
        if not diagnoses:
            return
        last = diagnoses[-1]
        diagnosis = last.event["diagnosis"]
        psychotic = bool(last.event.get("psychotic_features", False))
        for s in diagnoses:
            self.targets[s.seq] = [self.condition_url]
        self.add(self.condition_url, self.r4b.Condition(
            id=self.rid(self.condition_url),
            clinicalStatus=concept(TERMINOLOGY + "condition-clinical", "active", "Active"),
            verificationStatus=concept(TERMINOLOGY + "condition-ver-status", "confirmed", "Confirmed"),
            category=[concept(TERMINOLOGY + "condition-category", "encounter-diagnosis",
                               "Encounter Diagnosis")],
            code=concept(DIAGNOSIS_SYSTEM, diagnosis, readable(diagnosis), readable(diagnosis)),
            subject=self.subject,
            recordedDate=instant(last.at),
            **({"recorder": actor_ref(last.actor)} if last.actor else {}),
            note=[{"text": "with psychotic features" if psychotic else "without psychotic features"}],
        ))

    def encounters_for_sessions(self) -> None:
        number = 0
        for s in self.steps:
            if s.type not in ("session_held", "session_missed"):
                continue
            url = urn(self.cid, s.seq, "encounter")
            phase = readable(phase_of(self.course, s.state_before or s.state))
            if s.type == "session_held":
                number += 1
                techniques = s.event.get("techniques") or []
                text = f"IPT session {number} ({phase} phase)"
                if techniques:
                    text += "; techniques: " + ", ".join(techniques)
                extra: dict[str, Any] = {
                    "status": "finished",
                    "identifier": [{"system": SESSION_SYSTEM, "value": f"{self.cid}/{number}"}],
                }
            else:
                text = f"IPT session missed ({phase} phase)"
                extra = {"status": "cancelled"}
            has_condition = any(
                x.type == "diagnosis_confirmed" and x.seq < s.seq for x in self.steps
            )
            self.add(url, self.r4b.Encounter(
                id=self.rid(url),
                class_fhir=coding(TERMINOLOGY + "v3-ActCode",
                                   "AMB", "ambulatory"),
                type=[concept(EVENT_SYSTEM, s.type, readable(s.type), text)],
                subject=self.subject,
                period={"start": instant(s.at)},
                **({"participant": [{"individual": actor_ref(s.actor)}]} if s.actor else {}),
                **({"reasonReference": [{"reference": self.condition_url}]} if has_condition else {}),
                **extra,
            ))
            self.encounters.append(url)
            self.targets[s.seq] = [url]

    def observations(self) -> None:
        for s in self.steps:
            if s.type != "measure_recorded":
                continue
            name = s.event["instrument"]
            instrument = self.protocol.instruments[name]
            self.targets[s.seq] = self.measure(s, name, instrument)

    def measure(self, s: Step, name: str, instrument: Instrument) -> list[str]:
        panel = LOINC_PANELS.get(instrument.loinc or "")
        common: dict[str, Any] = {
            "status": "final",
            "category": [concept(TERMINOLOGY + "observation-category", "survey", "Survey")],
            "subject": self.subject,
            "effectiveDateTime": instant(s.at),
            **({"performer": [actor_ref(s.actor)]} if s.actor else {}),
        }
        total_codings = [coding(INSTRUMENT_SYSTEM, name, f"{instrument.title} total score")]
        if instrument.loinc:
            total_codings.insert(0, coding(LOINC, instrument.loinc, panel["total"] if panel else None))
        total_url = urn(self.cid, s.seq, "total")
        urls = [total_url]
        total = self.r4b.Observation(
            id=self.rid(total_url),
            code={"coding": total_codings, "text": f"{instrument.title} total score"},
            **score_value(s.event["score"]),
            **common,
        )
        items = s.event.get("items")
        if items:
            positions = list(enumerate(items, start=1))
        elif s.event.get("item9") is not None:  # protocol 2.0.0: the suicide item sent alone
            positions = [(9, s.event["item9"])]
        else:
            self.add(total_url, total)
            return urls
        panel_url = urn(self.cid, s.seq, "panel")
        members = []
        item_resources = []
        for pos, value in positions:
            url = urn(self.cid, s.seq, f"item-{pos}")
            codings = [coding(INSTRUMENT_SYSTEM, f"{name}-item-{pos}", f"{instrument.title} item {pos}")]
            if panel:
                codings.insert(0, coding(LOINC, panel["items"][pos - 1]))
            item_resources.append((url, self.r4b.Observation(
                id=self.rid(url),
                code={"coding": codings, "text": f"{instrument.title} item {pos}"},
                valueInteger=value,
                **common,
            )))
            members.append({"reference": url})
        panel_codings = [coding(INSTRUMENT_SYSTEM, f"{name}-panel", f"{instrument.title} panel")]
        if panel:
            panel_codings.insert(0, coding(LOINC, *panel["panel"]))
        self.add(panel_url, self.r4b.Observation(
            id=self.rid(panel_url),
            code={"coding": panel_codings, "text": instrument.title},
            hasMember=[*members, {"reference": total_url}],
            **common,
        ))
        self.add(total_url, total)
        for url, resource in item_resources:
            self.add(url, resource)
        return [panel_url, total_url, *(u for u, _ in item_resources)]

    def care_plan(self) -> None:
        course = self.course
        facts = course.facts
        first, last = self.steps[0], self.steps[-1]
        period: dict[str, Any] = {"start": instant(first.at)}
        if course.is_closed:
            period["end"] = instant(last.at)
        notes = [{"text": f"state: {course.state} ({readable(phase_of(course, course.state))} phase); "
                          f"sessions held: {facts.sessions_held}; sessions missed: {facts.missed_sessions}"}]
        if facts.planned_sessions is not None:
            notes.append({"text": f"treatment contract: {facts.planned_sessions} sessions"})
        if facts.maintenance:
            notes.append({"text": f"maintenance contract: {facts.maintenance['planned_sessions']} "
                                  f"sessions, {facts.maintenance['frequency']}"})
        if facts.problem_areas:
            areas = [readable(a["area"]) + (f" ({a['stage']})" if "stage" in a else "")
                     for a in facts.problem_areas]
            notes.append({"text": "problem areas: " + ", ".join(areas)})
        if course.open_reviews:
            notes.append({"text": "open reviews: " + ", ".join(course.open_reviews)})
        ending = facts.records.get("ending")
        if ending:
            to = f" to {ending['to']}" if ending.get("to") else ""
            text = f"{readable(ending['type'])}{to}: {ending['reason']}"
            notes.append({"time": instant(last.at), "text": text})
        for dev in course.deviations:
            notes.append({"time": instant(dev.at), "text": f"deviation {dev.code}: {dev.message}"})
        outcome = course.outcome
        if outcome is not None:
            change = "n/a" if outcome.change_pct is None else f"{outcome.change_pct:+.1f}%"
            notes.append({"text": f"outcome ({outcome.instrument}): {readable(outcome.status)}, baseline "
                                  f"{outcome.baseline}, latest {outcome.latest}, change {change}"})
        baseline = facts.baseline  # the outcome instrument (protocol 2.0.0: the outcome order)
        status = careplan_status(course)
        if facts.sessions_held == 0 and not course.is_closed:
            detail_status = "not-started"
        elif status == "completed":
            detail_status = "completed"
        elif status == "revoked":
            detail_status = "stopped"
        else:
            detail_status = "in-progress"
        planned = facts.planned_sessions
        rng = self.protocol.session_range
        activity: dict[str, Any] = {
            "detail": {
                "kind": "Appointment",
                "code": concept(EVENT_SYSTEM, "session_held", "session held", "IPT sessions"),
                "status": detail_status,
                "scheduledString": (f"{planned} sessions (contract)" if planned is not None
                                    else f"{rng.min}-{rng.max} sessions (protocol range)"),
            }
        }
        if self.encounters:
            activity["outcomeReference"] = [{"reference": u} for u in self.encounters]
        if baseline is not None:
            activity["outcomeCodeableConcept"] = [self.outcome_concept(baseline.instrument, outcome)]
        has_condition = any(s.type == "diagnosis_confirmed" for s in self.steps)
        self.entries.insert(3, (self.careplan_url, self.r4b.CarePlan(
            id=self.rid(self.careplan_url),
            identifier=[{"system": COURSE_SYSTEM, "value": self.cid}],
            instantiatesCanonical=[f"{plan_url(self.protocol)}|{self.protocol.version}"],
            status=status,
            intent="plan",
            title=f"IPT course {self.cid}",
            description=f"{self.protocol.title}, course {self.cid}",
            subject=self.subject,
            period=period,
            created=instant(first.at),
            **({"author": actor_ref(first.actor)} if first.actor else {}),
            **({"addresses": [{"reference": self.condition_url}]} if has_condition else {}),
            activity=[activity],
            note=notes,
        )))

    def outcome_concept(self, name: str, outcome: Any) -> dict[str, Any]:
        """The outcome instrument, coded like its total score (LOINC where the instrument has a
        code, iptflow's instrument code system otherwise), and the outcome in words."""
        instrument = self.protocol.instruments[name]
        panel = LOINC_PANELS.get(instrument.loinc or "")
        codings = [coding(INSTRUMENT_SYSTEM, name, f"{instrument.title} total score")]
        if instrument.loinc:
            codings.insert(0, coding(LOINC, instrument.loinc, panel["total"] if panel else None))
        text = f"outcome measured on {instrument.title}"
        if outcome is not None:
            text += f": {readable(outcome.status)} ({outcome.baseline} -> {outcome.latest})"
        return {"coding": codings, "text": text}

    def provenances(self) -> None:
        registry = self.course.compiled.registry
        for s in self.steps:
            url = urn(self.cid, s.seq, "provenance")
            targets = self.targets.get(s.seq, [self.careplan_url])
            et = registry.event_types.get(s.type)
            display = et.description if et and et.description else readable(s.type)
            if s.actor:
                agent = {"type": concept(TERMINOLOGY + "provenance-participant-type", "author", "Author"),
                         "who": actor_ref(s.actor)}
            else:
                agent = {"type": concept(TERMINOLOGY + "provenance-participant-type", "assembler",
                                          "Assembler"),
                         "who": {"type": "Device", "display": "iptflow (the event named no actor)"}}
            self.add(url, self.r4b.Provenance(
                id=self.rid(url),
                target=[{"reference": t} for t in targets],
                occurredDateTime=instant(s.at),
                recorded=instant(s.at),
                activity=concept(EVENT_SYSTEM, s.type, display, f"event {s.seq}: {s.type}"),
                agent=[agent],
            ))

    def build(self) -> Bundle:
        self.patient()
        self.plan_definition()
        self.code_system()
        self.condition()
        self.encounters_for_sessions()
        self.observations()
        self.care_plan()
        self.provenances()
        return self.r4b.Bundle(
            id=self.rid(urn(self.cid, 0, "bundle")),
            identifier={"system": COURSE_SYSTEM, "value": self.cid},
            type="collection",
            timestamp=instant(self.steps[-1].at),
            entry=[self.r4b.BundleEntry(fullUrl=url, resource=res) for url, res in self.entries],
        )


def instrument_code_system(protocol: ResolvedProtocol, resource_id: str | None = None) -> CodeSystem:
    """iptflow's instrument codes for a resolved protocol: ``ID`` (total score),
    ``ID-item-N`` (item N, 1-based) and ``ID-panel`` (all items and the total)."""
    concepts = []
    for name, inst in sorted(protocol.instruments.items()):
        upper = "" if inst.max is None else f"-{inst.max:g}"
        concepts.append({"code": name, "display": f"{inst.title} total score",
                         "definition": f"total score of {inst.title}, {inst.min:g}{upper}"})
        if inst.items:
            concepts.append({"code": f"{name}-panel", "display": f"{inst.title} panel",
                             "definition": f"the {inst.items} items and the total score of {inst.title}"})
            for pos in range(1, inst.items + 1):
                lo, hi = inst.item_bounds(pos)
                concepts.append({"code": f"{name}-item-{pos}", "display": f"{inst.title} item {pos}",
                                 "definition": f"item {pos} of {inst.title}, {lo}-{hi}"})
    return _r4b().CodeSystem(
        id=resource_id,
        url=INSTRUMENT_SYSTEM,
        name="IptflowInstruments",
        title="iptflow rating-scale instruments",
        status="active",
        content="fragment",
        caseSensitive=True,
        description="Instruments of the resolved protocol this course runs on: total scores, "
                    "items and panels. PHQ-9 is also coded with LOINC.",
        concept=concepts,
    )


def course_bundle(course: Course) -> Bundle:
    """The course as a FHIR R4 ``Bundle`` (type ``collection``); see the module docstring."""
    return _Builder(course).build()


def bundle_json(course: Course, indent: int | None = 2) -> str:
    """The bundle as JSON text (deterministic: the same course gives the same text)."""
    return course_bundle(course).model_dump_json(indent=indent, exclude_none=True)
