"""A real ``iptflow serve`` process on a free loopback port, for the tests that drive it over
HTTP (tests/test_service_process.py, tests/test_service_load.py) and the bench."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

IPTFLOW = str(Path(sys.executable).parent / "iptflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IPTFLOW, *args, "--db", db], capture_output=True, text=True, timeout=60)


def new_token(db: str, role: str, actor: str) -> dict[str, str]:
    """A token made by the real CLI: its JSON (id, role, actor, secret, ...)."""
    made = cli("token", "create", "--role", role, "--actor", actor, "--json", db=db)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)  # type: ignore[no-any-return]


class Server:
    """``iptflow serve`` with ``$IPTFLOW_DB`` naming the store (stderr kept in a file)."""

    def __init__(self, db: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("w")
        env = {**os.environ, "IPTFLOW_DB": db}
        self.proc = subprocess.Popen(
            [IPTFLOW, "serve", "--port", str(self.port), *extra],
            stdout=subprocess.DEVNULL, stderr=self._log, env=env,
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"iptflow serve exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"iptflow serve did not get ready: {self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code
