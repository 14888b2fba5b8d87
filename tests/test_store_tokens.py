"""Tokens of ``iptflow serve`` in the store (migration m005, iptflow.store.tokens), on SQLite and
PostgreSQL: only a hash is stored, revoked tokens stay revoked, a read-only older store reads
as having none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pg_support import execute

from iptflow.store import Store
from iptflow.store.errors import InvalidArgument
from iptflow.store.migrations import KNOWN_MIGRATIONS
from iptflow.store.postgres_schema import MIGRATIONS
from iptflow.store.tokens import (
    UnknownToken,
    create_token,
    revoke_token,
    secret_sha256,
    token_for_secret,
    tokens,
)


def test_created_token_authenticates_and_only_its_hash_is_stored(store_url: str) -> None:
    with Store.open(store_url) as store:
        token, secret = create_token(store, role="clinician", actor="dr-a", label="ward 3")
        assert token_for_secret(store, secret) == token
        assert token.role == "clinician" and token.actor == "dr-a" and not token.revoked
        assert tokens(store) == [token]
        other, other_secret = create_token(store, role="auditor", actor="audit-1")
        assert other_secret != secret and other.id != token.id
    rows = execute(store_url, "SELECT id, secret_sha256 FROM tokens ORDER BY created_at, id")
    assert sorted(r[1] for r in rows) == sorted([secret_sha256(secret), secret_sha256(other_secret)])
    assert all(secret not in str(r) and other_secret not in str(r) for r in rows)


def test_secret_is_random_32_bytes_and_unknown_secrets_do_not_authenticate(store_url: str) -> None:
    with Store.open(store_url) as store:
        _, secret = create_token(store, role="researcher", actor="r")
        assert secret.startswith("ipt_") and len(secret) == 4 + 43  # 32 bytes, base64url
        assert token_for_secret(store, secret + "x") is None
        assert token_for_secret(store, "not-a-token") is None
        assert token_for_secret(store, "") is None


def test_revoked_token_stays_revoked(store_url: str) -> None:
    with Store.open(store_url) as store:
        token, secret = create_token(store, role="admin", actor="ops")
        revoked = revoke_token(store, token.id, clock=lambda: "2025-01-01T00:00:00Z")
        assert revoked.revoked and revoked.revoked_at == "2025-01-01T00:00:00Z"
        again = revoke_token(store, token.id, clock=lambda: "2026-01-01T00:00:00Z")
        assert again.revoked_at == "2025-01-01T00:00:00Z"  # revoking twice changes nothing
        assert token_for_secret(store, secret).revoked  # type: ignore[union-attr]
        with pytest.raises(UnknownToken, match="no token 'tok_nope'"):
            revoke_token(store, "tok_nope")


@pytest.mark.parametrize(("role", "actor", "argument"), [
    ("nurse", "x", "role"), ("clinician", "", "actor"), ("clinician", "   ", "actor"),
])
def test_bad_role_or_actor_is_refused_and_nothing_written(
    store_url: str, role: str, actor: str, argument: str
) -> None:
    with Store.open(store_url) as store:
        with pytest.raises(InvalidArgument) as info:
            create_token(store, role=role, actor=actor)
        assert info.value.details["argument"] == argument
        assert tokens(store) == []


def test_every_sqlite_migration_has_a_postgres_twin_including_tokens() -> None:
    assert [name for name, _ in MIGRATIONS] == list(KNOWN_MIGRATIONS)
    assert "m005_tokens" in KNOWN_MIGRATIONS


def test_store_from_before_m005_opened_read_only_has_no_tokens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store.open(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE tokens")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_tokens'")
    conn.commit()
    conn.close()
    with Store.open(path, readonly=True) as store:
        assert tokens(store) == [] and token_for_secret(store, "ipt_x") is None
    with Store.open(path) as store:  # opened for writing: m005 applied
        token, secret = create_token(store, role="clinician", actor="a")
        assert token_for_secret(store, secret) == token
