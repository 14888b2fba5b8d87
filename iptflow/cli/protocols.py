"""``iptflow protocols``, ``iptflow show`` and ``iptflow schema``."""

from __future__ import annotations

import click

from iptflow.cli.options import json_option, protocols_dir_option, registry_for
from iptflow.cli.output import echo, emit_json, json_text
from iptflow.engine.registry import default_registry
from iptflow.interop import diagram, schemas, svg


@click.command()
@json_option
@protocols_dir_option
def protocols(as_json: bool, protocols_dirs: tuple[str, ...]) -> None:
    """List the protocols, variants and adaptations that are available.

    Protocol files on the search path that cannot be read or loaded are listed too, as
    problems (`PROBLEM FILE:LINE: ...`; with --json, "problems"). Exit status: 0, or 1 when
    some file on the search path could not be used (the rest is still listed).
    """
    registry = registry_for(protocols_dirs)
    problems = registry.search_path_problems()
    items = []
    for pid in registry.protocol_ids():
        item = registry.find(pid)
        kind = "variant" if pid in registry.variants else "protocol"
        items.append(
            {
                "id": pid,
                "kind": kind,
                "version": item.version,
                "title": item.title,
                "source": registry.sources.get(("protocol", pid)),
                **({"extends": item.extends} if kind == "variant" else {}),  # type: ignore[union-attr]
            }
        )
    adaptations = [
        {"id": aid, "title": a.title, "plugin": plugin}
        for aid, (a, plugin) in sorted(registry.adaptations.items())
    ]
    if as_json:
        emit_json({"protocols": items, "adaptations": adaptations, "problems": problems})
        raise SystemExit(1 if problems else 0)
    for it in items:
        extra = f" (variant of {it['extends']})" if it["kind"] == "variant" else ""
        echo(f"{it['id']} {it['version']}: {it['title']}{extra}")
    if adaptations:
        echo("adaptations:")
        for a in adaptations:
            echo(f"  {a['id']}: {a['title']} (plugin {a['plugin']})")
    for problem in problems:
        echo(f"PROBLEM {problem}")
    raise SystemExit(1 if problems else 0)


@click.command()
@click.argument("protocol")
@click.option("--adapt", "adaptations", multiple=True, help="An adaptation to apply (repeatable).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot", "svg"]), default="text",
    show_default=True,
    help="text, JSON, or a diagram: Mermaid, Graphviz DOT, or SVG (drawn without graphviz).",
)
@click.option("--json", "as_json", is_flag=True,
              help="Print the resolved protocol as JSON (the same as --format json).")
@protocols_dir_option
def show(
    protocol: str, adaptations: tuple[str, ...], fmt: str, as_json: bool,
    protocols_dirs: tuple[str, ...],
) -> None:
    """Show a resolved protocol: its states, events, requirements, or a diagram."""
    if as_json:
        if fmt not in ("text", "json"):
            raise click.UsageError(f"--json and --format {fmt} ask for two different outputs")
        fmt = "json"
    registry = registry_for(protocols_dirs)
    resolved = registry.resolve(protocol, adaptations)
    registry.compile_resolved(resolved)  # a protocol that does not compile is an error here too
    if fmt == "json":
        echo(json_text(diagram.to_json(resolved, registry)))
    elif fmt == "mermaid":
        echo(diagram.to_mermaid(resolved, registry), nl=False)
    elif fmt == "dot":
        echo(diagram.to_dot(resolved, registry), nl=False)
    elif fmt == "svg":
        echo(svg.to_svg(resolved, registry), nl=False)
    else:
        echo(diagram.to_text(resolved, registry))


@click.command()
@click.argument("kind", type=click.Choice(list(schemas.KINDS)))
@click.option(
    "--plugins", "with_plugins", is_flag=True,
    help="event and course-file: include the event types of every loaded plugin, not only the base events.",
)
def schema(kind: str, with_plugins: bool) -> None:
    """Print the JSON Schema of a file format (protocol, variant, adaptation, event, course-file)."""
    echo(schemas.schema_text(kind, default_registry() if with_plugins else None), nl=False)
