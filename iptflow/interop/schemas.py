"""JSON Schema of iptflow's file formats, generated from the pydantic models.

``iptflow schema KIND`` prints them; docs/schemas/*.json publish them (tests fail when the
published copies are stale). Kinds:

* ``protocol``, ``variant``, ``adaptation``: the TOML files, as the data TOML parses to;
* ``event``: one event (SPEC §1), the union of the base event models of the newest base
  protocol; with a registry, the union of every event type its plugins registered
  (adaptations' events too, each in its latest revision); with a protocol (``id@version`` and
  adaptations), exactly the events that protocol accepts (``iptflow schema event --protocol
  ipt-depression@1.0.0``: the fields of 1.0.0);
* ``course-file``: one line of a course file (SPEC §6): an ``{"expect": {...}}`` line, or an
  event, optionally carrying ``expect_error``. A line expected to fail ``invalid_event``,
  ``course_closed`` or ``no_course`` may hold a malformed event (that is what it tests);
  any other event line must be a valid event. That the first line is ``course_opened`` is
  a rule about the file, checked by ``iptflow replay``.

The schemas check shape and types; rules that need a protocol (known instruments, problem
areas, ranges) and cross-field rules (``stage`` only for ``role_dispute``) are the engine's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from iptflow.builtins.events import BASE_EVENT_TYPES
from iptflow.builtins.events_v2 import EVENT_TYPES_2
from iptflow.engine.events import _RFC3339, EventType
from iptflow.engine.registry import Registry, default_registry
from iptflow.engine.replay import Expectation
from iptflow.engine.results import REJECTION_CODES
from iptflow.protocol.models import AdaptationDef, ProtocolDef
from iptflow.protocol.variants import VariantDef

KINDS = ("protocol", "variant", "adaptation", "event", "course-file")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_STATE_LIST = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    "description": "a state, a list of states, or '*' for every non-final state",
}


def _walk(node: Any, fn: Any) -> None:
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


def _finish(schema: dict[str, Any], title: str, schema_id: str) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": f"urn:iptflow:schema:{schema_id}", "title": title, **schema}


def _file_schema(model: Any, title: str, schema_id: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    for name in ("TransitionDef", "ExtraRequires"):
        definition = schema.get("$defs", {}).get(name)
        if definition and "source" in definition.get("properties", {}):
            definition["properties"]["source"] = dict(_STATE_LIST)  # a string is a list of one
    return _finish(schema, title, schema_id)


def _latest(event_types: list[EventType]) -> list[EventType]:
    """Each event type once, in its latest revision, sorted by name."""
    latest: dict[str, EventType] = {}
    for et in event_types:
        if et.name not in latest or et.revision > latest[et.name].revision:
            latest[et.name] = et
    return [latest[name] for name in sorted(latest)]


def _event_types(
    registry: Registry | None, protocol: str | None = None, adaptations: tuple[str, ...] = ()
) -> list[EventType]:
    if protocol is not None:
        if registry is None:
            registry = default_registry()
        compiled = registry.compile(protocol, adaptations)
        return [compiled.event_types[name] for name in sorted(compiled.event_types)]
    if registry is None:
        base = list(BASE_EVENT_TYPES)
        return [*base[:1], *_latest([*base[1:], *EVENT_TYPES_2])]
    return _latest(list(registry.event_revisions.values()))


def _allows_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(
        isinstance(p, dict) and p.get("type") == "null" for p in prop.get("anyOf", ())
    )


def _union(event_types: list[EventType]) -> dict[str, Any]:
    models = tuple(et.model for et in event_types)
    union: Any = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
    schema = TypeAdapter(union).json_schema()
    timestamp = {
        "type": "string",
        "pattern": _RFC3339.pattern,
        "description": "RFC 3339 date-time with 'Z' or an offset",
    }

    def fix(node: dict[str, Any]) -> None:
        props = node.get("properties")
        if isinstance(props, dict) and "at" in props and "type" in props:
            props["at"] = dict(timestamp)
        if isinstance(props, dict):  # SPEC §1: an optional field given as null counts as absent
            required = set(node.get("required", ()))
            for name, prop in props.items():
                if name not in required and isinstance(prop, dict) and not _allows_null(prop):
                    props[name] = {"anyOf": [prop, {"type": "null"}]}

    _walk(schema, fix)
    return schema


def event_schema(
    registry: Registry | None = None, protocol: str | None = None, adaptations: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One event: the base events, every event type ``registry``'s plugins registered, or the
    events of one protocol (``id`` or ``id@version``, with adaptations)."""
    if protocol is not None:
        which = "+".join([protocol, *adaptations])
    else:
        which = "base events" if registry is None else "events of the installed plugins"
    return _finish(
        _union(_event_types(registry, protocol, adaptations)), f"iptflow event ({which})", "event"
    )


def course_file_schema(
    registry: Registry | None = None, protocol: str | None = None, adaptations: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One non-blank line of a course file."""
    events = _union(_event_types(registry, protocol, adaptations))
    expect_error = {"enum": list(REJECTION_CODES),
                    "description": "the event must be rejected with this code"}

    def allow_expect_error(node: dict[str, Any]) -> None:
        props = node.get("properties")
        if isinstance(props, dict) and "type" in props and "at" in props:
            props["expect_error"] = dict(expect_error)

    _walk(events, allow_expect_error)
    defs = events.pop("$defs", {})
    expectation = copy.deepcopy(Expectation.model_json_schema())
    defs.update(expectation.pop("$defs", {}))
    defs["Expectation"] = expectation
    loose = ["invalid_event", "course_closed", "no_course"]  # checked before or as validation
    event_line = {
        "type": "object",
        "description": "an event; one carrying expect_error invalid_event, course_closed or no_course "
                       "may be malformed (it must be rejected), any other must be a valid event",
        "not": {"required": ["expect"]},
        "properties": {"expect_error": dict(expect_error)},
        "if": {"required": ["expect_error"], "properties": {"expect_error": {"enum": loose}}},
        "then": {},
        "else": {"$ref": "#/$defs/Event"},
    }
    line = {
        "oneOf": [
            {"$ref": "#/$defs/EventLine"},
            {
                "type": "object",
                "properties": {"expect": {"$ref": "#/$defs/Expectation"}},
                "required": ["expect"],
                "additionalProperties": False,
            },
        ],
        "$defs": {**defs, "Event": events, "EventLine": event_line},
    }
    return _finish(line, "iptflow course-file line", "course-file")


def schema_for(
    kind: str,
    registry: Registry | None = None,
    protocol: str | None = None,
    adaptations: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (one of :data:`KINDS`); ``protocol`` (and ``adaptations``)
    restricts ``event`` and ``course-file`` to the events that protocol version accepts."""
    if kind == "protocol":
        return _file_schema(ProtocolDef, "iptflow protocol file", "protocol")
    if kind == "variant":
        return _file_schema(VariantDef, "iptflow variant file", "variant")
    if kind == "adaptation":
        return _file_schema(AdaptationDef, "iptflow adaptation file", "adaptation")
    if kind == "event":
        return event_schema(registry, protocol, adaptations)
    if kind == "course-file":
        return course_file_schema(registry, protocol, adaptations)
    raise ValueError(f"unknown schema kind {kind!r} (known: {', '.join(KINDS)})")


def schema_text(
    kind: str,
    registry: Registry | None = None,
    protocol: str | None = None,
    adaptations: tuple[str, ...] = (),
) -> str:
    """The schema as the CLI prints it and docs/schemas/KIND.json holds it."""
    schema = schema_for(kind, registry, protocol, adaptations)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_docs(directory: str) -> list[str]:
    """Write every schema to ``DIRECTORY/KIND.json`` (base events); returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = out / f"{kind}.json"
        path.write_text(schema_text(kind), encoding="utf-8")
        written.append(str(path))
    return written


if __name__ == "__main__":  # python -m iptflow.interop.schemas docs/schemas
    import sys

    for written_path in write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas"):
        print(written_path)
