"""The load of tests/test_service_load.py, run as a process of its own: CLIENTS threads, each
sending APPENDS events over HTTP to courses spread so that clients meet on every course, every
tenth event sent twice with its Idempotency-Key (a retry). Prints one JSON object: for each
idempotency key the seq and course of its 201 answer, the retries' answers, the failures.

usage: python service_load_client.py BASE_URL SECRET CLIENTS APPENDS COURSES
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import httpx

AT = "2025-01-06T10:00:00Z"  # every append at the same time: concurrent writers never go back in time


def measure(n: int) -> dict[str, Any]:
    return {"type": "measure_recorded", "at": AT, "instrument": "phq9", "score": n % 28}


def main(base: str, secret: str, clients: int, appends: int, courses: int) -> dict[str, Any]:
    answers: dict[str, dict[str, Any]] = {}
    retries: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for n in range(appends):
                course = f"load-{(c + n * clients) % courses:03d}"
                key = f"k-{c}-{n}"
                sends = 2 if n % 10 == 9 else 1
                for attempt in range(sends):
                    try:
                        r = http.post(f"/courses/{course}/events", json=measure(n),
                                      headers={"Idempotency-Key": key})
                    except httpx.TransportError as exc:
                        with lock:
                            failures.append(f"{key}: {type(exc).__name__}")
                        continue
                    with lock:
                        if r.status_code != 201:
                            failures.append(f"{key}: {r.status_code} {r.text[:200]}")
                        elif attempt == 0:
                            answers[key] = {"course": course, "seq": r.json()["seq"]}
                        else:
                            retries[key] = {"course": course, "seq": r.json()["seq"]}

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"answers": answers, "retries": retries, "failures": failures}


if __name__ == "__main__":
    base, secret, clients, appends, courses = sys.argv[1:6]
    print(json.dumps(main(base, secret, int(clients), int(appends), int(courses))))
