"""Plugin loading: one lazy ``load_plugins()``.

Plugins are modules registered through the ``iptflow`` entry-point group. Every plugin is
registered the same way, the core included: ``iptflow.builtins`` (base events, guards,
deviation checks and the shipped protocols) is the entry point of that name in iptflow's own
distribution, so the engine never imports it and it has no hook a third party lacks.
``IPTFLOW_PLUGINS`` restricts which *other* installed plugins load (a comma-separated list of
entry-point names; empty means none): the core always loads, as every course needs it.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

import pluggy

from iptflow.engine import hookspecs
from iptflow.errors import PluginError

ENTRY_POINT_GROUP = "iptflow"
ALLOW_ENV = "IPTFLOW_PLUGINS"
CORE_PLUGIN = "iptflow.builtins"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    source: str  # "core", or "entry point <dist> <version>", or "registered"


_pm: pluggy.PluginManager | None = None
_info: dict[str, PluginInfo] = {}


def allowed_plugins() -> set[str] | None:
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def make_plugin_manager(
    *,
    entry_points_too: bool = True,
    allow: set[str] | None = None,
    extra: dict[str, ModuleType | object] | None = None,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Build a plugin manager: the core, installed plugins (filtered by ``allow``), ``extra``."""
    pm = pluggy.PluginManager("iptflow")
    pm.add_hookspecs(hookspecs)
    info: dict[str, PluginInfo] = {}
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    core = found.pop(CORE_PLUGIN, None)
    if core is None:
        raise PluginError(
            f"plugin {CORE_PLUGIN}: the core plugin's entry point is missing: iptflow is not "
            "installed (pip install iptflow, or pip install -e . in a source tree)",
            plugin=CORE_PLUGIN,
        )
    _load(pm, info, core, "core")
    if entry_points_too:
        for name in sorted(found):
            if allow is not None and name not in allow:
                continue
            _load(pm, info, found[name], None)
    for name, module in (extra or {}).items():
        _register(pm, module, name)
        info[name] = PluginInfo(name, getattr(module, "__name__", repr(module)), "registered")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name}: {exc}", plugin=name) from exc
    return pm, info


def _load(
    pm: pluggy.PluginManager, info: dict[str, PluginInfo], ep: EntryPoint, source: str | None
) -> None:
    """Import an entry point's module and register it under the entry point's name."""
    if pm.has_plugin(ep.name):
        return
    try:
        module = ep.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {ep.name}: cannot load {ep.value}: {type(exc).__name__}: {exc}",
            plugin=ep.name,
        ) from exc
    _register(pm, module, ep.name)
    if source is None:
        dist = ep.dist
        source = f"entry point of {dist.name} {dist.version}" if dist else "entry point"
    info[ep.name] = PluginInfo(ep.name, ep.value, source)


class _HashablePlugin:
    """Stands in for a plugin object that cannot be hashed (e.g. a ``SimpleNamespace``):
    pluggy's ``subset_hook_caller``, through which the registry calls each plugin's hooks,
    keeps plugins in a set. It holds the plugin's functions and methods (bound to it)."""

    def __init__(self, plugin: object) -> None:
        self._plugin = plugin
        for attr in dir(plugin):
            static = inspect.getattr_static(plugin, attr)
            if not attr.startswith("__") and (
                inspect.isroutine(static) or isinstance(static, (staticmethod, classmethod))
            ):
                setattr(self, attr, getattr(plugin, attr))

    def __repr__(self) -> str:
        return repr(self._plugin)


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register a plugin; a hook implementation pluggy cannot accept names the plugin."""
    try:
        hash(plugin)
    except TypeError:
        plugin = _HashablePlugin(plugin)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name}: {exc}", plugin=name) from exc


def forget_plugins() -> None:
    """Forget the loaded plugins, so the next ``load_plugins()`` looks again (after installing
    a plugin at run time). ``iptflow.engine.registry.reset_default_registry`` calls it."""
    global _pm, _info
    _pm = None
    _info = {}


def load_plugins() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _pm, _info
    if _pm is None:
        _pm, _info = make_plugin_manager(allow=allowed_plugins())
    return _pm


def plugin_info() -> dict[str, PluginInfo]:
    load_plugins()
    return dict(_info)
