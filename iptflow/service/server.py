"""Running the service: :func:`serve` starts uvicorn with ``N`` worker processes, each building
the app from the environment (:func:`iptflow.service.app.app_from_environment`).

uvicorn stops gracefully on SIGTERM or SIGINT: it stops accepting connections, lets the
requests under way answer (appends included, up to ``GRACE`` seconds), then the app closes its
stores. Its own access log is off: the app writes one JSON line per request to stderr
(:mod:`iptflow.service.ops`).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import uvicorn

from iptflow.service.app import ENV_DB, ENV_MAX_BODY, ENV_POOL

__all__ = ["GRACE", "exposed", "log_config", "serve"]

GRACE = 30
"""Seconds a stopping server waits for requests under way."""


def exposed(host: str) -> bool:
    """Whether binding ``host`` listens beyond the loopback interface."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging: its own lines and the app's JSON access and error lines on stderr."""
    plain = {"format": "%(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": plain,
                       "named": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "plain",
                       "stream": "ext://sys.stderr"},
            "named": {"class": "logging.StreamHandler", "formatter": "named",
                      "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "iptflow.service.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "iptflow.service.error": {"handlers": ["named"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["named"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
        },
    }


def serve(
    store_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    pool_size: int = 4,
    max_body: int = 256 * 1024,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Serve the store at ``store_url`` until SIGTERM/SIGINT (see the module docstring)."""
    os.environ[ENV_DB] = store_url
    os.environ[ENV_POOL] = str(pool_size)
    os.environ[ENV_MAX_BODY] = str(max_body)
    uvicorn.run(
        "iptflow.service.app:app_from_environment", factory=True, host=host, port=port,
        workers=workers, access_log=False, log_config=log_config(),
        timeout_graceful_shutdown=GRACE, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
        server_header=False,
    )
