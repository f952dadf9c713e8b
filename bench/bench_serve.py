"""`logo serve` against one-shot commands, on sample_histories/ (the product path either way).

- a shell loop of N asks: N one-shot `logo ask` processes against N `logo --server URL ask` processes (the
  same questions, the sample's mix of answer types), total wall time, and each process's start-up overhead
  (its wall time minus the answer's own `timings_ms.total`);
- requests per second for `POST /ask` from one client in a loop, with the fake model (logo's own ceiling:
  HTTP, the token check, the queue, the lock, memory, no model) and with the real one, and the share of the
  time spent answering (the answers' `timings_ms.total` over the loop's time; the rest is HTTP and the lock);
- how long a recommendation waits after another client disconnects in the middle of a long open answer
  (streamed, then a plain request), with the real model.

Every request carries an admin token, as an application backend's would.

`--before DIR` runs the fake-model and disconnect figures from another checkout of logo too (for example
`git worktree add /tmp/before <commit>`): the fake-model figure alternates three rounds of each on the same
machine and prints both medians; an older logo without tokens is sent none.

Usage: python bench/bench_serve.py [--asks 20] [--requests 50] [--only fake|disconnect] [--before DIR]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_histories"
LOGO = [sys.executable, "-m", "logo_cli"]


def questions() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()]
    return [{"user": r["user"], "query": r["query"]} for r in rows]


def start(env: dict[str, str], cwd: Path = ROOT) -> tuple[subprocess.Popen[str], str]:
    """A server on env's home, with an admin token in env's LOGO_TOKEN (made if missing). `python -m logo_cli`
    imports logo from its working directory first, so `cwd` picks the checkout."""
    if "LOGO_TOKEN" not in env or env["LOGO_TOKEN"] == "":
        made = subprocess.run([*LOGO, "token", "create", "--admin"], env=env, capture_output=True, cwd=cwd)
        env["LOGO_TOKEN"] = json.loads(made.stdout)["token"] if made.returncode == 0 else "none"  # none: older logo
    proc = subprocess.Popen([*LOGO, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["url"]


def headers(env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['LOGO_TOKEN']}"} if env["LOGO_TOKEN"] != "none" else {}


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def rps(url: str, asks: list[dict[str, str]], n: int, auth: dict[str, str]) -> tuple[float, float]:
    """(requests per second, the share of the time the server spent answering) over n sequential requests.
    The questions mix answer types (a recommendation takes milliseconds, an open answer seconds), so the share
    is total answer time over total time, not a median."""
    import httpx

    with httpx.Client(base_url=url, timeout=600, headers=auth) as client:
        client.post("/ask", json=asks[0])  # warm
        started = time.perf_counter()
        inside = []
        for q in itertools.islice(itertools.cycle(asks), n):
            inside.append(client.post("/ask", json=q).json()["timings_ms"]["total"] / 1000)
        elapsed = time.perf_counter() - started
        return n / elapsed, sum(inside) / elapsed


def after_disconnect(
    url: str, auth: dict[str, str], recommend: dict[str, str], long: dict[str, Any]
) -> dict[str, float]:
    """Seconds a recommendation takes right after a client left a long open answer: streamed (it read the first
    sentence and closed), and a plain request (it gave up after 2 s)."""
    import socket

    import httpx

    def recommendation() -> float:
        started = time.perf_counter()
        response = httpx.post(f"{url}/ask", json=recommend, headers=auth, timeout=600)
        assert response.status_code == 200 and response.json()["answer_type"] == "recommend", response.text
        return time.perf_counter() - started

    recommendation()  # warm
    with httpx.stream("POST", f"{url}/ask", params={"stream": "true"}, json=long, headers=auth, timeout=600) as r:
        next(r.iter_lines())
    streamed = recommendation()
    body = json.dumps(long).encode()
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw:
        head = f"POST /ask HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in auth.items()) + f"Content-Length: {len(body)}\r\n\r\n"
        raw.sendall(head.encode() + body)
        time.sleep(2.0)
    plain = recommendation()
    return {"after_streamed_client_left_s": round(streamed, 3), "after_plain_client_left_s": round(plain, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--only", choices=("fake", "disconnect"), help="one figure: fake-model requests/s, or the wait")
    parser.add_argument("--before", type=Path, help="another checkout of logo: its fake-model figure too")
    args = parser.parse_args()
    asks = list(itertools.islice(itertools.cycle(questions()), args.asks))

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": tmp}
        if args.only is None:
            subprocess.run([*LOGO, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=env, check=True)
            subprocess.run([*LOGO, "-q", "build-global", "--seed", "0"], env=env, check=True, capture_output=True)
            shell_loops_and_real_model(env, asks, args.requests)
        if args.only in (None, "disconnect"):
            disconnect(env, args.before)
        if args.only in (None, "fake"):
            fake = {**env, "LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake", "LOGO_HOME": str(Path(tmp) / "fake")}
            fake_model(fake, asks, args.requests * 4, args.before)


def shell_loops_and_real_model(env: dict[str, str], asks: list[dict[str, str]], requests: int) -> None:
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
            figure = {
                "figure": f"{len(asks)} asks in a shell loop, {label}",
                "total_s": round(seconds, 2),
                "per_ask_s": round(seconds / len(asks), 3),
                "startup_overhead_median_s": round(statistics.median(overheads), 3),
            }
            print(json.dumps(figure), flush=True)
        real_rps, real_answering = rps(url, asks, requests, headers(env))
    finally:
        stop(proc)
    figure = {
        "figure": "POST /ask, real model",
        "requests_per_s": round(real_rps, 2),
        "answering_share": round(real_answering, 3),
        "http_and_lock_share": round(1 - real_answering, 3),
    }
    print(json.dumps(figure), flush=True)


def disconnect(env: dict[str, str], before: Path | None) -> None:
    long = {
        "user": "gus_h",
        "query": "Write a long, detailed guide to exercising at 52 with a bad knee.",
        "answer_type": "open",
        "max_tokens": 500,
        "temperature": 0.7,
    }
    recommend = {"user": "maya", "query": "What should I watch this weekend?"}
    for name, cwd in {"now": ROOT, **({"before": before.resolve()} if before else {})}.items():
        run_env = {**env, "LOGO_HOME": f"{env['LOGO_HOME']}-{name}", "LOGO_TOKEN": ""}
        subprocess.run([*LOGO, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=run_env, check=True, cwd=cwd)
        build = [*LOGO, "-q", "build-global", "--seed", "0"]
        subprocess.run(build, env=run_env, check=True, capture_output=True, cwd=cwd)
        proc, url = start(run_env, cwd)
        try:
            waits = after_disconnect(url, headers(run_env), recommend, long)
        finally:
            stop(proc)
        label = "" if name == "now" else " (before)"
        figure = {"figure": f"a recommendation right after a client left an open answer{label}", **waits}
        print(json.dumps(figure), flush=True)


def fake_model(env: dict[str, str], asks: list[dict[str, str]], requests: int, before: Path | None) -> None:
    checkouts = {"now": ROOT, **({"before": before.resolve()} if before else {})}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    envs = {}
    for name, cwd in checkouts.items():  # each its own home: an older logo may not read a newer store
        envs[name] = {**env, "LOGO_HOME": f"{env['LOGO_HOME']}-{name}", "LOGO_TOKEN": ""}
        subprocess.run([*LOGO, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=envs[name], check=True, cwd=cwd)
        build = [*LOGO, "-q", "build-global", "--seed", "0"]
        subprocess.run(build, env=envs[name], check=True, capture_output=True, cwd=cwd)
    for _ in range(3 if before else 1):  # alternated, so both see the same machine
        for name, cwd in checkouts.items():
            proc, url = start(envs[name], cwd)
            try:
                results[name].append(rps(url, asks, requests, headers(envs[name])))
            finally:
                stop(proc)
    for name, rounds in results.items():
        figure = {
            "figure": f"POST /ask, fake model (logo's own ceiling){'' if name == 'now' else ' (before)'}",
            "requests_per_s": round(statistics.median(r for r, _ in rounds), 1),
            "rounds": [round(r, 1) for r, _ in rounds],
            "answering_share": round(statistics.median(a for _, a in rounds), 3),
        }
        print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
