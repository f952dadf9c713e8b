"""--llm-url: generation on an OpenAI-compatible server.

Unit tests of the HTTP side run against a tiny fake server (a thread in this process); echo scoring is
tested on plain dicts in test_llm.py. The `real` tests start
llama-cpp-python's own server on the packaged SmolLM2 GGUF and go through the installed `logo` command.
Only one llama.cpp runs at a time: the store is built before the server starts, the CLI loads the GGUF
vocabulary only (no compute), and the in-process model is loaded only while the server is idle.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from logo_cli.errors import ExitCode, ModelError, UsageError
from logo_cli.llm import Usage
from logo_cli.llm.remote import RemoteGenerator, normalize_url

from .helpers import HISTORIES, lines, logo

MESSAGES = [
    {"role": "system", "content": "You rate films from 1 to 5."},
    {"role": "user", "content": "How would I rate Alien?"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------------------------- units


def test_urls_normalize_to_the_v1_base() -> None:
    assert normalize_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert normalize_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1"
    assert normalize_url("localhost:11434") == "http://localhost:11434/v1"
    assert normalize_url("https://box.lan/v1/chat/completions") == "https://box.lan/v1"
    assert normalize_url("http://box.lan/openai") == "http://box.lan/openai/v1"
    with pytest.raises(UsageError):
        normalize_url("ftp://box.lan")


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible server. Class attributes set the behaviour per test."""

    strict = False  # reject unknown fields, as OpenAI itself does
    tokenize = False  # offer llama-server's POST /tokenize
    usage = True  # send a usage chunk at the end of a stream
    requests: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012 - shared on purpose

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "served-one"}, {"id": "served-two"}]})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        if self.path == "/tokenize" and self.tokenize:
            self._send(200, {"tokens": list(range(len(body["content"].split())))})
        elif self.path == "/v1/chat/completions":
            if self.strict and "repeat_penalty" in body:
                self._send(400, {"error": {"message": "Unrecognized request argument supplied: repeat_penalty"}})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunks: list[dict[str, Any]] = [
                {"choices": [{"delta": {"role": "assistant"}}]},
                {"choices": [{"delta": {"content": "Four"}}]},
                {"choices": [{"delta": {"content": " stars."}}]},
                {"choices": [{"delta": {}, "finish_reason": "stop"}]},
            ]
            if self.usage:
                chunks.append({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 3}})
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        elif self.path == "/v1/completions":
            text = body["prompt"] + " x"
            self._send(
                200,
                {
                    "choices": [{"text": text, "logprobs": None}],  # no prompt logprobs (no --logits_all)
                    "usage": {"prompt_tokens": 9, "completion_tokens": 1},
                },
            )
        else:
            self._send(404, {"detail": "Not Found"})


@pytest.fixture
def fake_server() -> Iterator[str]:
    FakeOpenAI.strict, FakeOpenAI.tokenize, FakeOpenAI.usage = False, False, True
    FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_stream_reads_deltas_and_the_usage_chunk(fake_server: str) -> None:
    gen = RemoteGenerator(fake_server)
    usage = Usage()
    text = "".join(gen.stream(MESSAGES, max_tokens=8, temperature=0.0, seed=3, usage=usage))
    assert text == "Four stars."
    assert (usage.prompt_tokens, usage.completion_tokens) == (42, 3)
    assert gen.id == f"openai:served-one @ {fake_server}/v1"
    assert gen.tokenizer == "estimate"  # no GGUF named, no tokenizer endpoint
    path, body = FakeOpenAI.requests[-1]
    assert path == "/v1/chat/completions" and body["model"] == "served-one" and body["stream"] is True
    assert (body["seed"], body["temperature"], body["max_tokens"]) == (3, 0.0, 8)
    assert "<|im_end|>" in body["stop"] and body["messages"] == MESSAGES


def test_without_a_usage_chunk_tokens_are_counted_here(fake_server: str) -> None:
    FakeOpenAI.usage = False
    FakeOpenAI.tokenize = True
    gen = RemoteGenerator(fake_server, model="served-two")
    usage = Usage()
    assert "".join(gen.stream(MESSAGES, max_tokens=8, temperature=0.0, seed=0, usage=usage)) == "Four stars."
    assert gen.tokenizer == "server:/tokenize"
    assert usage.prompt_tokens == gen.count_tokens(gen.render(MESSAGES)) > 0
    assert usage.completion_tokens == 2
    assert FakeOpenAI.requests[-1][1]["model"] == "served-two"


def test_a_strict_server_gets_no_optional_fields(fake_server: str) -> None:
    FakeOpenAI.strict = True
    gen = RemoteGenerator(fake_server)
    assert "".join(gen.stream(MESSAGES, max_tokens=8, temperature=0.0, seed=0, usage=Usage())) == "Four stars."
    assert "repeat_penalty" not in FakeOpenAI.requests[-1][1]


def test_a_server_without_prompt_logprobs_cannot_score(fake_server: str) -> None:
    gen = RemoteGenerator(fake_server)
    with pytest.raises(ModelError) as caught:
        gen.score(MESSAGES, ["Rating: 4"], Usage())
    assert "can't score candidates" in caught.value.message and fake_server in caught.value.message
    assert caught.value.hint and "LOGO_LLM_URL" in caught.value.hint and "--logits_all true" in caught.value.hint
    path, body = FakeOpenAI.requests[-1]
    assert path == "/v1/completions" and body["echo"] is True and body["prompt"].endswith("Rating: 4")


def test_http_errors_name_the_url(fake_server: str) -> None:
    gen = RemoteGenerator(fake_server + "/nowhere")
    with pytest.raises(ModelError) as caught:
        _ = gen.id
    assert f"{fake_server}/nowhere/v1" in caught.value.message and "HTTP 404" in caught.value.message


def test_the_model_setting_names_the_served_model_or_the_tokenizer(fake_server: str, tmp_path: Path) -> None:
    from logo_cli.config import Settings, default_model_path
    from logo_cli.llm import generator_for, load_remote

    named = Settings(home=tmp_path, model="qwen2.5:7b", llm_url="http://127.0.0.1:9/")
    gen = load_remote(named)
    assert gen is load_remote(named) is generator_for(named)  # one per process, chosen by the factory
    assert gen.id == "openai:qwen2.5:7b @ http://127.0.0.1:9/v1"  # known without asking the server

    # Nothing named: the packaged GGUF tokenizes only if the server serves that model; this one serves others.
    default = load_remote(Settings(home=tmp_path, model="", llm_url=fake_server))
    assert isinstance(default, RemoteGenerator) and default.tokenizer == "estimate"
    assert default.model == "served-one"
    # A GGUF named by path is the tokenizer (and picks nothing: the server's first model is used).
    gguf = str(default_model_path())
    by_path = load_remote(Settings(home=tmp_path, model=gguf, llm_url=fake_server))
    assert isinstance(by_path, RemoteGenerator) and by_path.model == "served-one"
    assert by_path.tokenizer == "gguf:" + Path(gguf).name
    assert by_path.count_tokens("<|im_start|>user") == 2


# ------------------------------------------------------------------------------------------------ real


def logo_env(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`logo` with the fake embedder and more LOGO_* variables (the shared helper drops them all)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")}
    clean |= {"LOGO_HOME": str(home), "LOGO_EMBEDDER": "fake", **env}
    return subprocess.run(
        [sys.executable, "-m", "logo_cli", *args], capture_output=True, text=True, env=clean, timeout=300
    )


@pytest.fixture(scope="module")
def gguf() -> str:
    from logo_cli.config import default_model_path

    return str(default_model_path())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample histories in a real store and global memory, built before the server starts (one compute-heavy
    process at a time). The fake embedder keeps this module fast: what is under test is the generator."""
    home = tmp_path_factory.mktemp("llm-url") / "home"
    for args in (("ingest", str(HISTORIES)), ("build-global", "--seed", "0", "--clusters", "8")):
        done = logo_env(home, {}, *args)
        assert done.returncode == 0, done.stderr
    return home


@pytest.fixture(scope="module")
def server(home: Path, gguf: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the packaged GGUF, with prompt logprobs enabled."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--logits_all", "true", "--verbose", "false"]
    # Its default of one thread: on two cores, two llama.cpp threads starve the server's own (measured 4x slower).
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the server did not start in 60 s: {log.read_text()[-2000:]}"
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.real
def test_ask_answers_from_the_server(home: Path, server: str, gguf: str) -> None:
    env = {"LOGO_LLM_URL": server, "LOGO_MODEL": gguf}  # the GGUF only for its tokenizer: vocab, no weights
    question = "What should I cook this weekend?"
    # --answer-type open: generated by the model (auto would answer this recommend question from memory alone)
    args = ("ask", "--user", "maya", "--json", "--answer-type", "open", "--max-tokens", "24", question)
    done = logo_env(home, env, *args)
    assert done.returncode == 0, done.stderr
    [result] = lines(done.stdout)
    assert result["answer"].strip()
    assert result["models"]["llm"].startswith("openai:") and f"@ {server}/v1" in result["models"]["llm"]
    assert "SmolLM2" in result["models"]["llm"]
    assert result["tokens"]["prompt"] > 0 and 0 < result["tokens"]["completion"] <= 24
    assert result["local"] and result["global"]  # the mediator ran here, on the store and global memory


@pytest.mark.real
def test_an_unreachable_server_exits_5_naming_the_url(home: Path, gguf: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = logo(home, "--llm-url", url, "ask", "--model", gguf, "--memory", "none", "--user", "maya", "hi")
    assert done.returncode == ExitCode.MODEL, done.stderr
    assert f"{url}/v1: cannot reach the LLM server" in done.stderr
    assert "LOGO_LLM_URL" in done.stderr


@pytest.mark.real
def test_the_server_scores_candidates_like_the_in_process_model(server: str, gguf: str) -> None:
    from logo_cli.llm import load_generator

    remote = RemoteGenerator(server, gguf=gguf)
    assert remote.tokenizer.startswith("gguf:")
    candidates = ["Rating: 1", "Rating: 3", "Rating: 5"]
    usage = Usage()
    scores = remote.score(MESSAGES, candidates, usage)
    assert usage.prompt_tokens == remote.count_tokens(remote.render(MESSAGES)) > 0
    assert all(math.isfinite(s.logprob) and s.logprob < 0 and s.tokens > 0 for s in scores)
    # The server is idle now: the in-process model may run. The same template, the same log-likelihoods.
    local = load_generator(gguf, n_ctx=2048, n_threads=os.cpu_count() or 1)
    assert remote.render(MESSAGES) == local.render(MESSAGES)
    expected = local.score(MESSAGES, candidates, Usage())
    assert [s.tokens for s in scores] == [s.tokens for s in expected]
    for got, want in zip(scores, expected, strict=True):
        assert got.logprob == pytest.approx(want.logprob, abs=0.25)
