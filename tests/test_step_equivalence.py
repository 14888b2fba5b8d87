"""CompiledProtocol.step moves a course exactly as the shared transitions.Machine would."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

from iptflow import default_registry
from iptflow.errors import ProtocolError
from iptflow.machine import CompiledProtocol


class Model:
    """Stands in for a course: a state, facts, and the two ways a state change is reported."""

    def __init__(self, state: str, fmt: str) -> None:
        self.state = state
        self.facts = type("Facts", (), {"format": fmt})()
        self.seen: list[tuple[str, str, str]] = []

    def _entered(self, source: str, dest: str, event_type: str) -> None:
        self.seen.append((source, dest, event_type))

    def _state_changed(self, event_data: Any) -> None:
        self._entered(event_data.transition.source, event_data.transition.dest, event_data.event.name)


def compiled_protocols() -> list[CompiledProtocol]:
    registry = default_registry()
    names = sorted(registry.adaptations)
    out = [registry.compile("ipt-depression")]
    for size in (1, 2):
        for combo in combinations(names, size):
            try:
                out.append(registry.compile("ipt-depression", combo))
            except ProtocolError:
                continue  # conflicting adaptations have no machine
    return out


def _name(compiled: CompiledProtocol) -> str:
    return "+".join(compiled.protocol.adaptations) or "base"


@pytest.mark.parametrize("compiled", compiled_protocols(), ids=_name)
@pytest.mark.parametrize("fmt", ["individual", "group"])
def test_step_agrees_with_the_machine_for_every_state_changing_event(
    compiled: CompiledProtocol, fmt: str
):
    checked = 0
    for state, events in compiled.allowed.items():
        for event, routes in events.items():
            if all(r.dest is None for r in routes):
                assert compiled.steps[state][event] == ()
                continue
            by_machine = Model(state, fmt)
            fired = compiled.machine.events[event].trigger(by_machine)
            by_step = Model(state, fmt)
            try:
                compiled.step(by_step, event)
                stepped = True
            except ProtocolError:
                stepped = False
            assert stepped == fired, (state, event)
            assert by_step.state == by_machine.state, (state, event)
            assert by_step.seen == by_machine.seen, (state, event)
            checked += 1
    assert checked >= 5
