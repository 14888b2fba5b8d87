"""Bearer tokens of ``iptflow serve`` (table ``tokens``, migration m005), on either backend.

A token is a random 32-byte secret shown once when it is created (``iptflow token create``);
the store keeps only its SHA-256, with the token's public id, role and actor. A revoked token
keeps its row (``revoked_at``) and never authenticates again. ``iptflow store copy`` does not
carry tokens: they belong to one deployment, not to the courses.

Like every other statement of the store these run inside the recorder's transactions, through
its public ``rows`` (:func:`iptflow.store.sql.statement` writes the placeholders each backend
takes), so the same functions serve SQLite and PostgreSQL (docs/service.md#tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from iptflow.store.errors import InvalidArgument, StoreError
from iptflow.store.recorder import utc_now
from iptflow.store.sql import statement

if TYPE_CHECKING:
    from iptflow.store.reading import StoreReader

__all__ = [
    "M005_TOKENS",
    "ROLES",
    "Token",
    "UnknownToken",
    "create_token",
    "revoke_token",
    "secret_sha256",
    "token_for_secret",
    "tokens",
]

ROLES: tuple[str, ...] = ("clinician", "researcher", "auditor", "admin")
"""The roles a token can carry (docs/service.md#roles says what each may do)."""

SECRET_PREFIX = "ipt_"

#: Migration m005 on PostgreSQL (the SQLite store's ``m005_tokens``).
M005_TOKENS = (
    """CREATE TABLE tokens (
        id text PRIMARY KEY,
        secret_sha256 text NOT NULL,
        role text NOT NULL,
        actor text NOT NULL,
        label text,
        created_at text NOT NULL,
        revoked_at text
    )""",
    "CREATE UNIQUE INDEX tokens_secret_sha256 ON tokens (secret_sha256)",
)


class UnknownToken(StoreError):
    """No token with that id in the store."""

    code = "no_token"


@dataclass(frozen=True, slots=True)
class Token:
    """A stored token: never its secret."""

    id: str
    role: str
    actor: str
    label: str | None
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Token:
        return cls(
            id=row["id"], role=row["role"], actor=row["actor"], label=row["label"],
            created_at=row["created_at"], revoked_at=row["revoked_at"],
        )


def secret_sha256(secret: str) -> str:
    """The hex SHA-256 a secret is stored as."""
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


def _has_table(store: StoreReader) -> bool:
    """Whether the store has the table (once there, it stays: asked of the database once)."""
    recorder: Any = store.recorder
    if not getattr(recorder, "_has_tokens_table", False):
        recorder._has_tokens_table = "tokens" in recorder.tables()
    return bool(recorder._has_tokens_table)


def create_token(
    store: StoreReader,
    *,
    role: str,
    actor: str,
    label: str | None = None,
    clock: Callable[[], str] = utc_now,
) -> tuple[Token, str]:
    """Create a token for ``actor`` with ``role``; return it and its secret (shown once: the
    store keeps only its SHA-256). Raises :class:`InvalidArgument` for an unknown role or an
    empty actor."""
    if role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}, got {role!r}", argument="role")
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidArgument("actor must be a non-empty string", argument="actor")
    if label is not None and not isinstance(label, str):
        raise InvalidArgument(f"label must be a str, got {type(label).__name__}", argument="label")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = Token(id="tok_" + secrets.token_hex(6), role=role, actor=actor, label=label,
                  created_at=clock(), revoked_at=None)
    recorder = store.recorder
    with recorder.write():
        recorder.rows(statement(recorder, (
            "INSERT INTO tokens (id, secret_sha256, role, actor, label, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL) RETURNING id"
        )), (token.id, secret_sha256(secret), role, actor, label, token.created_at))
    return token, secret


def tokens(store: StoreReader) -> list[Token]:
    """Every token, revoked ones too, oldest first."""
    if not _has_table(store):  # a store opened read-only before m005
        return []
    rows = store.recorder.rows("SELECT * FROM tokens ORDER BY created_at, id")
    return [Token.from_row(r) for r in rows]


def revoke_token(store: StoreReader, token_id: str, *, clock: Callable[[], str] = utc_now) -> Token:
    """Revoke a token (from now on it authenticates no request); revoking a revoked token
    changes nothing. Raises :class:`UnknownToken`."""
    recorder = store.recorder
    with recorder.write():
        rows = recorder.rows(statement(recorder, "SELECT * FROM tokens WHERE id = ?"), (token_id,))
        if not rows:
            raise UnknownToken(f"no token {token_id!r} in {store.path}", token_id=token_id)
        if rows[0]["revoked_at"] is None:
            rows = recorder.rows(statement(recorder, (
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *"
            )), (clock(), token_id)) or rows
    return Token.from_row(rows[0])


def token_for_secret(store: StoreReader, secret: str) -> Token | None:
    """The token whose secret this is (revoked or not), or ``None``."""
    if not secret.startswith(SECRET_PREFIX) or not _has_table(store):
        return None
    recorder = store.recorder
    rows = recorder.rows(statement(recorder, "SELECT * FROM tokens WHERE secret_sha256 = ?"),
                         (secret_sha256(secret),))
    return Token.from_row(rows[0]) if rows else None
