"""Compile a resolved protocol into what drives courses: one shared ``transitions.Machine``.

The machine is built once per resolved protocol (cached by fingerprint in the registry) with
``model=None`` and ``auto_transitions=False``. Courses are never added to it: a course object
carries its own ``state``. Routing is decided once, by :meth:`CompiledProtocol.route` (the
first route whose ``when`` conditions the course meets); the machine holds one transition per
route that changes state, without conditions, and :meth:`CompiledProtocol.step` executes the
chosen route's transition on the machine, which sets the course's state. Events that do not
change state never touch the machine: they are looked up in a plain dict of what each state
allows. See docs/architecture.md for the measurements behind this shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError
from transitions import Machine
from transitions.core import Event as MachineEvent
from transitions.core import EventData, State, Transition

from iptflow.engine.events import Event, EventType
from iptflow.engine.facts import Facts
from iptflow.errors import PluginError, ProtocolError
from iptflow.protocol.models import ResolvedProtocol
from iptflow.protocol.references import check_references

if TYPE_CHECKING:
    from iptflow.engine.course import Course
    from iptflow.engine.registry import Registry


@dataclass(frozen=True, slots=True)
class BoundRequirement:
    name: str
    fn: Callable[..., str | None]
    params: dict[str, Any]
    description: str
    plugin: str
    message: str | None = None
    guard: str | None = None

    def failure(self, course: Course, event: Any) -> str | None:
        try:
            failed = self.fn(course, event, **self.params)
            return self.message if failed and self.message else failed
        except Exception as exc:  # a plugin's guard failed: name it, change nothing
            raise self.error(exc) from exc

    def error(self, exc: Exception) -> PluginError:
        """The error to raise when the guard itself raised ``exc``."""
        return PluginError(
            f"plugin {self.plugin}: guard {self.guard or self.name!r} (requirement "
            f"{self.name!r}) raised {type(exc).__name__}: {exc}",
            plugin=self.plugin,
            hook="register_guards",
        )


@dataclass(frozen=True, slots=True)
class Route:
    """One way an event can go from a state: its destination and its requirements.

    ``transition`` is this route's own transition on the shared machine (None for a route
    that keeps the state).
    """

    when: tuple[tuple[str, str], ...]
    dest: str | None
    requires: tuple[BoundRequirement, ...]
    transition: Transition | None = field(default=None, compare=False, repr=False)
    #: the machine's source state and event for ``transition`` (what EventData needs)
    trigger: tuple[State, MachineEvent] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BoundCheck:
    code: str
    fn: Callable[..., str | None]
    params: dict[str, Any]
    plugin: str
    events: frozenset[str] | None = None  # the only event types it raises on (None: any)


class EventPlan:
    """What accepting one event type involves, gathered once per compiled protocol so that a
    course looks it up once per event: the type's ``check`` and ``effect``, the deviation
    checks that apply to it (in protocol order), whether it is a task, the reviews it opens
    and closes."""

    __slots__ = ("check", "effect", "checks", "task", "opens", "closes", "reviews")

    def __init__(self, event_type: EventType, checks: tuple[BoundCheck, ...], task: bool,
                 opens: tuple[str, ...], closes: tuple[str, ...]) -> None:
        self.check = event_type.check
        self.effect = event_type.effect
        self.checks = checks
        self.task = task
        self.opens = opens
        self.closes = closes
        self.reviews = bool(opens or closes)


def when_holds(facts: Any, when: tuple[tuple[str, str], ...]) -> bool:
    """Whether a course's facts meet a route's ``when`` conditions (e.g. format = group)."""
    return all(getattr(facts, attr, None) == value for attr, value in when)


class CompiledProtocol:
    """A resolved protocol ready to run courses. Shared, immutable after construction."""

    def __init__(self, protocol: ResolvedProtocol, registry: Registry) -> None:
        self.protocol = protocol
        self.fingerprint = protocol.fingerprint
        self.registry = registry
        self.final_states = frozenset(protocol.final_states)
        self._validate_references()
        self.event_types: dict[str, EventType] = {}
        for name in protocol.event_types:
            revision = protocol.event_revisions.get(name, 1)
            et = registry.event_type(name, revision)
            if et is None:  # the references are checked: only a later revision can be missing
                raise ProtocolError(
                    f"protocol {protocol.id}: event {name!r} (revision {revision}) has no "
                    "registered event model (is the plugin that defines it installed?)"
                )
            self.event_types[name] = et
        self.requirements = {name: self._bind(name) for name in protocol.requirements}
        self.open_requires = tuple(self._req(name, "open_requires") for name in protocol.open_requires)
        self.allowed: dict[str, dict[str, tuple[Route, ...]]] = {
            s.name: {} for s in protocol.states if not s.final
        }
        for t in protocol.transitions:
            src = t.source[0]
            route = Route(
                when=tuple(sorted(t.when.items())),
                dest=t.dest,
                requires=tuple(self._req(r, f"{t.event} from {src}") for r in t.requires),
            )
            routes = self.allowed[src].get(t.event, ())
            # routed (conditional) transitions are tried before unconditional ones
            ordered = [r for r in routes if r.when] + ([route] if route.when else [])
            ordered += [r for r in routes if not r.when] + ([] if route.when else [route])
            self.allowed[src][t.event] = tuple(ordered)
        self.allowed_lists = {s: sorted(events) for s, events in self.allowed.items()}
        self.checks = tuple(self._check(d.code, d.check, d.params) for d in protocol.deviations)
        self.checks_for: dict[str, tuple[BoundCheck, ...]] = {  # per event type, in order
            name: tuple(c for c in self.checks if c.events is None or name in c.events)
            for name in self.event_types
        }
        self.review_openers: dict[str, tuple[str, ...]] = {}
        self.review_closers: dict[str, tuple[str, ...]] = {}
        for review, rdef in protocol.reviews.items():
            for ev in rdef.opened_by:
                self.review_openers[ev] = self.review_openers.get(ev, ()) + (review,)
            for ev in rdef.closed_by:
                self.review_closers[ev] = self.review_closers.get(ev, ()) + (review,)
        self.task_events = frozenset(protocol.task_events)
        models = tuple(et.model for et in self.event_types.values())
        union: Any = (
            models[0]
            if len(models) == 1
            else Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
        )
        self.adapter: TypeAdapter[Event] = TypeAdapter(union)
        #: the adapter's validator minus a wrapper: the event model, or ValidationError
        self.validate = self.adapter.validator.validate_python
        self.machine = self._build_machine()
        self.plans = {
            name: EventPlan(et, self.checks_for[name], name in self.task_events,
                            self.review_openers.get(name, ()), self.review_closers.get(name, ()))
            for name, et in self.event_types.items()
        }
        # what route() decides without looking at a course: the state's only route for an
        # event when it has no ``when`` (conditional routes come first, so it is the first)
        self.direct: dict[str, dict[str, Route]] = {
            state: {event: routes[0] for event, routes in events.items() if not routes[0].when}
            for state, events in self.allowed.items()
        }

    # -- building ----------------------------------------------------------------------------
    def _validate_references(self) -> None:
        """Raise ProtocolError naming the first broken reference (protocol/references.py)."""
        findings = check_references(
            self.protocol,
            guards={name: entry[0] for name, entry in self.registry.guards.items()},
            checks={name: entry[0] for name, entry in self.registry.checks.items()},
            event_types=self.registry.event_types.keys(),
            course_attributes=Facts.__dataclass_fields__.keys(),
        )
        if findings:
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            raise ProtocolError(f"protocol {self.protocol.id}: {findings[0].message}{more}")

    def _bind(self, name: str) -> BoundRequirement:
        """A requirement bound to its guard (references were validated first)."""
        rdef = self.protocol.requirements[name]
        fn, plugin = self.registry.guards[rdef.guard]
        return BoundRequirement(
            name, fn, dict(rdef.params), rdef.description, plugin, rdef.message, rdef.guard
        )

    def _req(self, name: str, where: str) -> BoundRequirement:
        """Requirement ``name``, as ``where`` (e.g. an event from a state) requires it."""
        return self.requirements[name]

    def _check(self, code: str, name: str, params: dict[str, Any]) -> BoundCheck:
        fn, plugin = self.registry.checks[name]  # references were validated first
        return BoundCheck(code, fn, dict(params), plugin, self.registry.check_events.get(name))

    def _build_machine(self) -> Machine:
        """The shared machine: one unconditional transition per state-changing route, kept on
        the route (``Route.transition``); the route was chosen before the machine runs."""
        machine = Machine(
            model=None,
            states=[s.name for s in self.protocol.states],
            initial=self.protocol.initial_state,
            auto_transitions=False,
            send_event=True,
        )
        for src, events in self.allowed.items():
            for event, routes in events.items():
                bound = []
                for route in routes:
                    if route.dest is not None:
                        machine.add_transition(event, src, route.dest)
                        transition = machine.events[event].transitions[src][-1]
                        trigger = (machine.get_state(src), machine.events[event])
                        route = replace(route, transition=transition, trigger=trigger)
                    bound.append(route)
                events[event] = tuple(bound)
        return machine

    # -- running -----------------------------------------------------------------------------
    def route(self, state: str, event_type: str, facts: Any) -> Route | None:
        """The route ``event_type`` takes from ``state`` for a course with these ``facts``.

        The one routing decision of the engine: the first route whose ``when`` conditions the
        facts meet (conditional routes are tried first). None when the state does not allow
        the event or no route fits (the event is then ``not_allowed``).
        """
        for route in self.allowed.get(state, {}).get(event_type, ()):
            if not route.when or when_holds(facts, route.when):
                return route
        return None

    def parse(self, raw: Any) -> Event | str:
        """Validate a raw event; return the model, or what is wrong with it."""
        if not isinstance(raw, dict):
            return "an event must be a JSON object"
        etype = raw.get("type")
        if not isinstance(etype, str):
            return "missing or non-string 'type'"
        if etype not in self.event_types:
            return f"unknown event type {etype!r} for protocol {self.protocol.id}" + (
                f" with {', '.join(self.protocol.adaptations)}" if self.protocol.adaptations else ""
            )
        try:
            return self.validate(raw)
        except ValidationError as exc:
            return describe_validation_error(exc, etype)

    def step(self, course: Course, event_type: str, route: Route) -> None:
        """Move a course along ``route`` (chosen by :meth:`route`, with a destination): the
        shared machine executes that route's transition, which sets ``course.state``."""
        transition = route.transition
        if transition is None or route.trigger is None:  # pragma: no cover - only with a dest
            raise ProtocolError(f"internal: {event_type} from {course.state} changes no state")
        source, trigger = route.trigger  # the route's source state: the course's state
        transition.execute(EventData(source, trigger, self.machine, course, (), {}))


def describe_validation_error(exc: ValidationError, etype: str | None = None) -> str:
    """What is wrong with an event, in the product's words: one message per field, in the
    order pydantic found them (``score: must be a number; items.2: must be an integer``).

    The branches of a union field (``int | float``) are one field: their type errors become
    one "must be a number" (or "must be a string or a list"), and a branch whose type matched
    but whose value did not (``score: must be a finite number``) says that instead.
    """
    fields: dict[str, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if not (etype is not None and p == etype)]
        where = ".".join(_loc_text(p) for p in loc if not _is_branch(p))
        fields.setdefault(where, []).append(err)
    parts = []
    for where, errs in fields.items():
        msg = _field_message(errs)
        parts.append(f"{where}: {msg}" if where else msg)
    prefix = f"{etype}: " if etype else ""
    return prefix + "; ".join(parts)


#: pydantic's names of a union's branches in an error's location (``score.int``, ``score.float``)
_BRANCH = re.compile(r"^(int|float|str|bool|none|bytes|function-.*|constrained-.*|[\w-]+\[.*\])$")

#: what a value of a type must be, for pydantic's type errors
_TYPE_NOUNS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "string_type": "a string",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "none_required": "null", "datetime_type": "a date-time",
}


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and _BRANCH.match(part) is not None


def _loc_text(part: Any) -> str:
    text = str(part)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ascii(text)
    return text


def _field_message(errs: list[dict[str, Any]]) -> str:
    """One message for one field's errors (several only for the branches of a union)."""
    constraint = [e for e in errs if e["type"] not in _TYPE_NOUNS]
    if constraint or len(errs) == 1:
        return _message(constraint[0] if constraint else errs[0])
    nouns = list(dict.fromkeys(_TYPE_NOUNS[e["type"]] for e in errs))
    if "an integer" in nouns and "a number" in nouns:
        nouns.remove("an integer")
    return "must be " + " or ".join(nouns)


def _message(err: dict[str, Any]) -> str:
    """One pydantic error in the product's words."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _TYPE_NOUNS:
        return "must be " + _TYPE_NOUNS[kind] + (" (12.0 is not one)" if kind == "int_from_float" else "")
    simple = {
        "missing": "required field is missing",
        "extra_forbidden": "unknown field",
        "finite_number": "must be a finite number",
        "string_unicode": "must be UTF-8 text",
        "literal_error": f"must be one of {ctx.get('expected', '')}",
        "enum": f"must be one of {ctx.get('expected', '')}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "too_long": f"must have at most {ctx.get('max_length')} items",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters",
    }
    if kind in simple:
        return simple[kind]
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} items"
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
