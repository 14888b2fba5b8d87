"""The core plugin: base events, guards, deviation checks and the shipped protocols."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from iptflow.builtins import deviations_v2, guards_v2  # noqa: F401  (they register themselves)
from iptflow.builtins.agenda import agenda_items  # noqa: F401  (the core's agenda_items hook)
from iptflow.builtins.deviations import BUILTIN_CHECKS
from iptflow.builtins.events import BASE_EVENT_TYPES
from iptflow.builtins.events_v2 import EVENT_TYPES_2
from iptflow.builtins.guards import BUILTIN_GUARDS
from iptflow.engine.hookspecs import hookimpl


@hookimpl
def register_protocols(register: Callable[[Any], None]) -> None:
    # one directory per protocol, one file per version: protocols/ID/VERSION.toml
    for folder in sorted(files("iptflow_protocols").iterdir(), key=lambda p: p.name):
        if folder.is_dir():
            for entry in sorted(folder.iterdir(), key=lambda p: p.name):
                if entry.name.endswith(".toml"):
                    register(str(entry))


@hookimpl
def register_guards(register: Callable[[str, Callable[..., str | None]], None]) -> None:
    for name, fn in BUILTIN_GUARDS.items():
        register(name, fn)


@hookimpl
def register_deviation_checks(register: Callable[..., None]) -> None:
    for name, (fn, events) in BUILTIN_CHECKS.items():
        register(name, fn, events=events)


@hookimpl
def register_events(register: Callable[[Any], None]) -> None:
    for event_type in (*BASE_EVENT_TYPES, *EVENT_TYPES_2):
        register(event_type)
