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
    """List the protocols, variants and adaptations that are available, every version.

    A course names a protocol by id (its newest version) or as ID@VERSION. Protocol files on
    the search path that cannot be read or loaded are listed too, as problems (`PROBLEM
    FILE:LINE: ...`; with --json, "problems"). Exit status: 0, or 1 when some file on the
    search path could not be used (the rest is still listed).
    """
    registry = registry_for(protocols_dirs)
    problems = registry.search_path_problems()
    items = []
    for pid in registry.protocol_ids():
        versions = registry.protocol_versions(pid)
        for version in versions:
            item = registry.find(f"{pid}@{version}")
            kind = "variant" if pid in registry.variants else "protocol"
            items.append(
                {
                    "id": pid,
                    "kind": kind,
                    "version": item.version,
                    "newest": version == versions[-1],
                    "title": item.title,
                    "source": registry.sources.get(("protocol", f"{pid}@{version}")),
                    **({"extends": item.extends} if kind == "variant" else {}),  # type: ignore[union-attr]
                }
            )
    adaptations = [
        {"id": aid, "version": a.version, "base_versions": list(a.base_versions),
         "title": a.title, "plugin": plugin}
        for aid in sorted(registry.adaptation_versions)
        for a, plugin in registry.adaptation_versions[aid]
    ]
    if as_json:
        emit_json({"protocols": items, "adaptations": adaptations, "problems": problems})
        raise SystemExit(1 if problems else 0)
    for it in items:
        extra = f" (variant of {it['extends']})" if it["kind"] == "variant" else ""
        newest = " (newest)" if it["newest"] and len(registry.protocol_versions(it["id"])) > 1 else ""
        echo(f"{it['id']} {it['version']}: {it['title']}{extra}{newest}")
    if adaptations:
        echo("adaptations:")
        for a in adaptations:
            version = f" {a['version']}" if a["version"] else ""
            applies = f", for {', '.join(a['base_versions'])}" if a["base_versions"] else ""
            echo(f"  {a['id']}{version}: {a['title']} (plugin {a['plugin']}{applies})")
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
@click.option(
    "--protocol", default=None,
    help="event and course-file: only the events of this protocol, ID or ID@VERSION "
    "(e.g. ipt-depression@1.0.0).",
)
@click.option("--adapt", "adaptations", multiple=True, help="With --protocol: an adaptation (repeatable).")
def schema(kind: str, with_plugins: bool, protocol: str | None, adaptations: tuple[str, ...]) -> None:
    """Print the JSON Schema of a file format (protocol, variant, adaptation, event, course-file).

    Events are those of the newest base protocol unless --protocol names another version.
    """
    registry = default_registry() if with_plugins or protocol else None
    echo(schemas.schema_text(kind, registry, protocol, adaptations), nl=False)
