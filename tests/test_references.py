"""The one reference checker (iptflow/protocol/references.py): one test per rule, and the
compiler, ``iptflow check`` and lint giving the same message for the same broken protocol."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Annotated, Any

import pytest
from iptflow_protocols import __file__ as protocols_init
from pydantic import Field

from iptflow.engine.facts import Facts
from iptflow.engine.registry import Registry, default_registry
from iptflow.errors import ProtocolError
from iptflow.protocol.models import AdaptationDef, ProtocolDef
from iptflow.protocol.references import (
    Finding,
    Refers,
    check_references,
    params_problem,
    params_rule,
)
from iptflow.research.check import check_file
from iptflow.research.lint import lint_protocol

BASE = Path(protocols_init).with_name("ipt-depression") / "1.0.0.toml"


def base_data() -> dict[str, Any]:
    return tomllib.loads(BASE.read_text(encoding="utf-8"))


def find(model: ProtocolDef | AdaptationDef, base: ProtocolDef | None = None) -> list[Finding]:
    reg = default_registry()
    return check_references(
        model,
        guards={name: entry[0] for name, entry in reg.guards.items()},
        checks={name: entry[0] for name, entry in reg.checks.items()},
        event_types=reg.event_types,
        course_attributes=Facts.__dataclass_fields__,
        base=base,
    )


def broken(change: Any) -> list[tuple[str, str, str]]:
    """(code, field, message) of every finding in the base protocol after ``change(data)``."""
    data = base_data()
    change(data)
    return [(f.code, f.field, f.message) for f in find(ProtocolDef.model_validate(data))]


def transition(**fields: Any) -> Any:
    return lambda data: data["transitions"].append(fields)


def test_the_shipped_protocol_has_no_broken_reference() -> None:
    assert find(ProtocolDef.model_validate(base_data())) == []


def test_unknown_initial_state() -> None:
    assert broken(lambda d: d.update(initial_state="asessment")) == [
        ("undefined_state", "initial_state", "unknown initial state 'asessment'")]


def test_final_initial_state() -> None:
    (found,) = broken(lambda d: d.update(initial_state="completed"))
    assert found[:2] == ("final_initial_state", "initial_state") and "is final" in found[2]


def test_unknown_acute_state() -> None:
    assert broken(lambda d: d["acute_states"].append("midle")) == [
        ("undefined_state", "acute_states[3]", "unknown acute state 'midle'")]


def test_transition_from_unknown_state() -> None:
    n = len(base_data()["transitions"])
    assert broken(transition(event="session_held", source=["limbo"])) == [
        ("undefined_state", f"transitions[{n}].source", "session_held from unknown state 'limbo'")]


def test_transition_to_unknown_state() -> None:
    n = len(base_data()["transitions"])
    assert broken(transition(event="session_held", source=["middle"], dest="nowhere")) == [
        ("undefined_state", f"transitions[{n}].dest", "session_held to unknown state 'nowhere'")]


def test_transition_from_final_state() -> None:
    (found,) = broken(transition(event="session_held", source=["completed"]))
    assert found[:2] == ("event_from_final_state", f"transitions[{len(base_data()['transitions'])}].source")
    assert "session_held from final state 'completed'" in found[2]


def test_a_source_of_any_active_state_is_not_a_state_name() -> None:
    assert broken(transition(event="session_held", source="*")) == []


def test_unregistered_event_type_in_transitions_reviews_and_tasks() -> None:
    def change(data: dict[str, Any]) -> None:
        data["transitions"].append({"event": "sesion_held", "source": ["middle"]})
        data["reviews"]["risk"]["closed_by"] = ["risk_asessed"]
        data["task_events"] = ["homework_done"]

    found = broken(change)
    assert [(code, field) for code, field, _ in found] == [
        ("unknown_event", f"transitions[{len(base_data()['transitions'])}].event"),
        ("unknown_event", "reviews.risk.closed_by[0]"),
        ("unknown_event", "task_events[0]"),
    ]
    assert found[0][2] == ("no event type 'sesion_held' is registered "
                           "(is the plugin that defines it installed?)")


def test_route_on_something_a_course_does_not_have() -> None:
    (found,) = broken(transition(event="session_held", source=["middle"], when={"fromat": "group"}))
    assert found[0] == "unknown_course_attribute"
    assert found[2] == "session_held from middle is routed on 'fromat', which is not a course attribute"


def test_route_attributes_are_not_checked_without_course_attributes() -> None:
    data = base_data()
    data["transitions"].append({"event": "session_held", "source": ["middle"], "when": {"x": "y"}})
    reg = default_registry()
    found = check_references(
        ProtocolDef.model_validate(data),
        guards={name: entry[0] for name, entry in reg.guards.items()},
        checks={name: entry[0] for name, entry in reg.checks.items()},
        event_types=reg.event_types,
    )
    assert found == []


def test_requirement_used_but_not_defined() -> None:
    n = len(base_data()["transitions"])
    assert broken(transition(event="session_held", source=["middle"], requires=["magic"])) == [
        ("undefined_requirement", f"transitions[{n}].requires[0]",
         "session_held from middle requires 'magic', which is not defined "
         "(define it under [requirements.magic])")]


def test_open_requires_names_an_undefined_requirement() -> None:
    (found,) = broken(lambda d: d.update(open_requires=["consent"]))
    assert found[:2] == ("undefined_requirement", "open_requires[0]")
    assert found[2].startswith("course_opened requires 'consent', which is not defined")


def test_unknown_guard() -> None:
    assert broken(lambda d: d["requirements"].update(magic={"guard": "no_such_guard"})) == [
        ("unknown_guard", "requirements.magic.guard", "requirement 'magic' uses unknown guard "
         "'no_such_guard', which no installed plugin registers")]


def test_guard_params_that_do_not_fit() -> None:
    change = {"guard": "event_recorded", "params": {"event": "x"}}
    assert broken(lambda d: d["requirements"].update(r=change)) == [
        ("bad_params", "requirements.r.params", "requirement 'r' (guard 'event_recorded'): unknown "
         "parameter(s) 'event' (it takes: event_type, state, count)")]


def test_unknown_deviation_check() -> None:
    (found,) = broken(lambda d: d["deviations"][1].update(check="session_gaps"))
    assert found == ("unknown_check", "deviations[1].check", "deviation 'session_gap' uses unknown "
                     "check 'session_gaps', which no installed plugin registers")


def test_deviation_params_that_do_not_fit() -> None:
    (found,) = broken(lambda d: d["deviations"][1].update(params={"dayz": 3}))
    assert found[:2] == ("bad_params", "deviations[1].params")
    assert found[2].startswith("deviation 'session_gap' (check 'session_gap'): unknown parameter(s) 'dayz'")


def test_instrument_opens_an_undefined_review() -> None:
    (found,) = broken(lambda d: d["instruments"]["phq9"].update(
        opens_reviews=[{"review": "manic", "score_at_least": 3}]))
    assert found == ("undefined_review", "instruments.phq9.opens_reviews[0]",
                     "instrument 'phq9' opens unknown review 'manic'")


def test_undefined_primary_instrument() -> None:
    assert broken(lambda d: d["primary_instruments"].append("bdi")) == [
        ("undefined_instrument", "primary_instruments[2]", "primary instrument 'bdi' is not defined")]


def test_an_adaptation_refers_to_what_its_base_defines() -> None:
    base = ProtocolDef.model_validate(base_data())
    adaptation = AdaptationDef.model_validate({
        "id": "a", "title": "A",
        "extra_requires": [{"event": "course_completed", "source": ["termination"],
                            "requires": ["session_held", "nope"]}],
        "primary_instruments": ["phq9"],
    })
    assert [(f.code, f.field) for f in find(adaptation, base)] == [
        ("undefined_requirement", "extra_requires[0].requires[1]")]
    assert {f.code for f in find(adaptation)} == {"undefined_state", "undefined_requirement",
                                                  "undefined_instrument"}


def test_params_problem() -> None:
    def guard(course: Any, event: Any, count: int, state: str | None = None) -> None:
        return None

    assert params_problem(guard, {"count": 2}) is None
    assert params_problem(guard, {"cuont": 2}) == "unknown parameter(s) 'cuont' (it takes: count, state)"
    assert "missing" in (params_problem(guard, {}) or "")
    assert params_problem(lambda course, event, **kw: None, {"anything": 1}) is None


def test_params_are_validated_strictly_against_their_annotations() -> None:
    def guard(course: Any, event: Any, count: Annotated[int, Field(ge=1)], days: float = 14,
              levels: list[str] | None = None, label: str = "") -> None:
        return None

    assert params_problem(guard, {"count": 2, "days": 7, "levels": ["high"]}) is None  # 7: int is a float
    assert params_problem(guard, {"count": "4"}) == "parameter 'count' must be an integer, not \"4\""
    assert params_problem(guard, {"count": True}) == "parameter 'count' must be an integer, not true"
    assert params_problem(guard, {"count": 0}) == (
        "parameter 'count' must be greater than or equal to 1, not 0")
    assert params_problem(guard, {"count": 1, "days": "ten"}) == (
        "parameter 'days' must be a number, not \"ten\"")
    assert params_problem(guard, {"count": 1, "days": float("nan")}) is None  # no range declared
    assert params_problem(guard, {"count": 1, "levels": "high"}) == (
        "parameter 'levels' must be a list of texts, not \"high\"")
    assert params_problem(guard, {"count": 1, "label": 3}) == (
        "parameter 'label' must be text (a quoted string), not 3")


def test_an_annotation_that_cannot_be_resolved_accepts_anything() -> None:
    def guard(course: Any, event: Any, thing: NotImportedHere, count: int = 1) -> None:  # noqa: F821
        return None

    guard.__annotations__["thing"] = "NotImportedHere"  # as under `from __future__ import annotations`
    assert params_problem(guard, {"thing": object(), "count": 2}) is None
    assert params_problem(guard, {"thing": 1, "count": "2"}) == (
        "parameter 'count' must be an integer, not \"2\"")


def test_params_rule_checks_parameters_together() -> None:
    @params_rule(lambda p: "low above high" if p["low"] > p["high"] else None)
    def guard(course: Any, event: Any, low: int, high: int = 10) -> None:
        return None

    assert params_problem(guard, {"low": 3}) is None
    assert params_problem(guard, {"low": 11}) == "low above high"  # the default takes part
    assert params_problem(guard, {"low": "x"}) == "parameter 'low' must be an integer, not \"x\""


def test_refers_checks_a_name_against_what_the_protocol_defines() -> None:
    def guard(course: Any, event: Any, instrument: Annotated[str, Refers("instruments", also=("baseline",))],
              state: Annotated[str, Refers("states")] | None = None) -> None:
        return None

    names = {"instruments": {"phq9", "hamd"}, "states": {"middle"}}
    assert params_problem(guard, {"instrument": "phq9", "state": "middle"}, names) is None
    assert params_problem(guard, {"instrument": "baseline"}, names) is None
    assert params_problem(guard, {"instrument": "srm"}, names) == (
        "parameter 'instrument': 'srm' is not an instrument of this protocol (known: hamd, phq9, baseline)")
    assert params_problem(guard, {"instrument": "srm"}) is None  # without names: the type only
    assert "'nowhere' is not a state" in (params_problem(guard, {"instrument": "phq9", "state": "nowhere"},
                                                         names) or "")


def test_every_builtin_guard_and_check_declares_what_it_accepts() -> None:
    """Every parameter of a registered guard or check has an annotation iptflow can read."""
    reg = default_registry()
    for kind, entries in (("guard", reg.guards), ("check", reg.checks)):
        for name, (fn, _plugin) in entries.items():
            for param in list(inspect.signature(fn).parameters.values())[2:]:
                assert param.annotation is not inspect.Parameter.empty, f"{kind} {name}: {param.name}"
                assert params_problem(fn, {param.name: object()}) is not None, (
                    f"{kind} {name}: parameter {param.name} accepts anything")


@pytest.mark.parametrize("broken_text, message", [
    ('\n[requirements.magic]\nguard = "no_such_guard"\n',
     "requirement 'magic' uses unknown guard 'no_such_guard', which no installed plugin registers"),
    ('\n[[transitions]]\nevent = "session_held"\nsource = ["middle"]\nrequires = ["magic"]\n',
     "session_held from middle requires 'magic', which is not defined "
     "(define it under [requirements.magic])"),
    ('\n[[transitions]]\nevent = "session_held"\nsource = ["middle"]\ndest = "nowhere"\n',
     "session_held to unknown state 'nowhere'"),
])
def test_compile_check_and_lint_say_the_same(tmp_path: Path, broken_text: str, message: str) -> None:
    text = BASE.read_text(encoding="utf-8").replace('id = "ipt-depression"', 'id = "ipt-broken"')
    path = tmp_path / "broken.toml"
    path.write_text(text + broken_text, encoding="utf-8")
    registry = Registry(protocol_dirs=[tmp_path])

    with pytest.raises(ProtocolError) as compiled:
        registry.compile("ipt-broken")
    assert compiled.value.message == f"protocol ipt-broken: {message}"
    (problem,) = check_file(path, registry).problems
    assert problem.message == message and problem.line is not None
    linted = [f.message for f in lint_protocol("ipt-broken", registry=registry)]
    assert message in linted
