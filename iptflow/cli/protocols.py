"""``iptflow protocols``, ``iptflow show`` and ``iptflow schema``."""

from __future__ import annotations

import json

import click

from iptflow.cli.options import json_option, protocols_dir_option, registry_for
from iptflow.engine.registry import default_registry
from iptflow.interop import diagram, schemas, svg


@click.command()
@json_option
@protocols_dir_option
def protocols(as_json: bool, protocols_dirs: tuple[str, ...]) -> None:
    """List the protocols, variants and adaptations that are available."""
    registry = registry_for(protocols_dirs)
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
        click.echo(json.dumps({"protocols": items, "adaptations": adaptations}, indent=2))
        return
    for it in items:
        extra = f" (variant of {it['extends']})" if it["kind"] == "variant" else ""
        click.echo(f"{it['id']} {it['version']}: {it['title']}{extra}")
    if adaptations:
        click.echo("adaptations:")
        for a in adaptations:
            click.echo(f"  {a['id']}: {a['title']} (plugin {a['plugin']})")


@click.command()
@click.argument("protocol")
@click.option("--adapt", "adaptations", multiple=True, help="An adaptation to apply (repeatable).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot", "svg"]), default="text",
    show_default=True,
    help="text, JSON, or a diagram: Mermaid, Graphviz DOT, or SVG (drawn without graphviz).",
)
@protocols_dir_option
def show(
    protocol: str, adaptations: tuple[str, ...], fmt: str, protocols_dirs: tuple[str, ...]
) -> None:
    """Show a resolved protocol: its states, events, requirements, or a diagram."""
    registry = registry_for(protocols_dirs)
    resolved = registry.resolve(protocol, adaptations)
    registry.compile_resolved(resolved)  # a protocol that does not compile is an error here too
    if fmt == "json":
        click.echo(json.dumps(diagram.to_json(resolved, registry), indent=2))
    elif fmt == "mermaid":
        click.echo(diagram.to_mermaid(resolved, registry), nl=False)
    elif fmt == "dot":
        click.echo(diagram.to_dot(resolved, registry), nl=False)
    elif fmt == "svg":
        click.echo(svg.to_svg(resolved, registry), nl=False)
    else:
        click.echo(diagram.to_text(resolved, registry))


@click.command()
@click.argument("kind", type=click.Choice(list(schemas.KINDS)))
@click.option(
    "--plugins", "with_plugins", is_flag=True,
    help="event and course-file: include the event types of every loaded plugin, not only the base events.",
)
def schema(kind: str, with_plugins: bool) -> None:
    """Print the JSON Schema of a file format (protocol, variant, adaptation, event, course-file)."""
    click.echo(schemas.schema_text(kind, default_registry() if with_plugins else None), nl=False)
