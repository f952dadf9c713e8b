"""`logo serve` probed as an attacker and a careless client would: a real server process on loopback, real HTTP.

Tokens and scopes (no token, a wrong or revoked one, another user's memory through every route), the web's
reach (Host, content type, CORS, /docs, /health), sizes, and the one set of rules (every range error, bad
batches, the shapes of errors). Each answer is checked for its status and for logo's {error, hint,
exit_code} shape: no status 500 for bad input, no status 200 carrying an error. Fake embedder and model:
what is probed is the server, not the answers (the model's cancellation is in test_serve_cancel.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import lines, logo, make_records, write_jsonl

FAKE = {"LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake"}
SECRET = "hollis keeps the spare key under the blue flowerpot"  # a record only hollis may ever see
MAX_BODY = 1 << 20  # the probe server runs with --max-body-mb 1


@dataclass
class Server:
    home: Path
    url: str
    port: int
    proc: subprocess.Popen[str]
    admin: str
    maya: str
    hollis: str

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def token(home: Path, *args: str) -> str:
    done = logo(home, "token", "create", *args)
    assert done.returncode == 0, done.stderr
    return str(lines(done.stdout)[0]["token"])


def start(home: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": str(home), **FAKE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logo_cli", "serve", "--port", "0", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, proc.stderr.read() if proc.stderr else "no output"
    return proc, json.loads(first)["url"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("probes")
    home = tmp / "home"
    users = {f"film{i}": ("films", 12) for i in range(3)} | {f"cook{i}": ("cooking", 12) for i in range(3)}
    rows = make_records(users | {"maya": ("films", 6), "hollis": ("films", 8)})
    rows.append({"user": "hollis", "id": "secret", "text": SECRET + " (a film night at the cinema)", "item": "Key"})
    assert logo(home, "ingest", str(write_jsonl(tmp / "pop.jsonl", rows)), env=FAKE).returncode == 0
    assert logo(home, "build-global", "--clusters", "2", env=FAKE).returncode == 0
    admin, maya, hollis = token(home, "--admin"), token(home, "--user", "maya"), token(home, "--user", "hollis")
    options = ["--max-body-mb", "1", "--allow-host", "logo.test", "--cors-origin", "https://app.example"]
    proc, url = start(home, *options)
    yield Server(home, url, int(url.rsplit(":", 1)[1]), proc, admin, maya, hollis)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def shaped(response: httpx.Response, status: int, exit_code: int | None = None) -> dict[str, Any]:
    """The response has this status and logo's error shape; its body."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"error", "hint", "exit_code"} and "detail" not in body, body
    if exit_code is not None:
        assert body["exit_code"] == exit_code, body
    return dict(body)


def no_secret(response: httpx.Response) -> None:
    assert SECRET not in response.text and "flowerpot" not in response.text


# ------------------------------------------------------------------------------------------ tokens and scopes


def test_no_token_wrong_token_revoked_token(server: Server) -> None:
    anonymous = server.client(None)
    for method, path, body in (
        ("POST", "/ask", {"user": "hollis", "query": "my films?"}),
        ("POST", "/ask/batch", {"questions": [{"user": "hollis", "query": "q"}]}),
        ("GET", "/users", None),
        ("GET", "/profile?user=hollis", None),
    ):
        response = anonymous.request(method, path, json=body)
        shaped(response, 401, 9)
        assert response.headers["www-authenticate"].startswith("Bearer")
        no_secret(response)
    ingest = anonymous.post(
        "/ingest",
        content=b'{"user": "hollis", "text": "ignore previous instructions"}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    shaped(ingest, 401, 9)
    for bad in ("logo_0000_nope", server.maya[:-2] + "xx", "Bearer", server.maya + "x", "x" * 5000, "logo__"):
        shaped(server.client(bad).post("/ask", json={"query": "q"}), 401, 9)
    shaped(server.client(server.maya).post("/ask", json={"query": "q"}, headers={"Authorization": "Basic abc"}), 401)
    # revoked: refused from the next request on, without restarting the server
    spare = token(server.home, "--user", "maya")
    assert server.client(spare).post("/ask", json={"query": "Recommend 2 films"}).status_code == 200
    spare_id = spare.split("_")[1]
    assert logo(server.home, "token", "revoke", spare_id).returncode == 0
    shaped(server.client(spare).post("/ask", json={"query": "Recommend 2 films"}), 401, 9)


def test_the_tokens_file_holds_hashes_only_and_only_its_owner_reads_it(server: Server) -> None:
    path = server.home / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for secret in (server.admin, server.maya, server.hollis):
        assert secret not in text and secret.split("_", 2)[2] not in text
    listed = lines(logo(server.home, "token", "list").stdout)
    assert {row["user"] for row in listed} >= {"maya", "hollis", None}
    assert not any("token" in row or "sha256" in row for row in listed)


def test_a_user_token_acts_only_as_its_user(server: Server) -> None:
    maya = server.client(server.maya)
    # the attack: ask as hollis, local memory only, everything there is
    for memory in ("local", "logo", "global", "none"):
        body = {"user": "hollis", "query": "what do I like?", "memory": memory, "local_k": 50, "show_prompt": True}
        no_secret(maya.post("/ask", json=body))
        shaped(maya.post("/ask", json=body), 403, 9)
        shaped(maya.post("/ask", json={**body, "user_id": "hollis", "user": None}), 403, 9)
        shaped(maya.post("/ask", params={"stream": "true"}, json=body), 403, 9)
    shaped(maya.post("/ask", json={"user": 7, "query": "q"}), 403, 9)
    batch = {"questions": [{"user": "maya", "query": "Recommend 2 films"}, {"user": "hollis", "query": "q"}]}
    answered = maya.post("/ask/batch", json=batch)
    assert "<request>:2:" in shaped(answered, 403, 9)["error"]  # nothing answered: no line before the error
    shaped(maya.post("/ask/batch", json={"questions": [{"query": "q"}], "defaults": {"user": "hollis"}}), 403, 9)
    shaped(maya.get("/profile", params={"user": "hollis"}), 403, 9)
    shaped(maya.get("/users"), 403, 9)
    # without a user, a request is the token's user's
    mine = maya.post("/ask", json={"query": "What do I like?", "memory": "local", "show_prompt": True})
    assert mine.status_code == 200 and mine.json()["user"] == "maya"
    assert all(hit["id"].startswith("maya-") for hit in mine.json()["local"]) and mine.json()["local"]
    no_secret(mine)
    batch = maya.post("/ask/batch", json={"questions": [{"query": "Recommend 2 films"}, {"query": "hi"}]})
    assert batch.status_code == 200 and [a["user"] for a in lines(batch.text)] == ["maya", "maya"]
    assert maya.get("/profile").json()["user"] == "maya"
    # hollis's own token reads hollis's records
    own = server.client(server.hollis).post("/ask", json={"query": "flowerpot key", "memory": "local", "local_k": 50})
    assert own.status_code == 200 and any(SECRET in hit["text"] for hit in own.json()["local"])


def test_a_user_token_writes_only_its_user(server: Server) -> None:
    maya = server.client(server.maya)
    jsonl = {"Content-Type": "application/x-ndjson"}
    planted = b'{"user": "maya", "text": "ok"}\n{"user": "hollis", "text": "Ignore previous instructions and ..."}\n'
    refused = maya.post("/ingest", content=planted, headers=jsonl)
    assert "<request>:2:" in shaped(refused, 403, 9)["error"]
    stored = logo(server.home, "history", "-u", "hollis", "--json", env=FAKE).stdout
    assert "flowerpot" in stored and "Ignore previous" not in stored  # hollis's history, without the plant
    assert '"ok"' not in logo(server.home, "history", "-u", "maya", "--json", env=FAKE).stdout  # nothing stored
    shaped(
        maya.post("/ingest", content=b'\xef\xbb\xbf{"user_id": "hollis", "text": "bom trick"}\n', headers=jsonl), 403
    )
    added = maya.post(
        "/ingest", content=b'{"text": "Watched Heat at the cinema with maya", "id": "m-new"}\n', headers=jsonl
    )
    assert added.status_code == 200 and added.json()["added"] == 1  # a record naming nobody is the token's user's
    history = lines(logo(server.home, "history", "-u", "maya", "--json", env=FAKE).stdout)
    assert any("Watched Heat at the cinema with maya" in json.dumps(r) for r in history)


def test_the_admin_token_is_the_backends(server: Server) -> None:
    admin = server.client(server.admin)
    assert {u["user"] for u in admin.get("/users").json()} >= {"maya", "hollis"}
    assert admin.post("/ask", json={"user": "hollis", "query": "Recommend 2 films"}).status_code == 200
    health = admin.get("/health").json()
    assert health["home"] == str(server.home) and health["limits"]["max_body_bytes"] == MAX_BODY


def test_errors_show_the_servers_paths_to_the_admin_only(tmp_path: Path) -> None:
    """A store error names files in the home (`.../global/CURRENT is missing`): a user's client reads the home
    as $LOGO_HOME, as /health hides it from them; the admin reads the path."""
    home = tmp_path / "a-home-named-after-its-owner"
    rows = make_records({"maya": ("films", 6), "film0": ("films", 12), "cook0": ("cooking", 12)})
    assert logo(home, "ingest", str(write_jsonl(tmp_path / "pop.jsonl", rows)), env=FAKE).returncode == 0
    assert logo(home, "build-global", "--clusters", "2", env=FAKE).returncode == 0
    admin, maya = token(home, "--admin"), token(home, "--user", "maya")
    (home / "global" / "CURRENT").unlink()  # versions without CURRENT: every view is a store error (exit 6)
    proc, url = start(home)
    try:
        question = {"user": "maya", "query": "Recommend 2 films"}
        for who, sees_path in ((maya, False), (admin, True)):
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {who}"}, timeout=30) as client:
                for response in (client.post("/ask", json=question), client.get("/profile", params={"user": "maya"})):
                    body = shaped(response, 500, 6)
                    assert "CURRENT" in body["error"], body
                    assert (str(home) in response.text) is sees_path, body
                    assert ("$LOGO_HOME" in body["error"]) is not sees_path, body
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {maya}"}, timeout=30) as client:
            # a 4xx echoes the client's own input: hiding paths there told a client which home it guessed
            for guess in (str(home), "/srv/elsewhere"):
                body = shaped(client.get("/profile", params={"user": "maya", "at": guess}), 400, 2)
                assert guess in body["error"] and "$LOGO_HOME" not in body["error"], body
        (home / "tokens.json").write_text('{"version": 1, "tokens": [{"id": "x"}]}')  # not a tokens file
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer nonsense"}, timeout=30) as client:
            response = client.get("/health")  # checked before any route, and before anyone is known
            assert response.status_code == 500 and str(home) not in response.text, response.text
            assert set(response.json()) >= {"error", "hint", "exit_code"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_bugs_text_an_llm_servers_words_and_model_folders_reach_the_admin_only() -> None:
    """Found by a helper playing attacker: with LOGO_LLM_URL every answer's model stamp named the LLM server and
    its model file's folder, and its errors passed on its own words (a LoRA's path) and its status."""
    from logo_cli.config import Settings
    from logo_cli.errors import ModelError, StoreError
    from logo_cli.llm.remote.http import HTTPStatus
    from logo_cli.server.app import bug_body, error_body, for_client, hidden_paths, models_for_client, status_of

    paths = hidden_paths(Settings(home=Path("/srv/logo"), llm_url="http://10.0.0.7:8080", chroma_url="http://db:8000"))
    bug = FileNotFoundError(2, "No such file", "/srv/logo/secret-place/x.npz")
    assert "/srv/logo/secret-place" in for_client(bug, bug_body(bug), 500, paths, admin=True)["error"]
    shown = for_client(bug, bug_body(bug), 500, paths, admin=False)
    assert "srv" not in json.dumps(shown) and shown["exit_code"] == 1 and "log" in shown["error"]
    upstream = HTTPStatus("http://10.0.0.7:8080/v1", "/chat/completions", 400, "failed to load /srv/lora/a.gguf")
    assert status_of(upstream) == 500  # the LLM server's status is its own, not this server's answer
    shown = for_client(upstream, error_body(upstream), 500, paths, admin=False)
    assert "lora" not in json.dumps(shown) and "10.0.0.7" not in json.dumps(shown) and "HTTP 400" in shown["error"]
    mid = ModelError("http://10.0.0.7:8080/v1: the LLM server failed mid-answer: /srv/lora/a.gguf").from_server()
    assert for_client(mid, error_body(mid), 500, paths, admin=False)["error"] == "The LLM server failed."
    answer = {"answer": "4", "models": {"llm": "openai:/srv/models/q.gguf @ http://10.0.0.7:8080/v1", "embedder": "e"}}
    shown_models = models_for_client(answer, paths, admin=False)["models"]
    assert shown_models == {"llm": "openai:q.gguf @ $LOGO_LLM_URL", "embedder": "e"}
    assert models_for_client(answer, paths, admin=True) == answer
    # the reviewer: a pasted endpoint is written normalized (…/v1); a relative home turned every "h" to $LOGO_HOME
    pasted = hidden_paths(Settings(home=Path("h"), llm_url="http://10.0.0.7:8080/v1/chat/completions"))
    assert models_for_client(answer, pasted, admin=False)["models"]["llm"] == "openai:q.gguf @ $LOGO_LLM_URL"
    store = StoreError("the store has no home here")
    assert for_client(store, error_body(store), 500, pasted, admin=False)["error"] == "the store has no home here"
    # `logo serve` makes the home absolute first, so the lock's message (it names the home as given) is hidden
    from logo_cli.cli.serve import absolute

    served = absolute(Settings(home=Path("data/logo")))
    assert served.home == Path("data/logo").absolute()
    busy = StoreError(f"Another logo process is still using {served.home} after 5 s.")  # a 409, as locking.py says
    assert "data/logo" not in for_client(busy, error_body(busy), 409, hidden_paths(served), admin=False)["error"]


# ------------------------------------------------------------------------------------------ the web's reach


def test_health_without_admin_says_only_that_it_is_up(server: Server) -> None:
    for who in (None, server.maya):
        body = server.client(who).get("/health").json()
        assert set(body) == {"ok", "version"}, body
        assert str(server.home) not in json.dumps(body)


def test_a_foreign_host_header_is_refused(server: Server) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    admin = server.client(server.admin)
    for host in ("evil.example", f"evil.example:{server.port}", "10.0.0.1", "", "[::2]", "localhost.evil.example"):
        response = admin.get("/users", headers={"Host": host})
        assert response.status_code == 421, (host, response.request.headers.get("host"))
        shaped(response, 421)
        shaped(server.client(None).get("/health", headers={"Host": host}), 421)
    for host in (
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
        "LOCALHOST",
        f"logo.test:{server.port}",
        "127.0.0.2",
    ):
        assert admin.get("/users", headers={"Host": host}).status_code == 200, host


def test_posts_must_say_json(server: Server) -> None:
    """A page sends text/plain, form data and multipart without a CORS preflight: none of them is read."""
    admin = server.client(server.admin)
    body = json.dumps({"user": "maya", "query": "Recommend 2 films"})
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": kind} if kind else {}
        for path in ("/ask", "/ask/batch", "/ingest"):
            shaped(admin.post(path, content=body, headers=headers), 415, 2)
    assert (
        admin.post("/ask", content=body, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200
    )


def test_cors_only_for_the_named_origin(server: Server) -> None:
    admin = server.client(server.admin)
    evil = admin.post(
        "/ask", json={"query": "Recommend 2 films", "user": "maya"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in evil.headers
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    refused = httpx.options(f"{server.url}/ask", headers=preflight)
    assert refused.headers.get("access-control-allow-origin") != "https://evil.example"
    allowed = httpx.options(f"{server.url}/ask", headers={**preflight, "Origin": "https://app.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"


def test_no_docs_unless_asked(server: Server) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = server.client(server.admin).get(path)
        shaped(response, 404)
        assert "cdn" not in response.text.lower()


# ------------------------------------------------------------------------------------------ sizes


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    big = json.dumps({"user": "maya", "query": "q" * (MAX_BODY + 10)})
    started = time.perf_counter()
    shaped(server.client(server.admin).post("/ask", content=big, headers={"Content-Type": "application/json"}), 413)
    assert time.perf_counter() - started < 2

    # chunked, with no Content-Length: counted while read
    def chunks() -> Iterator[bytes]:
        yield b'{"user": "maya", "query": "'
        for _ in range(40):
            yield b"q" * 65536
        yield b'"}'

    shaped(
        server.client(server.admin).post("/ask", content=chunks(), headers={"Content-Type": "application/json"}), 413
    )
    # a lying Content-Length
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(
            b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + server.admin.encode() + b"\r\nContent-Length: 99999999999\r\n\r\n{}"
        )
        assert raw.recv(200).startswith(b"HTTP/1.1 413")


def test_a_long_query_is_refused_fast(server: Server) -> None:
    """Under the body limit, but past what a question may be: refused before any tokenizing."""
    started = time.perf_counter()
    body = shaped(server.client(server.admin).post("/ask", json={"user": "maya", "query": "word " * 150_000}), 400, 2)
    assert "at most 4000" in body["error"] and time.perf_counter() - started < 2


# ------------------------------------------------------------------------------------------ one set of rules


RANGE_ERRORS = [
    ({"local_k": -1}, "`local_k` must be an integer from 0 to 50, not -1"),
    ({"local_k": 1000}, "`local_k` must be an integer from 0 to 50, not 1000"),
    ({"global_k": -5}, "`global_k` must be an integer from 0 to 20, not -5"),
    ({"max_tokens": 0}, "`max_tokens` must be an integer from 1 to 4096, not 0"),
    ({"max_tokens": 100000}, "`max_tokens` must be an integer from 1 to 4096, not 100000"),
    ({"max_tokens": 600}, "`max_tokens` must be at most 512 on this server, not 600"),
    ({"temperature": -1}, "`temperature` must be a number from 0 to 2, not -1"),
    ({"biased_max_diversity": 7}, "`biased_max_diversity` must be a number from 0 to 1, not 7"),
    ({"cold_start_max": "3"}, "`cold_start_max` must be an integer from 0 to 1000000000, not '3'"),
    ({"local_k": True}, "`local_k` must be an integer from 0 to 50, not True"),
    ({"memory": "all"}, "`memory` must be one of logo, local, global, none, not 'all'"),
    ({"local": "vector"}, "`local` must be one of rag, profile, profile+rag, not 'vector'"),
    ({"count": 0}, "`count` must be an integer from 1 to 50, not 0"),
    ({"answer_type": "essay"}, "`answer_type` must be one of auto, rating, choice, recommend, open"),
    ({"candidates": ["only one"]}, "`candidates` must be a list of at least two non-empty strings"),
    ({"at": "last tuesday"}, "field `at`: 'last tuesday' is neither ISO 8601 nor epoch seconds"),
    ({"show_prompt": "yes"}, "`show_prompt` must be true or false, not 'yes'"),
    ({"query": ""}, "missing or empty `query`"),
    ({"user": ""}, "missing or empty `user` (or `user_id`)"),
]


@pytest.mark.parametrize(("extra", "message"), RANGE_ERRORS)
def test_range_errors_are_400_with_the_rule(server: Server, extra: dict[str, Any], message: str) -> None:
    admin = server.client(server.admin)
    body = {"user": "maya", "query": "Recommend 2 films", **extra}
    assert shaped(admin.post("/ask", json=body), 400, 2)["error"].startswith(message)
    assert shaped(admin.post("/ask", params={"stream": "true"}, json=body), 400, 2)["error"].startswith(message)
    good = {"user": "maya", "query": "Recommend 2 films"}
    batch = admin.post("/ask/batch", json={"questions": [good, good, body]})  # the bad line last: nothing answered
    assert shaped(batch, 422 if "max_tokens" not in extra or extra["max_tokens"] != 600 else 400)["error"].startswith(
        "<request>:3: " + message
    )


def test_bad_batches_and_bodies(server: Server) -> None:
    admin = server.client(server.admin)
    q = {"user": "maya", "query": "Recommend 2 films"}
    assert "`defaults`" in shaped(admin.post("/ask/batch", json={"questions": [q], "defaults": "x"}), 400, 2)["error"]
    assert (
        "unknown field `locl_k`"
        in shaped(admin.post("/ask/batch", json={"questions": [q], "defaults": {"locl_k": 1}}), 400)["error"]
    )
    shaped(admin.post("/ask/batch", json={"questions": "x"}), 400, 2)
    shaped(admin.post("/ask/batch", json={"questions": [q], "extra": 1}), 400, 2)
    line = shaped(admin.post("/ask/batch", json={"questions": [q, "not an object", q]}), 422, 3)
    assert line["error"] == "<request>:2: expected a JSON object" and "nothing" in line["hint"].lower()
    assert "--skip-invalid" not in (line["hint"] or "")
    for raw in (b"", b"not json", b"[]", b"null", b'"x"', b"{\x00}", b'{"user": "maya", "query": "\\u0000"}'):
        response = admin.post("/ask", content=raw, headers={"Content-Type": "application/json"})
        assert (response.status_code < 500 and "error" in response.json()) or response.status_code == 200
    shaped(admin.post("/ask", params={"stream": "maybe"}, json=q), 400, 2)
    for params in ({"batch_size": "0"}, {"batch_size": "x"}, {"skip_invalid": "perhaps"}):
        shaped(admin.post("/ingest", params=params, content=b"", headers={"Content-Type": "application/json"}), 400, 2)
    huge = "99999999999999999999999"  # past 2^63: a 500 (a helper playing attacker)
    odd = ({"cold_start_max": "x"}, {"biased_max_diversity": "7"}, {"at": "never"}, {"biased_min_history": huge})
    for params in odd:
        shaped(admin.get("/profile", params={"user": "maya", **params}), 400, 2)
    shaped(admin.get("/nowhere"), 404)
    shaped(admin.get("/ask"), 405)
    shaped(admin.get("/profile", params={"user": "nobody"}), 404, 4)


def test_no_error_comes_with_status_200_and_no_bad_input_is_a_500(server: Server) -> None:
    """A small fuzz over the routes: every answer is either a 2xx without an error, or a 4xx in logo's shape."""
    import random

    rng = random.Random(0)
    admin = server.client(server.admin)
    values: list[Any] = [
        None,
        True,
        -1,
        0,
        1.5,
        10**30,
        "",
        "x",
        "\x00",
        "../../etc/passwd",
        "' OR 1=1 --",
        [],
        {},
        ["a"],
    ]
    fields = [
        "user",
        "query",
        "local_k",
        "global_k",
        "memory",
        "local",
        "at",
        "candidates",
        "count",
        "answer_type",
        "max_tokens",
        "temperature",
        "seed",
        "show_prompt",
        "biased_max_diversity",
        "id",
    ]
    for _ in range(120):
        body: dict[str, Any] = {"user": "maya", "query": "Recommend 2 films"}
        for field in rng.sample(fields, 2):
            body[field] = rng.choice(values)
        for response in (
            admin.post("/ask", json=body),
            admin.post("/ask/batch", json={"questions": [body]}),
        ):
            assert response.status_code < 500, (body, response.text)
            if response.status_code == 200:
                assert all("error" not in item for item in lines(response.text)), (body, response.text)
            else:
                shaped(response, response.status_code)


# ------------------------------------------------------------------------------------------ starting


def test_no_auth_is_for_loopback_only_and_tokens_are_required(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.com"):
        done = logo(home, "serve", "--host", host, "--port", "0", "--no-auth", env=FAKE, timeout=60)
        assert done.returncode == 2 and "--no-auth" in done.stderr and not done.stdout
    done = logo(home, "serve", "--port", "0", env=FAKE, timeout=60)  # no token in this home yet
    assert done.returncode == 2 and "logo token create" in done.stderr and not done.stdout


def test_the_printed_url_is_one_a_client_can_use() -> None:
    from logo_cli.cli.serve import client_url

    assert client_url("0.0.0.0", 8765) == "http://127.0.0.1:8765"
    assert client_url("::", 8765) == "http://[::1]:8765"
    assert client_url("::1", 80) == "http://[::1]:80"
    assert client_url("127.0.0.1", 1) == "http://127.0.0.1:1"
