"""Plugin loading: one lazy ``load_plugins()``.

Plugins are modules registered through the ``iptflow`` entry-point group; the four built-in
adaptations are registered the same way (see pyproject.toml), not special-cased. Only the
core (``iptflow.builtins``: base events, guards, deviation checks and shipped protocols) is
always registered. ``IPTFLOW_PLUGINS`` restricts which installed plugins load: a
comma-separated list of entry-point names; empty means none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from . import builtins, hookspecs
from .errors import PluginError

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
    pm.register(builtins, name=CORE_PLUGIN)
    info[CORE_PLUGIN] = PluginInfo(CORE_PLUGIN, builtins.__name__, "core")
    if entry_points_too:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allow is not None and ep.name not in allow:
                continue
            if pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name}: cannot load {ep.value}: {type(exc).__name__}: {exc}",
                    plugin=ep.name,
                ) from exc
            _register(pm, module, ep.name)
            dist = ep.dist
            where = f"entry point of {dist.name} {dist.version}" if dist else "entry point"
            info[ep.name] = PluginInfo(ep.name, ep.value, where)
    for name, module in (extra or {}).items():
        _register(pm, module, name)
        info[name] = PluginInfo(name, getattr(module, "__name__", repr(module)), "registered")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name}: {exc}", plugin=name) from exc
    return pm, info


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register a plugin; a hook implementation pluggy cannot accept names the plugin."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name}: {exc}", plugin=name) from exc


def load_plugins() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _pm, _info
    if _pm is None:
        _pm, _info = make_plugin_manager(allow=allowed_plugins())
    return _pm


def plugin_info() -> dict[str, PluginInfo]:
    load_plugins()
    return dict(_info)


def reset() -> None:
    """Forget the loaded plugins (tests; after installing a plugin at run time)."""
    global _pm, _info
    _pm = None
    _info = {}
    from . import registry

    registry.reset_default_registry()
