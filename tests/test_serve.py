"""`logo serve` for real: uvicorn on a free port, requests over HTTP and through `logo --server`, the store
lock shared with CLI commands beside it, bad requests, and a graceful stop that loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import lines, logo, make_records, run, write_jsonl

FAKE = {"LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake"}
JSONL = {"Content-Type": "application/x-ndjson"}


def admin_token(home: Path) -> str:
    """An admin token, made as a person makes one (`logo token create --admin`)."""
    done = logo(home, "token", "create", "--admin")
    assert done.returncode == 0, done.stderr
    return str(lines(done.stdout)[0]["token"])


def start(home: Path, env: dict[str, str], *options: str) -> tuple[subprocess.Popen[str], str]:
    """`logo serve --port 0` as a person starts it; its first stdout line says where it listens."""
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": str(home), **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logo_cli", "serve", "--port", "0", *options],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or dies)
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return proc, json.loads(line)["url"]


Served = tuple[Path, str, subprocess.Popen[str]]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A server with an admin token, which `logo --server` (LOGO_TOKEN) and `http` send."""
    home = tmp_path / "home"
    users = {f"film{i}": ("films", 12) for i in range(3)} | {f"cook{i}": ("cooking", 12) for i in range(3)}
    records = write_jsonl(tmp_path / "pop.jsonl", make_records(users | {"newbie": ("cooking", 1)}))
    assert logo(home, "ingest", str(records), env=FAKE).returncode == 0
    assert logo(home, "build-global", "--clusters", "2", env=FAKE).returncode == 0
    token = admin_token(home)
    monkeypatch.setenv("LOGO_TOKEN", token)  # for `logo --server` processes, which keep LOGO_TOKEN
    proc, url = start(home, FAKE)
    http.headers["Authorization"] = f"Bearer {token}"
    yield home, url, proc
    del http.headers["Authorization"]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


http = httpx.Client(timeout=60)  # the admin's client while a `served` server runs


def via(home: Path, url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`logo --server URL ARGS` with the admin's token in LOGO_TOKEN."""
    import os

    return logo(home, "--server", url, *args, input=input, env={"LOGO_TOKEN": os.environ.get("LOGO_TOKEN", "")})


def test_answers_over_http_are_the_cli_answers(served: Served) -> None:
    home, url, _ = served
    health = http.get(f"{url}/health").json()
    assert health["ok"] and health["global_memory"] is True
    questions = [
        {"user": "cook1", "query": "How would I rate Jaws?"},
        {"user": "cook1", "query": "How would I rate risotto?"},  # one they rated: their own rating
        {"user": "film0", "query": "Recommend 2 films from the cinema"},
        {"user": "newbie", "query": "Which dinner? A) garlic basil recipe B) jet engine manual"},
        {"user": "cook1", "query": "Which should I watch? A) Heat B) the jaws"},  # options matched to memory's items
        {"user": "film1", "query": "Tell me about the director", "answer_type": "open"},
    ]
    for q in questions:
        answered = http.post(f"{url}/ask", json=q, timeout=60).json()
        here = lines(
            logo(
                home, "ask", "--json", "-u", q["user"], "-t", q.get("answer_type", "auto"), q["query"], env=FAKE
            ).stdout
        )[0]
        sent = via(home, url, "ask", "--json", "-u", q["user"], "-t", q.get("answer_type", "auto"), q["query"])
        for got in (answered, lines(sent.stdout)[0]):
            assert (got["answer"], got["answer_type"], got["answer_value"]) == (
                here["answer"],
                here["answer_type"],
                here["answer_value"],
            ), q
            assert got.get("choices") == here.get("choices"), q
    batch = "".join(json.dumps(q) + "\n" for q in questions)
    answers = lines(via(home, url, "ask", "-", input=batch).stdout)
    assert [a["answer_type"] for a in answers] == ["rating", "rating", "recommend", "choice", "choice", "open"]
    assert [c["item"] for c in answers[4]["choices"]] == ["Heat", "Jaws"]  # "the jaws" is Jaws
    streamed = [
        json.loads(x) for x in http.post(f"{url}/ask", params={"stream": "true"}, json=questions[5]).text.splitlines()
    ]
    assert streamed[-1]["answer"]["answer_type"] == "open" and any("token" in p for p in streamed[:-1])
    assert "".join(p["token"] for p in streamed[:-1]).strip() == streamed[-1]["answer"]["answer"]


CLIENT_PROBE = """
import json, sys
from logo_cli.cli import main
sys.argv = ["logo", "--server", sys.argv[1], "ask", "--json", "-u", "cook1", "dinner ideas?"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_a_command_sent_to_the_server_loads_nothing_heavy(served: Served) -> None:
    """The point of the server is a start-up-free command: no numpy, no HTTP stack, no model, no store."""
    _, url, _ = served
    done = subprocess.run([sys.executable, "-c", CLIENT_PROBE, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"] == "cook1"  # answered by the server
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    modules = {m.split(".")[0] for m in loaded}
    heavy = {"numpy", "httpx", "rich", "pygments", "onnxruntime", "chromadb", "llama_cpp", "torch", "fastapi"}
    assert not modules & heavy, modules & heavy
    assert "logo_cli.request" not in loaded  # the server reads the request: the client sends the flags as they are


def test_ingest_users_profile_and_bad_requests(served: Served, tmp_path: Path) -> None:
    home, url, _ = served
    new = write_jsonl(tmp_path / "new.jsonl", [{"user": "late", "text": "a film at the cinema with actors"}])
    done = via(home, url, "ingest", str(new))
    assert done.returncode == 0 and lines(done.stdout)[0]["added"] == 1
    assert any(u["user"] == "late" for u in lines(via(home, url, "users", "--json").stdout))
    profile = lines(via(home, url, "profile", "-u", "film1", "--json").stdout)[0]
    assert profile["user"] == "film1" and profile["history"] == 12
    # 4xx with the CLI's own messages and exit codes
    missing = http.post(f"{url}/ask", json={"user": "cook1"})
    assert missing.status_code == 400 and missing.json()["error"] == "missing or empty `query`"
    bad = http.post(f"{url}/ingest", content=b'{"user": "a", "text": "ok"}\nnot json\n', headers=JSONL)
    assert bad.status_code == 422 and bad.json()["error"].startswith("<request>:2: invalid JSON")
    assert http.get(f"{url}/profile", params={"user": "nobody"}).status_code == 404
    assert http.post(f"{url}/ask", json={"user": "a", "query": "q", "memory": "all"}).status_code == 400
    assert via(home, url, "ask", "-u", "cook1", "-t", "choice", "no options").returncode == 2
    assert logo(home, "--server", "http://127.0.0.1:9", "users").returncode == 6  # nobody listens there


@pytest.mark.parametrize("url", ["notaurl", "http://", "ftp://127.0.0.1:8765", "http://127.0.0.1:port"])
def test_a_server_url_that_is_not_one_is_a_usage_error(fake_env: Path, url: str) -> None:
    """Not exit 6 "cannot reach the logo server": nothing was tried, the URL names no server."""
    code, _, err = run("--server", url, "ask", "--user", "u", "q")
    assert code == 2 and f"--server {url!r} is not the URL of a logo server" in err and "http://HOST:PORT" in err


def test_cli_writers_beside_the_server_are_seen(
    served: Served, tmp_path: Path
) -> None:
    """Requests take the store lock like any command, so a CLI ingest runs between them; the next answer
    reads what it wrote, and a rebuilt global memory, without restarting the server."""
    home, url, _ = served
    before = http.get(f"{url}/health").json()["reloads"]
    new = write_jsonl(tmp_path / "beside.jsonl", [{"user": "beside", "text": "a film at the cinema"}])
    assert logo(home, "ingest", str(new), env=FAKE).returncode == 0  # not through the server
    users = http.get(f"{url}/users").json()
    assert any(u["user"] == "beside" for u in users)
    assert logo(home, "build-global", "--clusters", "2", env=FAKE).returncode == 0
    answer = http.post(f"{url}/ask", json={"user": "beside", "query": "hi", "answer_type": "open"}).json()
    assert answer["global_version"] == (home / "global" / "CURRENT").read_text().strip()
    assert http.get(f"{url}/health").json()["reloads"] == before + 2
    http.get(f"{url}/users")
    assert http.get(f"{url}/health").json()["reloads"] == before + 2  # reads alone reload nothing


def test_a_stop_finishes_the_request_in_flight(served: Served, tmp_path: Path) -> None:
    """SIGTERM while an ingest runs through the server: the ingest completes, then the server exits."""
    home, url, proc = served
    many = make_records({f"bulk{i}": ("travel", 40) for i in range(60)})
    body = "".join(json.dumps(r) + "\n" for r in many).encode()
    import threading

    result: dict[str, object] = {}

    def send() -> None:
        params = {"batch_size": "50"}
        result["response"] = http.post(f"{url}/ingest", params=params, content=body, headers=JSONL, timeout=120)
        result["done"] = time.monotonic()

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.5)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    sender.join(timeout=120)
    assert float(result["done"]) > signalled  # type: ignore[arg-type]  # the signal came while it ran
    response = result["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200, response
    assert response.json()["added"] == len(many)
    assert proc.wait(timeout=30) == 0  # a graceful stop is a success, not death by signal (143)
    assert proc.stderr is not None and "logo serve: stopped" in proc.stderr.read()
    stats = lines(logo(home, "stats", "--json", env=FAKE).stdout)[0]
    assert stats["records"] == 6 * 12 + 1 + len(many)  # nothing lost, nothing twice


def test_a_fresh_home_is_served_and_filled_through_the_server(tmp_path: Path) -> None:
    """No store and no global memory yet: the server starts (on loopback without tokens: --no-auth), takes
    records, and answers once memory exists."""
    home = tmp_path / "home"
    proc, url = start(home, FAKE, "--no-auth")
    try:
        records = write_jsonl(tmp_path / "r.jsonl", make_records({"ann": ("films", 6), "bob": ("films", 6)}))
        bad = write_jsonl(tmp_path / "bad.jsonl", [{"user": "cy", "text": "ok"}, {"user": "", "text": "no user"}])
        done = via(home, url, "ingest", str(records))
        assert done.returncode == 0 and lines(done.stdout)[0]["added"] == 12
        stopped = via(home, url, "ingest", str(bad))
        assert stopped.returncode == 3 and f"{bad}:2:" in stopped.stderr  # the file's name, not <request>
        partial = lines(stopped.stdout)[0]
        assert partial["added"] == 1 and "error" in partial  # what was stored before the bad line, as in process
        markup = write_jsonl(tmp_path / "m.jsonl", [{"user": "dee", "text": "t", "timestamp": "[/b]"}])
        skipped = via(home, url, "ingest", "--skip-invalid", str(markup))
        assert skipped.returncode == 0 and f"{markup}:1:" in skipped.stderr and "<request>" not in skipped.stderr
        assert logo(home, "build-global", "--clusters", "1", env=FAKE).returncode == 0
        batch = '{"user": "ann", "query": "Heat"}\n'
        rated = lines(via(home, url, "ask", "-t", "rating", "-", input=batch).stdout)[0]
        assert rated["answer_type"] == "rating"  # the flag is every line's default through the server too
        broken = via(home, url, "ask", "-", input='{"user": "ann"}\n')
        assert broken.returncode == 3 and "missing or empty `query`" in broken.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
