"""iptflow token create/list/revoke and iptflow serve's checks before it listens, through the
CLI (CliRunner) on real stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from iptflow.cli import cli
from iptflow.cli import serve as serve_module
from iptflow.service.server import exposed
from iptflow.store import Store
from iptflow.store.tokens import secret_sha256, token_for_secret


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_create_shows_the_secret_once_and_list_never(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    created = run("token", "create", "--role", "clinician", "--actor", "dr-a", "--label", "ehr",
                  "--db", db)
    assert created.exit_code == 0, created.output
    secret = created.stdout.split("keep it safe): ", 1)[1].strip()
    with Store.open(db, readonly=True) as store:
        token = token_for_secret(store, secret)
    assert token is not None and token.actor == "dr-a" and token.label == "ehr"
    listed = run("token", "list", "--db", db)
    assert listed.exit_code == 0 and f"{token.id} clinician dr-a (ehr)" in listed.stdout
    assert secret not in listed.stdout and secret_sha256(secret) not in listed.stdout
    as_json = json.loads(run("token", "list", "--json", "--db", db).stdout)
    assert as_json["tokens"][0]["id"] == token.id and "secret" not in as_json["tokens"][0]


def test_revoke_and_its_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    made = json.loads(run("token", "create", "--role", "auditor", "--actor", "a", "--json",
                          "--db", db).stdout)
    revoked = run("token", "revoke", made["id"], "--db", db)
    assert revoked.exit_code == 0 and f"token {made['id']} revoked at" in revoked.stdout
    assert "revoked" in run("token", "list", "--db", db).stdout
    unknown = run("token", "revoke", "tok_nope", "--db", db)
    assert unknown.exit_code == 2 and "no token 'tok_nope'" in unknown.stderr
    assert "Traceback" not in unknown.output


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "nurse", "--actor", "a"], "Invalid value for '--role'"),
    (["--role", "clinician", "--actor", " "], "actor must be a non-empty string"),
])
def test_create_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("token", "create", *args, "--db", str(tmp_path / "s.db"))
    assert result.exit_code == 2 and message in result.stderr


def test_serve_refuses_a_missing_store_before_listening(tmp_path: Path) -> None:
    result = run("serve", "--db", str(tmp_path / "none.db"), "--port", "0")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "none.db" in result.stderr


def test_serve_warns_beyond_loopback_without_tls_and_without_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "s.db")
    Store.open(db).close()
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(serve_module, "run_server", lambda url, **kw: started.append({"url": url, **kw}))
    exposed_run = run("serve", "--db", db, "--host", "10.20.30.40", "--workers", "2")
    assert exposed_run.exit_code == 0, exposed_run.output
    assert "warning: listening on 10.20.30.40 without TLS" in exposed_run.stderr
    assert "holds no active token" in exposed_run.stderr
    assert started[0]["url"] == db and started[0]["workers"] == 2 and started[0]["host"] == "10.20.30.40"
    run("token", "create", "--role", "clinician", "--actor", "a", "--db", db)
    loopback = run("serve", "--db", db)
    assert loopback.exit_code == 0 and "warning" not in loopback.stderr
    assert started[1]["host"] == "127.0.0.1" and started[1]["port"] == 8000


def test_exposed_hosts() -> None:
    assert not exposed("127.0.0.1") and not exposed("::1") and not exposed("localhost")
    assert exposed("0.0.0.0") and exposed("192.168.1.5") and exposed("example.internal")
