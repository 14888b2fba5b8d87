"""``iptflow serve`` against the library it serves: appends and reads over HTTP and through
``Store.apply`` / ``Store.get`` in the same run, on the same kind of store.

    python bench/service_figures.py [--courses 20] [--appends 1000] [--reads 300] [--clients 8] [--json]

Each side gets a fresh SQLite store (synchronous FULL, the default: every append is on disk
before its answer) in a temporary directory with ``--courses`` courses opened. The library
side appends ``--appends`` events (``measure_recorded``, spread over the courses) with
``Store.apply`` on one thread, then ``--reads`` ``Store.get`` (a replay of the course). The
HTTP side starts ``iptflow serve`` (one worker, on 127.0.0.1) and does the same with one
keep-alive client (``POST /courses/{id}/events``, ``GET /courses/{id}``: that replay plus the
allowed events and their unmet requirements), then the appends again with ``--clients``
concurrent clients. Reports requests per second and p50/p99 latency of each, and the HTTP
figure as a ratio of the library's. Prints no verdict: bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from iptflow.research.demo import demo_events
from iptflow.store import Store
from iptflow.store.tokens import create_token

AT = "2025-01-06T10:00:00Z"


def _event(n: int) -> dict[str, Any]:
    return {"type": "measure_recorded", "at": AT, "instrument": "phq9", "score": n % 28}


def _store(path: Path, courses: int) -> list[str]:
    ids = [f"b-{n:03d}" for n in range(courses)]
    with Store.open(path) as store:
        for cid in ids:
            store.open_course(demo_events(cid)[0])
    return ids


def _figures(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "per_s": round(len(ordered) / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def _timed(calls: list[Any]) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for call in calls:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return _figures(latencies, time.perf_counter() - started)


def library(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    ids = _store(tmp / "library.db", args.courses)
    with Store.open(tmp / "library.db") as store:
        def append(n: int) -> Any:
            return lambda: store.apply(ids[n % len(ids)], _event(n))

        appends = _timed([append(n) for n in range(args.appends)])
        def read(n: int) -> Any:
            return lambda: store.get(ids[n % len(ids)])

        reads = _timed([read(n) for n in range(args.reads)])
    return {"appends": appends, "reads": reads}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    iptflow = str(Path(sys.executable).parent / "iptflow")
    proc = subprocess.Popen([iptflow, "serve", "--db", str(db), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("iptflow serve did not start")


def http(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    db = tmp / "http.db"
    ids = _store(db, args.courses)
    with Store.open(db) as store:
        _, secret = create_token(store, role="clinician", actor="clinician-7")
    proc, base = _serve(db)
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            def append(n: int) -> Any:
                return lambda: client.post(f"/courses/{ids[n % len(ids)]}/events", json=_event(n))

            appends = _timed([append(n) for n in range(args.appends)])
            def read(n: int) -> Any:
                return lambda: client.get(f"/courses/{ids[n % len(ids)]}")

            reads = _timed([read(n) for n in range(args.reads)])
        concurrent = _concurrent(base, headers, ids, args)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return {"appends": appends, "reads": reads, "appends_concurrent": concurrent}


def _concurrent(base: str, headers: dict[str, str], ids: list[str],
                args: argparse.Namespace) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = args.appends // args.clients

    def client(c: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http_client:
            for n in range(per_client):
                t = time.perf_counter()
                http_client.post(f"/courses/{ids[(c + n * args.clients) % len(ids)]}/events",
                                 json=_event(n))
                with lock:
                    latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _figures(latencies, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lib = library(Path(tmp), args)
        over_http = http(Path(tmp), args)
    ratios = {kind: round(over_http[kind]["per_s"] / lib[kind]["per_s"], 3) for kind in ("appends", "reads")}
    result = {"cpus": os.cpu_count(), "library": lib, "http": over_http, "http_over_library": ratios}
    if args.json:
        print(json.dumps(result))
        return
    for side, figures in (("library", lib), ("http", over_http)):
        for kind, f in figures.items():
            print(f"{side:8} {kind:19} {f['n']:5} requests  {f['per_s']:8.1f}/s  "
                  f"p50 {f['p50_ms']:7.2f} ms  p99 {f['p99_ms']:7.2f} ms")
    print(f"HTTP / library throughput: appends {ratios['appends']}, reads {ratios['reads']}")


if __name__ == "__main__":
    main()
