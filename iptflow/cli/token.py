"""``iptflow token create|list|revoke``: the bearer tokens of ``iptflow serve``
(docs/service.md#tokens)."""

from __future__ import annotations

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.options import json_option
from iptflow.cli.output import echo, emit_json
from iptflow.store.tokens import ROLES, create_token, revoke_token, tokens


@click.group()
def token() -> None:
    """Create, list and revoke the bearer tokens of iptflow serve."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="What the token may do (docs/service.md#roles).")
@click.option("--actor", required=True,
              help="Who acts with it: recorded as the actor of every event it writes.")
@click.option("--label", default=None, help="A note for token list (e.g. the system using it).")
@db_option
@json_option
def create(role: str, actor: str, label: str | None, db_path: str, as_json: bool) -> None:
    """Create a token and print its secret, once: the store keeps only its SHA-256.

    Creates the store if it does not exist. Exit status: 0, or 2 for an empty actor or a store
    that cannot be opened.
    """
    with open_store(db_path, create=True) as store:
        created, secret = create_token(store, role=role, actor=actor, label=label)
    if as_json:
        emit_json({**created.to_dict(), "secret": secret})
        return
    echo(f"token {created.id}: role {created.role}, actor {created.actor}")
    echo(f"secret (shown once, keep it safe): {secret}")


@token.command("list")
@db_option
@json_option
def list_(db_path: str, as_json: bool) -> None:
    """List the tokens (never their secrets), revoked ones too."""
    with open_store(db_path, readonly=True) as store:
        found = tokens(store)
    if as_json:
        emit_json({"tokens": [t.to_dict() for t in found]})
        return
    for t in found:
        status = f"revoked {t.revoked_at}" if t.revoked else "active"
        label = f" ({t.label})" if t.label else ""
        echo(f"{t.id} {t.role} {t.actor}{label}: created {t.created_at}, {status}")
    if not found:
        echo(f"no tokens in {db_path}")


@token.command("revoke")
@click.argument("token_id")
@db_option
@json_option
def revoke(token_id: str, db_path: str, as_json: bool) -> None:
    """Revoke a token: from now on every request carrying it is 401. Exit status: 0, or 2 for
    an unknown token id."""
    with open_store(db_path) as store:
        revoked = revoke_token(store, token_id)
    if as_json:
        emit_json(revoked.to_dict())
        return
    echo(f"token {revoked.id} revoked at {revoked.revoked_at}")
