"""Validate protocol, adaptation and variant files: every problem, with file, line and field.

``check_file`` goes beyond the file format (pydantic): it resolves what the file refers to
against a :class:`~iptflow.engine.registry.Registry` (guards and their parameters, deviation
checks, event types, states, requirements, reviews, instruments: the shared checker of
:mod:`iptflow.protocol.references`, the compiler's own rules and messages; the base protocol
and adaptations of a variant) and reports each broken reference where it is written.
When nothing is broken, the file is composed and compiled exactly as a course would use it,
which catches what only composition can (conflicting adaptations, requirements added to
transitions that do not exist), and :attr:`CheckResult.resolved` holds the result: the input
for further analysis such as lint rules, which work on a :class:`~iptflow.protocol.ResolvedProtocol`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from iptflow.engine.facts import Facts
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.registry import Registry, default_registry
from iptflow.errors import ProtocolError, ProtocolFileError
from iptflow.protocol.compose import compose
from iptflow.protocol.files import field_path, locate, read_toml, validation_problems
from iptflow.protocol.models import AdaptationDef, ProtocolDef, ResolvedProtocol
from iptflow.protocol.references import (
    check_references,
    deviation_findings,
    protocol_names,
    requirement_findings,
)
from iptflow.protocol.variants import VariantDef

Kind = Literal["protocol", "adaptation", "variant"]
KINDS: tuple[str, ...] = ("protocol", "adaptation", "variant")
_MODELS: dict[str, type[BaseModel]] = {
    "protocol": ProtocolDef, "adaptation": AdaptationDef, "variant": VariantDef,
}
_COURSE_ATTRIBUTES = frozenset(Facts.__dataclass_fields__)


@dataclass(frozen=True)
class Problem:
    """One problem in a file. ``line`` and ``field`` are None where they cannot be told."""

    file: str
    line: int | None
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class CheckResult:
    """What checking one file found. ``resolved`` is set only when the file is valid."""

    file: str
    kind: str | None = None
    id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    resolved: ResolvedProtocol | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "id": self.id,
            "ok": self.ok,
            "fingerprint": self.resolved.fingerprint if self.resolved else None,
            "problems": [p.to_dict() for p in self.problems],
        }


def detect_kind(data: Mapping[str, Any]) -> Kind:
    """A file with ``extends`` is a variant; one with protocol-only keys a protocol; else an
    adaptation (adaptations have no ``initial_state`` nor ``acute_states``)."""
    if "extends" in data:
        return "variant"
    if {"initial_state", "acute_states"} & set(data):
        return "protocol"
    return "adaptation"


def check_files(
    paths: Iterable[Path | str], registry: Registry | None = None, **options: Any
) -> list[CheckResult]:
    return [check_file(path, registry, **options) for path in paths]


def check_file(
    path: Path | str,
    registry: Registry | None = None,
    *,
    kind: Kind | None = None,
    base: str = "ipt-depression",
) -> CheckResult:
    """Check one file. ``kind`` overrides detection; ``base`` is the protocol an adaptation
    file is composed with."""
    registry = registry or default_registry()
    path = Path(path)
    result = CheckResult(str(path))
    try:
        text, data = read_toml(path)
    except ProtocolFileError as exc:
        result.problems = [Problem(**p) for p in exc.problems]
        return result
    result.kind = kind or detect_kind(data)
    result.id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        model = _MODELS[result.kind].model_validate(data)
    except ValidationError as exc:
        problems = [Problem(**p) for p in validation_problems(exc, path, text)]
        result.problems = sorted(problems, key=lambda p: p.line or 0)
        return result
    checker = _Checker(str(path), text, registry)
    if isinstance(model, VariantDef):
        checker.variant(model)
    elif isinstance(model, AdaptationDef):
        checker.adaptation(model, base)
    else:
        assert isinstance(model, ProtocolDef)
        checker.protocol(model)
    result.problems = sorted(checker.problems, key=lambda p: p.line or 0)
    result.resolved = checker.resolved if not checker.problems else None
    return result


class _Checker:
    def __init__(self, file: str, text: str, registry: Registry) -> None:
        self.file = file
        self.text = text
        self.registry = registry
        self.problems: list[Problem] = []
        self.resolved: ResolvedProtocol | None = None

    def add(self, loc: tuple[Any, ...] | None, message: str) -> None:
        line = locate(self.text, loc) if loc else None
        self.problems.append(Problem(self.file, line, field_path(loc) if loc else None, message))

    # -- kinds of file ---------------------------------------------------------------------------
    def protocol(self, p: ProtocolDef) -> None:
        self.references(p)
        if not self.problems:
            self.compile(lambda: compose(p, []))

    def adaptation(self, a: AdaptationDef, base_id: str) -> None:
        if "@" not in base_id and a.base_versions:  # the newest base version it applies to
            base_id = f"{base_id}@{a.base_versions[-1]}"
        base = self.base_protocol(base_id, None)
        if base is None:
            return
        states = {s.name for s in base.states}
        for i, s in enumerate(a.states):
            if s.name in states:
                self.add(("states", i, "name"), f"state {s.name!r} is already in {base.id}")
        self.references(a, base)
        if not self.problems:
            self.compile(lambda: compose(base, [a]))

    def variant(self, v: VariantDef) -> None:
        shadowed = self.registry.sources.get(("protocol", v.id))
        if shadowed is not None and self.registry.pm.has_plugin(shadowed):
            self.add(("id",), f"{v.id!r} is already registered by plugin {shadowed}: a file "
                              "on the search path with this id is ignored")
        base = self.base_protocol(v.extends, ("extends",))
        adaptations = []
        for i, name in enumerate(v.adaptations):
            if name in self.registry.adaptations:  # the version that applies to the base's
                adaptations.append(self.registry.adaptation(name, base.version if base else None))
            else:
                known = ", ".join(sorted(self.registry.adaptations)) or "none installed"
                self.add(("adaptations", i), f"unknown adaptation {name!r} (known: {known})")
        if base is None:
            return
        # settings are checked against everything the base and the known adaptations define
        codes = {d.code: d for d in base.deviations}
        requirements = dict(base.requirements)
        for a in adaptations:
            codes.update({d.code: d for d in a.deviations})
            requirements.update(a.requirements)
        names = protocol_names([base, *adaptations], self.registry.event_types)
        for code, params in v.deviations.items():
            if code not in codes:
                self.add(("deviations", code), f"no deviation {code!r} to set parameters of "
                                               f"(known: {', '.join(codes)})")
            else:  # a setting's problem is reported at the variant's table of that code
                dev = codes[code].model_copy(update={"params": {**codes[code].params, **params}})
                for f in deviation_findings(dev, self.functions("checks"), ("deviations", code),
                                            names):
                    self.add(("deviations", code), f.message)
        for name, params in v.requirements.items():
            req = requirements.get(name)
            if req is None:
                self.add(("requirements", name), f"no requirement {name!r} to set parameters of")
            else:
                req = req.model_copy(update={"params": {**req.params, **params}})
                for f in requirement_findings(name, req, self.functions("guards"),
                                              ("requirements", name), names):
                    self.add(("requirements", name), f.message)
        settings_only = v.model_copy(update={"deviations": {}, "requirements": {}})
        try:  # conflicts between the adaptations, unless the variant's own settings resolve them
            compose(base, adaptations, settings_only)
        except ProtocolError as exc:
            self.add(("adaptations",), str(exc))
        if not self.problems:
            self.compile(lambda: compose(base, adaptations, v))

    # -- shared ----------------------------------------------------------------------------------
    def base_protocol(self, base_id: str, loc: tuple[Any, ...] | None) -> ProtocolDef | None:
        try:
            base = self.registry.find(base_id)
        except ProtocolError as exc:
            self.add(loc, str(exc))
            return None
        if isinstance(base, VariantDef):
            self.add(loc, f"{base_id} is a variant; a variant extends a base protocol")
            return None
        return base

    def functions(self, kind: Literal["guards", "checks"]) -> dict[str, Any]:
        """The registry's guards or deviation checks, name -> callable."""
        return {name: entry[0] for name, entry in getattr(self.registry, kind).items()}

    def references(self, model: ProtocolDef | AdaptationDef, base: ProtocolDef | None = None) -> None:
        """Every broken reference (protocol/references.py), where it is written."""
        for finding in check_references(
            model, guards=self.functions("guards"), checks=self.functions("checks"),
            event_types=self.registry.event_types, course_attributes=_COURSE_ATTRIBUTES, base=base,
        ):
            self.add(finding.path, finding.message)

    def compile(self, build: Any) -> None:
        try:
            resolved = build()
            CompiledProtocol(resolved, self.registry)
        except ProtocolError as exc:
            self.add(None, str(exc))
            return
        self.resolved = resolved
