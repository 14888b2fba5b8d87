"""FHIR R4 ``Task`` resources for a worklist's due items (optional extra ``iptflow[fhir]``).

Each ``urgent`` or ``due`` item of a :class:`~iptflow.store.worklist.Worklist` (``info`` items
are not tasks) becomes a ``Task`` built with the ``fhir.resources.R4B`` models, so it is
validated as it is built (docs/worklist.md#fhir):

* ``status`` ``requested``, ``intent`` ``plan``; ``priority`` ``urgent`` for urgent items,
  ``routine`` for due ones;
* ``code``: the item's kind in iptflow's code system ``urn:iptflow:agenda``; ``description``:
  its message; ``input``: the events that would resolve it (``urn:iptflow:event``);
* ``for``: the patient and ``focus``: the course's CarePlan, both by the course id
  (``urn:iptflow:course``), the identifiers the course's FHIR bundle gives them;
* ``executionPeriod.start``: the item's due time (the worklist's time for an item without
  one); ``authoredOn``: the worklist's time; ``owner``: the course's clinician, if known.

Every id is a UUID derived from the course id, the item's kind, its resolving events and its due
time, so exporting the same worklist twice gives the same bundle.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from iptflow.errors import MissingExtra
from iptflow.interop.fhir_codes import COURSE_SYSTEM, EVENT_SYSTEM, NAMESPACE, actor_ref, concept, instant

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.task import Task

    from iptflow.store.worklist import Worklist, WorklistEntry

AGENDA_SYSTEM = "urn:iptflow:agenda"
"""The code system of agenda item kinds (``review_open``, ``session_overdue``, ...)."""

PRIORITY = {"urgent": "urgent", "due": "routine"}
"""Task.priority by item severity; only these severities are exported."""


def _models() -> tuple[Any, Any]:
    try:
        from fhir.resources.R4B.bundle import Bundle
        from fhir.resources.R4B.task import Task
    except ImportError as exc:  # pragma: no cover - exercised without the extra installed
        raise MissingExtra("FHIR export", "fhir", "fhir.resources") from exc
    return Bundle, Task


def task_id(entry: WorklistEntry) -> str:
    item = entry.item
    due = instant(item.due) if item.due else ""
    key = f"{entry.course_id}|task|{item.kind}|{','.join(item.resolved_by)}|{due}"
    return str(uuid.uuid5(NAMESPACE, key))


def item_task(entry: WorklistEntry, worklist: Worklist) -> Task:
    """The Task of one urgent or due worklist entry (``ValueError`` for an info item)."""
    item = entry.item
    if item.severity not in PRIORITY:
        raise ValueError(f"{item.kind}: only urgent and due items are tasks, not {item.severity}")
    _, task_model = _models()
    course = {"system": COURSE_SYSTEM, "value": entry.course_id}
    data: dict[str, Any] = {
        "id": task_id(entry),
        "identifier": [{"system": COURSE_SYSTEM, "value": entry.course_id}],
        "status": "requested",
        "intent": "plan",
        "priority": PRIORITY[item.severity],
        "code": concept(AGENDA_SYSTEM, item.kind, item.kind.replace("_", " ")),
        "description": item.message,
        "for": {"type": "Patient", "identifier": course, "display": f"patient of course {entry.course_id}"},
        "focus": {"type": "CarePlan", "identifier": course, "display": f"IPT course {entry.course_id}"},
        "authoredOn": instant(worklist.as_of),
        "executionPeriod": {"start": instant(item.due or worklist.as_of)},
    }
    if entry.actor:
        data["owner"] = actor_ref(entry.actor)
    if item.resolved_by:
        data["input"] = [
            {"type": concept(EVENT_SYSTEM, "resolved_by", "resolved by"), "valueCodeableConcept":
             concept(EVENT_SYSTEM, event, event.replace("_", " "))}
            for event in item.resolved_by
        ]
    return task_model(**data)


def worklist_bundle(worklist: Worklist) -> Bundle:
    """A ``collection`` Bundle of the worklist's urgent and due items as Tasks, in its order."""
    bundle_model, _ = _models()
    entries = []
    for entry in worklist.entries:
        if entry.item.severity in PRIORITY:
            task = item_task(entry, worklist)
            entries.append({"fullUrl": f"urn:uuid:{task.id}", "resource": task})
    return bundle_model(
        id=str(uuid.uuid5(NAMESPACE, f"worklist|{instant(worklist.as_of)}")),
        type="collection",
        timestamp=instant(worklist.as_of),
        entry=entries or None,
    )


def worklist_bundle_json(worklist: Worklist, indent: int | None = 2) -> str:
    """The bundle as JSON text."""
    return worklist_bundle(worklist).model_dump_json(indent=indent, exclude_none=True)
