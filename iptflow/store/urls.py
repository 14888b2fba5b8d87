"""Where a store lives: a SQLite file (a path, ``:memory:`` or ``sqlite:///PATH``) or a
PostgreSQL database (``postgresql://...`` or ``postgres://...``, libpq's URI form).

``sqlite:///relative.db`` names a file relative to the working directory and
``sqlite:////abs/store.db`` an absolute one (the usual SQLAlchemy spelling); a password in a
PostgreSQL URL is never printed (:func:`display_url`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from iptflow.store.errors import StoreError

__all__ = ["display_url", "is_postgres_url", "sqlite_path"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES = ("postgresql", "postgres")


def _scheme(location: str) -> str | None:
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else None


def is_postgres_url(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database."""
    return _scheme(location) in _POSTGRES


def sqlite_path(location: str) -> str:
    """The SQLite file a path or ``sqlite:///PATH`` names; any other ``scheme://`` is a
    :class:`StoreError` naming the schemes the store knows."""
    scheme = _scheme(location)
    if scheme is None:
        return location
    if scheme == "sqlite" and location.lower().startswith("sqlite:///") and len(location) > 10:
        return location[len("sqlite:///"):]
    raise StoreError(
        f"{display_url(location)}: not a store location: use a file path, sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DATABASE",
        path=display_url(location),
    )


def display_url(location: str) -> str:
    """``location`` with any password replaced by ``***`` (for messages and ``Store.path``)."""
    if _scheme(location) is None:
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
