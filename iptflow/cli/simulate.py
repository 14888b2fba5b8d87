"""``iptflow simulate``: a synthetic cohort from a trajectory model, run into a store."""

from __future__ import annotations

import json
import sys

import click

from iptflow.cli.options import json_option, protocols_dir_option
from iptflow.research.model import load_trajectory_model
from iptflow.research.simulate import SimulationSpec, simulate_cohort


@click.command()
@click.argument("protocol")
@click.option("--adapt", "adaptations", multiple=True, help="An adaptation to enable (repeatable).")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of courses.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same cohort.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="The store to write the synthetic courses into (created if missing).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A trajectory model TOML file (default: the built-in parameters).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that generate courses; results do not depend on it.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar on stderr (default: only when stderr is a terminal).")
@json_option
@protocols_dir_option
def simulate(protocol: str, adaptations: tuple[str, ...], n: int, seed: int, db_path: str,
             model_path: str | None, workers: int, progress: bool | None, as_json: bool,
             protocols_dirs: tuple[str, ...]) -> None:
    """Simulate N synthetic courses of PROTOCOL into the store DB (every course marked synthetic)."""
    model = load_trajectory_model(model_path)
    spec = SimulationSpec(protocol, tuple(adaptations), n, seed, model, tuple(protocols_dirs))
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        with click.progressbar(length=n, label="simulating", file=sys.stderr) as bar:
            summary = simulate_cohort(spec, db_path, workers=workers, progress=bar.update)
    else:
        summary = simulate_cohort(spec, db_path, workers=workers)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), sort_keys=True))
        return
    label = "+".join([summary.protocol, *summary.adaptations])
    states = ", ".join(f"{k} {v}" for k, v in summary.final_states.items())
    click.echo(f"SYNTHETIC: simulated {summary.n} courses of {label} (seed {summary.seed}) into {db_path}")
    click.echo(f"final states: {states}")
