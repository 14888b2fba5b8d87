"""``iptflow serve``: the store behind an HTTP API (docs/service.md)."""

from __future__ import annotations

import click

from iptflow.cli.course import db_option, open_store
from iptflow.cli.output import echo, warning
from iptflow.errors import IptflowError
from iptflow.service.server import exposed
from iptflow.service.server import serve as run_server
from iptflow.store.tokens import tokens
from iptflow.store.urls import display_url


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (beyond loopback: use TLS).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes.")
@click.option("--pool", "pool_size", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Store connections per worker.")
@click.option("--max-body", default=256 * 1024, show_default=True, type=click.IntRange(1),
              help="The largest request body in bytes (more is 413).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Serve HTTPS with this certificate (PEM).")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The certificate's private key (PEM).")
def serve(db_path: str, host: str, port: int, workers: int, pool_size: int, max_body: int,
          ssl_certfile: str | None, ssl_keyfile: str | None) -> None:
    """Serve the store over HTTP until stopped (SIGTERM or Ctrl-C finish the requests under way).

    Every request but /healthz and /readyz needs a bearer token (iptflow token create). The
    OpenAPI document is at /openapi.json. Exit status: 2 when the store cannot be opened; once
    stopped, the process ends by the signal that stopped it, after the graceful shutdown.
    """
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise IptflowError("--ssl-certfile and --ssl-keyfile go together")
    with open_store(db_path) as store:  # a missing or unusable store fails here, in one line
        active = [t for t in tokens(store) if not t.revoked]
    if exposed(host) and ssl_certfile is None:
        warning(f"listening on {host} without TLS: bearer tokens and course data cross the "
                "network in clear text; use --ssl-certfile/--ssl-keyfile or a TLS proxy in front")
    if not active:
        warning(f"{display_url(db_path)} holds no active token: every request but /healthz and "
                "/readyz will be refused 401 (iptflow token create --role ... --actor ...)")
    scheme = "https" if ssl_certfile else "http"
    echo(f"iptflow serve: {display_url(db_path)} on {scheme}://{host}:{port} "
         f"({workers} worker(s), OpenAPI at /openapi.json)", err=True)
    run_server(db_path, host=host, port=port, workers=workers, pool_size=pool_size,
               max_body=max_body, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
