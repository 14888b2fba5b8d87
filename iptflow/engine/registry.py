"""The registry: everything plugins registered, protocol resolution and the compile cache.

``default_registry()`` is built lazily from ``load_plugins()`` and the protocol search path
(``IPTFLOW_PROTOCOLS_PATH``, ``os.pathsep``-separated directories of protocol and variant
files). Resolved protocols are cached by (protocol, adaptations) and compiled machines by
fingerprint, so 10,000 courses of one protocol share one machine.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from iptflow.engine.agenda import AgendaItem, assemble, check_as_of, core_items
from iptflow.engine.events import EventType
from iptflow.engine.machine import CompiledProtocol
from iptflow.engine.plugins import forget_plugins, load_plugins
from iptflow.errors import (
    PluginError,
    ProtocolError,
    ProtocolFileError,
    UnknownAdaptation,
    UnknownProtocol,
    UnknownProtocolVersion,
)
from iptflow.protocol.compose import compose
from iptflow.protocol.files import load_model, read_toml
from iptflow.protocol.models import AdaptationDef, ProtocolDef, ResolvedProtocol
from iptflow.protocol.variants import VariantDef

if TYPE_CHECKING:
    from iptflow.engine.course import Course

PATH_ENV = "IPTFLOW_PROTOCOLS_PATH"


#: how many known names an "unknown ..." message lists before "and N more"
KNOWN_SHOWN = 10


def known_names(asked: object, known: Iterable[str], shown: int = KNOWN_SHOWN) -> str:
    """The end of an "unknown NAME" message: close matches first, then at most ``shown`` of the
    known names and how many more there are (`` (did you mean 'ptsd'? known: a, b ... and 32
    more)``), so the message stays one readable line however many names are known."""
    names = sorted(set(known))
    if not names:
        return " (none known)"
    close = difflib.get_close_matches(asked, names, n=3) if isinstance(asked, str) else []
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f" ({hint}known: {_capped(names[:shown], len(names), ', ')})"


def _capped(first: list[str], total: int, sep: str) -> str:
    more = total - len(first)
    return sep.join(first) + (f" and {more} more" if more > 0 else "")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions numerically part by part (1.10.0 after 1.9.0); other parts sort after."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.split("."))


def load_protocol_file(path: Path | str) -> ProtocolDef | VariantDef:
    """Load a protocol or variant TOML file (a file with ``extends`` is a variant)."""
    path = Path(path)
    _, data = read_toml(path)
    return load_model(path, VariantDef if "extends" in data else ProtocolDef)


def load_adaptation(path: Path | str) -> AdaptationDef:
    """Load an adaptation's TOML file (for plugins: keep the data next to the module)."""
    return load_model(Path(path), AdaptationDef)


class Registry:
    """Protocols, variants, adaptations, guards, checks and event types, by name."""

    def __init__(
        self,
        pm: pluggy.PluginManager | None = None,
        protocol_dirs: Iterable[Path | str] = (),
    ) -> None:
        self.pm = pm if pm is not None else load_plugins()
        self.protocol_dirs = [Path(d) for d in protocol_dirs]
        # by id, the newest version; every version in ``versions`` / ``adaptation_versions``
        self.protocols: dict[str, tuple[ProtocolDef, str]] = {}
        self.variants: dict[str, tuple[VariantDef, str]] = {}
        self.adaptations: dict[str, tuple[AdaptationDef, str]] = {}
        self.versions: dict[str, dict[str, tuple[ProtocolDef | VariantDef, str]]] = {}
        self.adaptation_versions: dict[str, list[tuple[AdaptationDef, str]]] = {}
        self.guards: dict[str, tuple[Callable[..., str | None], str]] = {}
        self.checks: dict[str, tuple[Callable[..., str | None], str]] = {}
        self.check_events: dict[str, frozenset[str] | None] = {}  # check -> its event types
        self.event_types: dict[str, EventType] = {}  # revision 1 of each event type
        self.event_revisions: dict[tuple[str, int], EventType] = {}
        self.event_plugins: dict[str, str] = {}
        self.sources: dict[tuple[str, str], str] = {}  # (kind, name) -> where it came from
        self._resolved: dict[tuple[str, tuple[str, ...]], ResolvedProtocol] = {}
        self._compiled: dict[str, CompiledProtocol] = {}
        self._compiled_by_key: dict[tuple[str, tuple[str, ...]], CompiledProtocol] = {}
        self._dirs_scanned = False
        self._dir_errors: list[str] = []
        self._collect()
        # observers in pluggy's call order (the plugin registered last first), like has_observers
        # fixed when the registry is built
        self._observers = {
            name: list(reversed(self._per_plugin(name))) for name in ("event_accepted", "state_changed")
        }
        self.has_observers = any(self._observers.values())
        self._contributors: list[tuple[str, pluggy.HookCaller]] | None = None  # agenda_items

    # -- collecting from plugins ---------------------------------------------------------------
    def _per_plugin(self, hook_name: str) -> list[tuple[str, pluggy.HookCaller]]:
        """``(plugin, caller)`` for each plugin implementing the hook, in registration order
        (the core first): ``caller`` is pluggy's hook caller limited to that one plugin
        (``PluginManager.subset_hook_caller``), so every call goes through pluggy and a
        failure or a registration is attributed to the plugin that made it."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        callers = []
        for impl in impls:
            others = [other.plugin for other in impls if other is not impl]
            try:
                caller = self.pm.subset_hook_caller(hook_name, others)
            except TypeError as exc:  # pluggy keeps the plugins in a set
                raise PluginError(
                    f"plugin {impl.plugin_name}: hook {hook_name}: a plugin must be hashable "
                    f"(a module or an object; iptflow.engine.plugins.make_plugin_manager "
                    f"accepts any): {exc}",
                    plugin=impl.plugin_name,
                    hook=hook_name,
                ) from exc
            callers.append((impl.plugin_name, caller))
        return callers

    def _call(self, hook_name: str, register: Callable[..., None]) -> None:
        # in registration order (the core first), so a duplicate name is blamed on the newcomer
        for plugin, caller in self._per_plugin(hook_name):

            def bound(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
                register(_plugin, *args, **kwargs)

            try:
                caller(register=bound)
            except PluginError as exc:
                if exc.hook is None:  # e.g. a duplicate name: say which hook registered it
                    exc.hook = exc.details["hook"] = hook_name
                raise
            except ProtocolError as exc:
                raise PluginError(
                    f"plugin {plugin}: hook {hook_name}: {exc}", plugin=plugin, hook=hook_name
                ) from exc
            except Exception as exc:
                raise hook_raised(plugin, hook_name, exc) from exc

    def _collect(self) -> None:
        self._call("register_guards", self._add_guard)
        self._call("register_deviation_checks", self._add_check)
        self._call("register_events", self._add_event)
        self._call("register_adaptations", self._add_adaptation)
        self._call("register_protocols", self._add_protocol)

    def _dup(self, kind: str, name: str, plugin: str) -> None:
        raise PluginError(
            f"plugin {plugin}: {kind} {name!r} is already registered by "
            f"{self.sources.get((kind, name), 'another plugin')}",
            plugin=plugin,
        )

    def _add_guard(self, plugin: str, name: str, fn: Callable[..., str | None]) -> None:
        if name in self.guards:
            self._dup("guard", name, plugin)
        self.guards[name] = (fn, plugin)
        self.sources[("guard", name)] = plugin

    def _add_check(
        self,
        plugin: str,
        name: str,
        fn: Callable[..., str | None],
        events: Iterable[str] | None = None,
    ) -> None:
        if name in self.checks:
            self._dup("deviation check", name, plugin)
        if isinstance(events, str):
            raise PluginError(
                f"plugin {plugin}: deviation check {name!r}: events must be a collection of "
                f"event types, not the string {events!r}",
                plugin=plugin,
            )
        self.checks[name] = (fn, plugin)
        self.check_events[name] = frozenset(events) if events is not None else None
        self.sources[("deviation check", name)] = plugin

    def _add_event(self, plugin: str, event_type: EventType) -> None:
        key = (event_type.name, event_type.revision)
        if key in self.event_revisions:
            shown = event_type.name + (f" revision {key[1]}" if key[1] != 1 else "")
            self._dup("event", shown, plugin)
        self.event_revisions[key] = event_type
        if event_type.revision == 1:
            self.event_types[event_type.name] = event_type
        self.event_plugins.setdefault(event_type.name, plugin)
        self.sources.setdefault(("event", event_type.name), plugin)

    def event_type(self, name: str, revision: int = 1) -> EventType | None:
        """A registered event type (revision 1 is the original model)."""
        return self.event_revisions.get((name, revision))

    def _add_adaptation(self, plugin: str, adaptation: AdaptationDef) -> None:
        known = self.adaptation_versions.setdefault(adaptation.id, [])
        if any(a.version == adaptation.version for a, _ in known):
            shown = adaptation.id + (f" {adaptation.version}" if adaptation.version else "")
            self._dup("adaptation", shown, plugin)
        known.append((adaptation, plugin))
        known.sort(key=lambda entry: version_key(entry[0].version or "0"))
        self.adaptations[adaptation.id] = known[-1]
        self.sources[("adaptation", adaptation.id)] = plugin

    def _add_protocol(self, plugin: str, item: ProtocolDef | VariantDef | Path | str) -> None:
        if isinstance(item, (str, Path)):
            item = load_protocol_file(item)
        if item.version in self.versions.get(item.id, {}):
            self._dup("protocol", f"{item.id}@{item.version}", plugin)
        if (item.id in self.variants) != isinstance(item, VariantDef) and item.id in self.versions:
            self._dup("protocol", item.id, plugin)
        self._put(item, plugin)

    def _put(self, item: ProtocolDef | VariantDef, source: str) -> None:
        versions = self.versions.setdefault(item.id, {})
        versions[item.version] = (item, source)
        newest = max(versions, key=version_key)
        target = self.variants if isinstance(item, VariantDef) else self.protocols
        target[item.id] = versions[newest]  # type: ignore[assignment]
        self.sources[("protocol", item.id)] = versions[newest][1]
        self.sources[("protocol", f"{item.id}@{item.version}")] = source

    def _scan_dirs(self) -> None:
        if self._dirs_scanned:
            return
        self._dirs_scanned = True
        dirs = list(self.protocol_dirs)
        dirs += [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
        registered = {(pid, v) for pid, vs in self.versions.items() for v in vs}
        for directory in dirs:
            if not directory.is_dir():
                self._dir_errors.append(f"{directory}: not a directory")
                continue
            for path in sorted([*directory.glob("*.toml"), *directory.glob("*/*.toml")]):
                try:
                    item = load_protocol_file(path)
                except ProtocolFileError as exc:
                    self._dir_errors.append(str(exc))
                    continue
                if item.id in self.versions and (
                    (item.id, item.version) in registered
                    or item.version in self.versions[item.id]
                ):
                    continue  # registered protocols (and the first file found) win
                self._put(item, str(path))

    def search_path_problems(self) -> list[str]:
        """What the protocol search path (``protocol_dirs``, ``IPTFLOW_PROTOCOLS_PATH``) could not
        use, one line each: a directory that is not one, a file that does not load (``FILE:LINE:
        ...``, as ``iptflow check`` says it). Such files are left out of ``protocol_ids()``."""
        self._scan_dirs()
        return list(self._dir_errors)

    # -- resolving -------------------------------------------------------------------------------
    def protocol_ids(self) -> list[str]:
        """Every protocol and variant id (each id once; ``protocol_versions`` lists versions)."""
        self._scan_dirs()
        return sorted(self.versions)

    def protocol_versions(self, protocol_id: str) -> list[str]:
        """The versions of a protocol or variant, oldest first."""
        self._scan_dirs()
        return sorted(self.versions.get(protocol_id, {}), key=version_key)

    def find(self, protocol_ref: str) -> ProtocolDef | VariantDef:
        """A protocol or variant by ``id`` (its newest version) or ``id@version``."""
        protocol_id, _, version = protocol_ref.partition("@")
        if protocol_id not in self.versions or (version and version not in self.versions[protocol_id]):
            self._scan_dirs()
        if protocol_id not in self.versions:
            errors = self._dir_errors
            extra = (
                f" (unreadable protocol files: {_capped(errors[:1], len(errors), '; ')})"
                if errors else ""
            )
            raise UnknownProtocol(
                f"unknown protocol {protocol_id!r}{known_names(protocol_id, self.protocol_ids())}{extra}"
            )
        versions = self.versions[protocol_id]
        if "@" in protocol_ref:
            if version not in versions:
                raise UnknownProtocolVersion(
                    f"unknown version {version!r} of protocol {protocol_id} (known versions: "
                    f"{', '.join(self.protocol_versions(protocol_id))}; write it as "
                    f"{protocol_id}@VERSION, e.g. {protocol_id}@{self.protocol_versions(protocol_id)[0]})"
                )
            return versions[version][0]
        return versions[max(versions, key=version_key)][0]

    def adaptation(self, adaptation_id: str, base_version: str | None = None) -> AdaptationDef:
        """An adaptation by id: the newest version, or the newest that applies to ``base_version``."""
        if adaptation_id not in self.adaptation_versions:
            raise UnknownAdaptation(
                f"unknown adaptation {adaptation_id!r}{known_names(adaptation_id, self.adaptations)}"
            )
        candidates = self.adaptation_versions[adaptation_id]
        if base_version is None:
            return candidates[-1][0]
        fitting = [a for a, _ in candidates if a.supports(base_version)]
        if not fitting:
            return candidates[-1][0]  # compose names the versions it applies to
        exact = [a for a in fitting if a.version == base_version]
        return (exact or fitting)[-1]

    def resolve(self, protocol_id: str, adaptations: Iterable[str] = ()) -> ResolvedProtocol:
        """Resolve ``id`` or ``id@version`` with adaptations; adaptations resolve to the version
        that applies to the base protocol's version."""
        key = (protocol_id, tuple(sorted(set(adaptations))))
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        item = self.find(protocol_id)
        variant = item if isinstance(item, VariantDef) else None
        names = list(key[1])
        if variant is not None:
            base = self.find(variant.extends)
            if isinstance(base, VariantDef):
                raise ProtocolError(
                    f"variant {variant.id} extends {variant.extends}, which is itself a variant"
                )
            names = sorted(set(names) | set(variant.adaptations))
        else:
            base = item  # type: ignore[assignment]
        adaptations_defs = [self.adaptation(name, base.version) for name in names]
        resolved = compose(base, adaptations_defs, variant)  # type: ignore[arg-type]
        self._resolved[key] = resolved
        return resolved

    def compile_resolved(self, resolved: ResolvedProtocol) -> CompiledProtocol:
        fingerprint = resolved.fingerprint
        compiled = self._compiled.get(fingerprint)
        if compiled is None:
            compiled = CompiledProtocol(resolved, self)
            self._compiled[fingerprint] = compiled
        return compiled

    def compile(self, protocol_id: str, adaptations: Iterable[str] = ()) -> CompiledProtocol:
        adaptations = tuple(adaptations)
        key = (protocol_id, tuple(sorted(set(adaptations))))
        compiled = self._compiled_by_key.get(key)
        if compiled is None:  # resolved and compiled once per (protocol, adaptations)
            compiled = self.compile_resolved(self.resolve(protocol_id, adaptations))
            self._compiled_by_key[key] = compiled
        return compiled

    # -- observation hooks -----------------------------------------------------------------------
    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        for plugin, caller in self._observers[hook_name]:
            try:
                caller(**kwargs)
            except Exception as exc:
                raise hook_raised(plugin, hook_name, exc) from exc

    def notify_event_accepted(self, course: Course, event: Any, result: Any) -> None:
        self._observe("event_accepted", course=course, event=event, result=result)

    def notify_state_changed(self, course: Course, source: str, dest: str, event_type: str) -> None:
        self._observe("state_changed", course=course, source=source, dest=dest, event_type=event_type)

    # -- the agenda ------------------------------------------------------------------------------
    def agenda(self, course: Course, as_of: Any) -> list[AgendaItem]:
        """``course.agenda(as_of)``: the engine's items and every plugin's ``agenda_items``,
        in worklist order (iptflow.engine.agenda). Nothing for a closed course."""
        when = check_as_of(course, as_of)
        if course.is_closed:
            return []
        items = core_items(course, when)
        if self._contributors is None:  # pluggy's call order, like the observers
            self._contributors = list(reversed(self._per_plugin("agenda_items")))
        for plugin, caller in self._contributors:
            try:
                results = caller(course=course, as_of=when)
            except Exception as exc:
                raise hook_raised(plugin, "agenda_items", exc) from exc
            for result in results:
                items.extend(_contributed(plugin, result))
        return assemble(items)

def _contributed(plugin: str, result: Any) -> list[AgendaItem]:
    """A plugin's ``agenda_items`` result, each item marked with the plugin's name."""
    if not isinstance(result, (list, tuple)) or not all(isinstance(i, AgendaItem) for i in result):
        raise PluginError(
            f"plugin {plugin}: hook agenda_items must return a list of iptflow.AgendaItem, "
            f"got {type(result).__name__}",
            plugin=plugin,
            hook="agenda_items",
        )
    return [i if i.source else replace(i, source=plugin) for i in result]


def hook_raised(plugin: str, hook_name: str, exc: Exception) -> PluginError:
    """The error for a plugin's hook implementation that raised ``exc``."""
    return PluginError(
        f"plugin {plugin}: hook {hook_name} raised {type(exc).__name__}: {exc}",
        plugin=plugin,
        hook=hook_name,
    )


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry (plugins from ``load_plugins()``, the env search path)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_default_registry() -> None:
    """Forget the process-wide registry and the loaded plugins (tests; after installing a
    plugin at run time): the next ``default_registry()`` loads everything again."""
    global _default
    _default = None
    forget_plugins()
