"""`logo serve` against one-shot commands, on sample_histories/ (the product path either way).

- a shell loop of N asks: N one-shot `logo ask` processes against N `logo --server URL ask` processes (the
  same questions, the sample's mix of answer types), total wall time, and each process's start-up overhead
  (its wall time minus the answer's own `timings_ms.total`);
- requests per second for `POST /ask` from one client in a loop, with the fake model (logo's own ceiling:
  HTTP, the lock, memory, no model) and with the real one, and the share of the time spent answering (the
  answers' `timings_ms.total` over the loop's time; the rest is HTTP and the store lock).

Usage: python bench/bench_serve.py [--asks 20] [--requests 50]
Prints one JSON line per figure. Needs `make setup` (real models).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_histories"
LOGO = [sys.executable, "-m", "logo_cli"]


def questions() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()]
    return [{"user": r["user"], "query": r["query"]} for r in rows]


def start(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*LOGO, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["url"]


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def rps(url: str, asks: list[dict[str, str]], n: int) -> tuple[float, float]:
    """(requests per second, the share of the time the server spent answering) over n sequential requests.
    The questions mix answer types (a recommendation takes milliseconds, an open answer seconds), so the share
    is total answer time over total time, not a median."""
    import httpx

    with httpx.Client(base_url=url, timeout=600) as client:
        client.post("/ask", json=asks[0])  # warm
        started = time.perf_counter()
        inside = []
        for q in itertools.islice(itertools.cycle(asks), n):
            inside.append(client.post("/ask", json=q).json()["timings_ms"]["total"] / 1000)
        elapsed = time.perf_counter() - started
        return n / elapsed, sum(inside) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    asks = list(itertools.islice(itertools.cycle(questions()), args.asks))

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": tmp}
        subprocess.run([*LOGO, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=env, check=True)
        subprocess.run([*LOGO, "-q", "build-global", "--seed", "0"], env=env, check=True, capture_output=True)

        proc, url = start(env)
        try:
            for label, extra in (("one-shot", []), ("through logo serve", ["--server", url])):
                started = time.perf_counter()
                overheads = []
                for q in asks:
                    began = time.perf_counter()
                    done = subprocess.run(
                        [*LOGO, *extra, "ask", "--json", "-u", q["user"], q["query"]],
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    answered = json.loads(done.stdout)["timings_ms"]["total"] / 1000
                    overheads.append(time.perf_counter() - began - answered)
                seconds = time.perf_counter() - started
                print(
                    json.dumps(
                        {
                            "figure": f"{args.asks} asks in a shell loop, {label}",
                            "total_s": round(seconds, 2),
                            "per_ask_s": round(seconds / args.asks, 3),
                            "startup_overhead_median_s": round(statistics.median(overheads), 3),
                        }
                    ),
                    flush=True,
                )
            real_rps, real_answering = rps(url, asks, args.requests)
        finally:
            stop(proc)
        print(
            json.dumps(
                {
                    "figure": "POST /ask, real model",
                    "requests_per_s": round(real_rps, 2),
                    "answering_share": round(real_answering, 3),
                    "http_and_lock_share": round(1 - real_answering, 3),
                }
            ),
            flush=True,
        )

        fake = {**env, "LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake", "LOGO_HOME": str(Path(tmp) / "fake")}
        subprocess.run([*LOGO, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=fake, check=True)
        subprocess.run([*LOGO, "-q", "build-global", "--seed", "0"], env=fake, check=True, capture_output=True)
        proc, url = start(fake)
        try:
            fake_rps, fake_answering = rps(url, asks, args.requests * 4)
        finally:
            stop(proc)
        print(
            json.dumps(
                {
                    "figure": "POST /ask, fake model (logo's own ceiling)",
                    "requests_per_s": round(fake_rps, 1),
                    "answering_share": round(fake_answering, 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
