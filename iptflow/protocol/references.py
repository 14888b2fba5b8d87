"""The one reference checker: what a protocol's data names must exist, with one message each.

The compiler (:class:`~iptflow.engine.machine.CompiledProtocol`), ``iptflow check`` and lint
all call :func:`check_references`. It takes what it checks against as plain data (guards and
deviation checks by name, the registered event type names, the course attributes a route may
test), so this layer never imports the engine. Each :class:`Finding` has a stable ``code``,
a self-contained ``message`` and the ``path`` of the field it concerns, e.g.
``("transitions", 3, "requires", 0)``, from which ``iptflow check`` finds the file line.

==========================  ====================================================================
code                        finding
==========================  ====================================================================
undefined_state             the initial state, an acute state or a transition's source or
                            destination is not a state of the protocol
final_initial_state         the initial state is final: a course could do nothing in it
event_from_final_state      a transition leaves a final state (final states accept no events)
unknown_event               no plugin registers the event type a transition, review or task names
unknown_course_attribute    a transition's ``when`` tests something a course does not have
undefined_requirement       a transition or ``open_requires`` names an undefined requirement
unknown_guard               a requirement names a guard no plugin registers
unknown_check               a deviation names a check no plugin registers
bad_params                  a guard's or check's parameters do not fit its signature: unknown or
                            missing, of another type or out of the range its annotations
                            declare, naming something the protocol does not define
                            (:class:`Refers`), or against a rule on them together
                            (:func:`params_rule`)
undefined_review            an instrument opens a review that is not defined
undefined_instrument        a primary instrument is not defined
==========================  ====================================================================
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError

from iptflow.protocol.files import field_path, toml_value
from iptflow.protocol.models import (
    ANY_ACTIVE,
    AdaptationDef,
    DeviationDef,
    ProtocolDef,
    RequirementDef,
    StateDef,
)

Path = tuple[str | int, ...]
_UNREGISTERED = "(is the plugin that defines it installed?)"


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken reference: a stable ``code``, a message, and the field ``path`` it concerns."""

    code: str
    message: str
    path: Path

    @property
    def field(self) -> str:
        """The path written like ``transitions[3].requires[0]``."""
        return field_path(self.path)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


ParamsRule = Callable[[Mapping[str, Any]], "str | None"]
F = TypeVar("F", bound=Callable[..., Any])
_RULE = "iptflow_params_rule"
_RANGE_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
    "finite_number", "too_short", "too_long", "string_too_short", "string_too_long",
    "string_pattern_mismatch", "literal_error", "enum",
})


NameKind = Literal["states", "instruments", "reviews", "event_types", "problem_areas"]
Names = Mapping[str, Collection[str]]
"""What a protocol defines, by :data:`NameKind`: the names a parameter may refer to."""
_KIND_WORDS = {"states": "a state", "instruments": "an instrument", "reviews": "a review",
               "event_types": "a registered event type", "problem_areas": "a problem area"}


@dataclass(frozen=True, slots=True)
class Refers:
    """Annotation metadata: the parameter names something the protocol defines.

    ``state: Annotated[str, Refers("states")]``; a list of names too
    (``Annotated[list[str], Refers("states")]``); ``also`` lists special values accepted
    besides the names (``Refers("instruments", also=("baseline",))``). Checked against the
    protocol's (and its base's) states, instruments, reviews, problem areas or the registered
    event types.
    """

    kind: NameKind
    also: tuple[str, ...] = ()


def protocol_names(
    parts: Collection[ProtocolDef | AdaptationDef], event_types: Collection[str]
) -> dict[str, Collection[str]]:
    """The names parameters may refer to, in these protocol parts together (base and adaptations)."""
    return {
        "states": {s.name for p in parts for s in p.states},
        "instruments": {name for p in parts for name in p.instruments},
        "reviews": {name for p in parts for name in p.reviews},
        "problem_areas": {area for p in parts for area in p.problem_areas},
        "event_types": set(event_types),
    }


def params_rule(rule: ParamsRule) -> Callable[[F], F]:
    """Declare what a guard's or check's parameters must satisfy together (e.g. ``min <= max``).

    ``rule(params)`` gets every parameter (defaults filled in) once each has passed its own
    annotation, and returns what is wrong, or None. :func:`params_problem` applies it.
    """

    def mark(fn: F) -> F:
        setattr(fn, _RULE, rule)
        return fn

    return mark


def params_problem(
    fn: Callable[..., Any], params: Mapping[str, Any], names: Names | None = None
) -> str | None:
    """What is wrong with calling ``fn(course, event, **params)``, or None.

    Catches, when the protocol is compiled or checked rather than when the first course reaches
    the requirement: a misspelt or missing parameter; a value its annotation does not accept
    (validated strictly with pydantic: no ``"4"`` nor ``true`` for an ``int``; an integer is a
    ``float``; ranges declared as ``Annotated[int, Field(ge=1)]``); a rule declared on the
    parameters together with :func:`params_rule`; with ``names`` (:func:`protocol_names`), a
    value naming something the protocol does not define where the annotation says
    :class:`Refers`. A parameter without an annotation, or whose annotation cannot be resolved,
    accepts anything.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return None
    parameters = list(signature.parameters.values())[2:]
    taken = [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
    takes = f" (it takes: {', '.join(taken)})" if taken else " (it takes no parameters)"
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        unknown = sorted(set(params) - set(taken))
        if unknown:
            return f"unknown parameter(s) {', '.join(map(repr, unknown))}{takes}"
    try:
        bound = signature.bind(None, None, **params)
    except TypeError as exc:
        return f"{exc}{takes}"
    adapters = _adapters(fn, parameters)
    for name, value in params.items():
        entry = adapters.get(name)
        if entry is None:
            continue
        hint, adapter = entry
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            return f"parameter {name!r} {_why(exc, hint, value)}"
        except RecursionError:
            return f"parameter {name!r} is nested too deeply"
        refers = _refers(hint)
        if refers is not None and names is not None and refers.kind in names:
            problem = _unknown_name(refers, names[refers.kind], value)
            if problem:
                return f"parameter {name!r}: {problem}"
    rule = getattr(fn, _RULE, None)
    if rule is not None:
        bound.apply_defaults()
        return rule(dict(list(bound.arguments.items())[2:]))
    return None


_ADAPTERS: dict[Any, dict[str, tuple[Any, TypeAdapter[Any]]]] = {}


def _adapters(
    fn: Callable[..., Any], parameters: list[inspect.Parameter]
) -> dict[str, tuple[Any, TypeAdapter[Any]]]:
    """Each annotated parameter's type and its pydantic adapter, built once per function."""
    try:
        return _ADAPTERS[fn]
    except (KeyError, TypeError):  # TypeError: an unhashable callable, built each time
        pass
    out = {}
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    for p in parameters:
        if p.annotation is inspect.Parameter.empty or p.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        try:  # annotations may be strings (``from __future__ import annotations``)
            hint = get_type_hints(SimpleNamespace(__annotations__={p.name: p.annotation}),
                                  globalns=globalns, include_extras=True)[p.name]
            out[p.name] = (hint, TypeAdapter(hint))
        except (NameError, SyntaxError, TypeError, AttributeError, PydanticUserError):
            continue  # an annotation iptflow cannot read accepts anything
    with contextlib.suppress(TypeError):
        _ADAPTERS[fn] = out
    return out


def _refers(hint: Any) -> Refers | None:
    """The :class:`Refers` of an annotation (also inside ``X | None``), if any."""
    if get_origin(hint) is Annotated:
        found = next((m for m in get_args(hint)[1:] if isinstance(m, Refers)), None)
        return found or _refers(get_args(hint)[0])
    if get_origin(hint) in (Union, UnionType):
        return next((r for a in get_args(hint) if (r := _refers(a)) is not None), None)
    return None


def _unknown_name(refers: Refers, known: Collection[str], value: Any) -> str | None:
    for item in [value] if isinstance(value, str) else value or ():
        if isinstance(item, str) and item not in known and item not in refers.also:
            choices = sorted(known) + list(refers.also)
            shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
            return (f"{item!r} is not {_KIND_WORDS[refers.kind]} of this protocol "
                    f"(known: {shown or 'none'})")
    return None


def _why(exc: ValidationError, hint: Any, value: Any) -> str:
    """Why ``value`` does not fit ``hint``, in the protocol writer's terms."""
    errors = exc.errors(include_url=False)
    ranges = [e for e in errors if e["type"] in _RANGE_ERRORS]
    shown = toml_value(value)
    if ranges and len(ranges) == len([e for e in errors if e["type"] != "none_required"]):
        msg = str(ranges[0]["msg"]).removeprefix("Input should be ")
        where = "".join(f"[{p}]" for p in ranges[0]["loc"])
        return f"must be {msg}, not {toml_value(ranges[0]['input'])}" + (
            f" (at {where} of {shown})" if where else "")
    return f"must be {describe_type(hint)}, not {shown}"


def describe_type(hint: Any) -> str:
    """An annotation in words: ``int`` "an integer", ``list[str]`` "a list of texts"."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return describe_type(args[0])
    if origin in (Union, UnionType):
        words = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(words)
    if origin is Literal:
        return "one of " + ", ".join(toml_value(a) for a in args)
    if origin in (list, tuple, set, frozenset, Sequence, Collection):
        inner = describe_type(args[0]) if args else "anything"
        return f"a list of {_PLURALS.get(inner, inner)}"
    if origin in (dict, Mapping):
        return "a table"
    return _WORDS.get(hint, getattr(hint, "__name__", str(hint)))


_WORDS: dict[Any, str] = {
    int: "an integer", float: "a number", str: "text (a quoted string)", bool: "true or false",
    Any: "anything",
}
_PLURALS = {"an integer": "integers", "a number": "numbers", "text (a quoted string)": "texts",
            "true or false": "true or false values"}


def requirement_findings(
    name: str, req: RequirementDef, guards: Mapping[str, Callable[..., Any]], path: Path,
    names: Names | None = None,
) -> list[Finding]:
    """Whether requirement ``name``'s guard is registered and its params fit (``path``: the
    requirement's own, e.g. ``("requirements", name)``; ``names``: what the protocol defines,
    see :func:`params_problem`)."""
    fn = guards.get(req.guard)
    if fn is None:
        return [Finding("unknown_guard", f"requirement {name!r} uses unknown guard {req.guard!r}, "
                                         "which no installed plugin registers", (*path, "guard"))]
    problem = params_problem(fn, req.params, names)
    if problem:
        return [Finding("bad_params", f"requirement {name!r} (guard {req.guard!r}): {problem}",
                        (*path, "params"))]
    return []


def deviation_findings(
    dev: DeviationDef, checks: Mapping[str, Callable[..., Any]], path: Path,
    names: Names | None = None,
) -> list[Finding]:
    """Whether a deviation's check is registered and its params fit."""
    fn = checks.get(dev.check)
    if fn is None:
        return [Finding("unknown_check", f"deviation {dev.code!r} uses unknown check {dev.check!r}, "
                                         "which no installed plugin registers", (*path, "check"))]
    problem = params_problem(fn, dev.params, names)
    if problem:
        return [Finding("bad_params", f"deviation {dev.code!r} (check {dev.check!r}): {problem}",
                        (*path, "params"))]
    return []


def check_references(
    model: ProtocolDef | AdaptationDef,
    *,
    guards: Mapping[str, Callable[..., Any]],
    checks: Mapping[str, Callable[..., Any]],
    event_types: Collection[str],
    course_attributes: Collection[str] | None = None,
    base: ProtocolDef | None = None,
) -> list[Finding]:
    """Every broken reference in ``model``, in the order of its fields.

    ``guards`` and ``checks`` map names to the registered callables, ``event_types`` holds
    the registered event type names, ``course_attributes`` what a route's ``when`` may test
    (None: not checked). An adaptation is checked with the ``base`` protocol it is composed
    with: the states, requirements, reviews and instruments of both are known.
    """
    return _Checker(model, base, guards, checks, event_types, course_attributes).run()


class _Checker:
    def __init__(
        self,
        model: ProtocolDef | AdaptationDef,
        base: ProtocolDef | None,
        guards: Mapping[str, Callable[..., Any]],
        checks: Mapping[str, Callable[..., Any]],
        event_types: Collection[str],
        course_attributes: Collection[str] | None,
    ) -> None:
        self.model = model
        parts: list[ProtocolDef | AdaptationDef] = [base, model] if base is not None else [model]
        self.states: dict[str, StateDef] = {s.name: s for p in parts for s in p.states}
        self.requirements = {name for p in parts for name in p.requirements}
        self.reviews = {name for p in parts for name in p.reviews}
        self.instruments = {name for p in parts for name in p.instruments}
        self.names = protocol_names(parts, event_types)
        self.guards, self.checks = guards, checks
        self.event_types = event_types
        self.course_attributes = course_attributes
        self.out: list[Finding] = []

    def add(self, code: str, message: str, path: Path) -> None:
        self.out.append(Finding(code, message, path))

    def run(self) -> list[Finding]:
        m = self.model
        if isinstance(m, ProtocolDef):
            self.start_states(m)
        for i, t in enumerate(m.transitions):
            self.event(("transitions", i, "event"), t.event)
            self.sources(("transitions", i, "source"), t.event, t.source)
            if t.dest is not None and t.dest not in self.states:
                self.add("undefined_state", f"{t.event} to unknown state {t.dest!r}",
                         ("transitions", i, "dest"))
            self.requires(("transitions", i, "requires"), _label(t.event, t.source), t.requires)
            self.when(("transitions", i, "when"), _label(t.event, t.source), t.when)
        if isinstance(m, AdaptationDef):
            for i, extra in enumerate(m.extra_requires):
                self.event(("extra_requires", i, "event"), extra.event)
                self.sources(("extra_requires", i, "source"), extra.event, extra.source)
                self.requires(("extra_requires", i, "requires"), _label(extra.event, extra.source),
                              extra.requires)
        self.requires(("open_requires",), "course_opened", m.open_requires)
        for name, req in m.requirements.items():
            self.out += requirement_findings(name, req, self.guards, ("requirements", name),
                                             self.names)
        for i, dev in enumerate(m.deviations):
            self.out += deviation_findings(dev, self.checks, ("deviations", i), self.names)
        self.reviews_and_instruments(m)
        for i, name in enumerate(m.task_events):
            self.event(("task_events", i), name)
        return self.out

    def start_states(self, p: ProtocolDef) -> None:
        initial = self.states.get(p.initial_state)
        if initial is None:
            self.add("undefined_state", f"unknown initial state {p.initial_state!r}", ("initial_state",))
        elif initial.final:
            self.add("final_initial_state", f"the initial state {p.initial_state!r} is final: "
                                            "a course could do nothing in it", ("initial_state",))
        for i, name in enumerate(p.acute_states):
            if name not in self.states:
                self.add("undefined_state", f"unknown acute state {name!r}", ("acute_states", i))
        if "course_opened" not in self.event_types:
            self.add("unknown_event", f"no event type 'course_opened' is registered {_UNREGISTERED}",
                     ())

    def event(self, path: Path, name: str) -> None:
        if name not in self.event_types:
            self.add("unknown_event", f"no event type {name!r} is registered {_UNREGISTERED}", path)

    def sources(self, path: Path, event: str, names: list[str]) -> None:
        if names == [ANY_ACTIVE]:
            return
        for name in names:
            state = self.states.get(name)
            if state is None:
                self.add("undefined_state", f"{event} from unknown state {name!r}", path)
            elif state.final:
                self.add("event_from_final_state", f"{event} from final state {name!r}: "
                                                   "a final state accepts no events", path)

    def requires(self, path: Path, where: str, names: list[str]) -> None:
        for j, name in enumerate(names):
            if name not in self.requirements:
                self.add("undefined_requirement",
                         f"{where} requires {name!r}, which is not defined "
                         f"(define it under [requirements.{name}])", (*path, j))

    def when(self, path: Path, where: str, when: Mapping[str, str]) -> None:
        if self.course_attributes is None:
            return
        for attr in when:
            if attr not in self.course_attributes:
                self.add("unknown_course_attribute",
                         f"{where} is routed on {attr!r}, which is not a course attribute", path)

    def reviews_and_instruments(self, m: ProtocolDef | AdaptationDef) -> None:
        for name, review in m.reviews.items():
            for key in ("opened_by", "closed_by"):
                for j, ev in enumerate(getattr(review, key)):
                    self.event(("reviews", name, key, j), ev)
        for name, inst in m.instruments.items():
            for k, trigger in enumerate(inst.opens_reviews):
                if trigger.review not in self.reviews:
                    self.add("undefined_review",
                             f"instrument {name!r} opens unknown review {trigger.review!r}",
                             ("instruments", name, "opens_reviews", k))
        for i, name in enumerate(m.primary_instruments):
            if name not in self.instruments:
                self.add("undefined_instrument", f"primary instrument {name!r} is not defined",
                         ("primary_instruments", i))


def _label(event: str, sources: list[str]) -> str:
    return f"{event} from " + ("any active state" if sources == [ANY_ACTIVE] else ", ".join(sources))
