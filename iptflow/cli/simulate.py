"""``iptflow simulate``: a synthetic cohort from a trajectory model, run into a store."""

from __future__ import annotations

import click

from iptflow.cli.options import db_option, json_option, progress_option, protocols_dir_option
from iptflow.cli.output import echo, emit_json, progress, show_progress
from iptflow.research.model import load_trajectory_model
from iptflow.research.simulate import SimulationSpec, simulate_cohort


@click.command()
@click.argument("protocol")
@click.option("--adapt", "adaptations", multiple=True, help="An adaptation to enable (repeatable).")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of courses.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same cohort.")
@db_option(help="The store to write the synthetic courses into (created if missing).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A trajectory model TOML file (default: the built-in parameters).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that simulate and store courses; the store does not depend on it.")
@progress_option
@json_option
@protocols_dir_option
def simulate(protocol: str, adaptations: tuple[str, ...], n: int, seed: int, db_path: str,
             model_path: str | None, workers: int, progress_choice: bool | None, as_json: bool,
             protocols_dirs: tuple[str, ...]) -> None:
    """Simulate N synthetic courses of PROTOCOL into the store DB (every course marked synthetic).

    Run again with the same arguments, it completes an interrupted run: courses already stored
    are kept and only the missing ones are simulated."""
    model = load_trajectory_model(model_path)
    spec = SimulationSpec(protocol, tuple(adaptations), n, seed, model, tuple(protocols_dirs))
    with progress(n, "simulating", show_progress(progress_choice)) as bar:
        summary = simulate_cohort(spec, db_path, workers=workers, progress=bar.update)
    if as_json:
        emit_json(summary.to_dict(), sort_keys=True)
        return
    label = "+".join([summary.protocol, *summary.adaptations])
    states = ", ".join(f"{k} {v}" for k, v in summary.final_states.items())
    echo(f"SYNTHETIC: simulated {summary.n} courses of {label} (seed {summary.seed}) into {db_path}")
    echo(f"final states: {states}")
    if summary.created < summary.n:
        echo(f"resumed: {summary.n - summary.created} of these courses were already stored; "
             f"{summary.created} simulated now")
