"""``iptflow plugins``: the loaded plugins, where each comes from, its hooks and what it added."""

from __future__ import annotations

from typing import Any

import click

from iptflow.cli.options import json_option
from iptflow.cli.output import echo, emit_json
from iptflow.engine.plugins import load_plugins, plugin_info
from iptflow.engine.registry import default_registry

# what a plugin registered, by the registry's kind name -> the key in the listing
_KINDS = {
    "protocol": "protocols",
    "adaptation": "adaptations",
    "event": "events",
    "guard": "guards",
    "deviation check": "deviation_checks",
}


def plugin_listing() -> list[dict[str, Any]]:
    """One entry per loaded plugin: name, module, source, hooks, and what it registered."""
    pm = load_plugins()
    registry = default_registry()
    registered: dict[str, dict[str, list[str]]] = {}
    for (kind, name), plugin in registry.sources.items():
        if kind in _KINDS:
            registered.setdefault(plugin, {}).setdefault(_KINDS[kind], []).append(name)
    out = []
    for name, info in plugin_info().items():
        plugin = pm.get_plugin(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        adds = registered.get(name, {})
        out.append(
            {
                "name": name,
                "module": info.module,
                "source": info.source,
                "hooks": hooks,
                "registers": {key: sorted(adds[key]) for key in _KINDS.values() if key in adds},
            }
        )
    return out


@click.command()
@json_option
def plugins(as_json: bool) -> None:
    """List the loaded plugins: where each comes from and the hooks it implements.

    IPTFLOW_PLUGINS (comma-separated entry-point names) restricts which installed plugins load.
    With --json: {"plugins": [{name, module, source, hooks, registers}, ...]}.
    """
    listing = plugin_listing()
    if as_json:
        emit_json({"plugins": listing})
        return
    for item in listing:
        echo(f"{item['name']} ({item['module']}; {item['source']})")
        echo(f"  hooks: {', '.join(item['hooks']) or 'none'}")
        for key, names in item["registers"].items():
            echo(f"  {key.replace('_', ' ')}: {', '.join(names)}")
