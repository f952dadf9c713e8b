"""The llm package without a model server: the pieces every backend shares (context fitting, chat templates),
echo scoring as a pure function over plain dicts, token counting helpers, the factory, and the package's
shape (light to import, dependencies one way)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logo_cli.errors import ModelError, UsageError
from logo_cli.llm import CHATML, STOP, ChatTemplate, FakeGenerator, compile_template, fit_context, generator_for
from logo_cli.llm.remote.scoring import SCORE_HINT, Unscorable, cannot_score, continuation_score, echo_request
from logo_cli.llm.remote.tokenizers import (
    EstimateTokenizer,
    ServerTokenizer,
    choose_tokenizer,
    same_model,
    server_count,
)

PACKAGE = Path(__file__).resolve().parent.parent / "logo_cli" / "llm"
MESSAGES = [
    {"role": "system", "content": "You rate films from 1 to 5."},
    {"role": "user", "content": "How would I rate Alien?"},
]
CHATML_PROMPT = (
    "<|im_start|>system\nYou rate films from 1 to 5.<|im_end|>\n"
    "<|im_start|>user\nHow would I rate Alien?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


# ------------------------------------------------------------------------------------------ the package


def test_importing_the_package_pulls_in_no_backend_dependency() -> None:
    code = (
        "import sys, logo_cli.llm\n"
        "heavy = [m for m in ('llama_cpp', 'httpx', 'jinja2', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _imports(path: Path) -> set[str]:
    """The modules of logo_cli.llm that a file imports, as paths relative to the package (`remote/http`)."""
    out = set()
    here = path.parent.relative_to(PACKAGE).parts
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = list(here[: len(here) - (node.level - 1)]) if node.level > 1 else list(here)
        if node.level - 1 > len(here):
            continue  # above the package (logo_cli.errors, logo_cli.config)
        target = [*base, *(node.module.split(".") if node.module else [])]
        names = [target] if node.module else [[*target, alias.name] for alias in node.names]
        out |= {"/".join(n) for n in names}
    return out


def test_dependencies_go_one_way() -> None:
    """base imports no backend; no backend imports another; only the package's factory knows them all."""
    backends = {"fake", "llama", "remote"}

    def backend_of(module: str) -> str:
        return module.split("/")[0]

    for path in PACKAGE.rglob("*.py"):
        module = path.relative_to(PACKAGE).with_suffix("").as_posix()
        if module == "__init__":
            continue
        imported = {backend_of(m) for m in _imports(path)}
        if module in ("base", "gguf"):
            assert not imported & backends, (module, imported)
        else:
            assert not (imported & backends) - {backend_of(module)}, (module, imported)
    assert _imports(PACKAGE / "base.py") == set()


# ---------------------------------------------------------------------------------------- context fitting


def test_a_prompt_that_fits_keeps_max_tokens_or_what_the_context_leaves() -> None:
    assert fit_context(100, 2048, 160) == 160
    assert fit_context(2000, 2048, 160) == 48
    assert fit_context(2047, 2048, 160) == 1  # one token left: still an answer of one token


def test_a_prompt_that_fills_the_context_is_the_one_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        fit_context(2048, 2048, 160)
    assert caught.value.message == "The prompt (2048 tokens) does not fit the model's context (2048 tokens)."
    assert caught.value.hint and "LOGO_CTX" in caught.value.hint


def test_scoring_keeps_room_for_the_longest_continuation() -> None:
    fit_context(2000, 2048, reserve=47)
    with pytest.raises(UsageError, match=r"prompt \(2000 tokens\)"):
        fit_context(2000, 2048, reserve=48)


# ---------------------------------------------------------------------------------------- chat templates


def test_chatml_renders_the_messages_and_opens_the_assistant_turn() -> None:
    assert ChatTemplate().render(MESSAGES) == CHATML_PROMPT
    assert ChatTemplate().source == CHATML
    assert STOP[0] == "<|im_end|>"


def test_a_gguf_template_is_used_and_chatml_is_the_fallback() -> None:
    own = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]"
    rendered = ChatTemplate.from_metadata({"tokenizer.chat_template": own}).render(MESSAGES)
    assert rendered == "[system] You rate films from 1 to 5.\n[user] How would I rate Alien?\n[assistant]"
    assert ChatTemplate.from_metadata({}).render(MESSAGES) == CHATML_PROMPT
    assert ChatTemplate.from_metadata({"tokenizer.chat_template": ""}).render(MESSAGES) == CHATML_PROMPT


def test_a_template_from_a_model_file_runs_in_a_sandbox() -> None:
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        compile_template("{{ messages.append(1) }}").render(messages=[])
    with pytest.raises(SecurityError):
        compile_template("{{ ''.__class__.__mro__ }}").render()


@pytest.fixture(scope="module")
def gguf() -> str:
    from logo_cli.config import default_model_path

    try:
        return str(default_model_path())
    except ModelError as exc:
        pytest.skip(exc.message)


def test_both_backends_render_and_count_a_gguf_alike(gguf: str) -> None:
    """The in-process model and the remote backend's vocab-only tokenizer share the template code."""
    from logo_cli.llm import load_generator
    from logo_cli.llm.remote import RemoteGenerator

    remote = RemoteGenerator("http://127.0.0.1:9", model="served", gguf=gguf)  # nothing is sent
    local = load_generator(gguf, n_ctx=512, n_threads=1)
    assert remote.tokenizer.startswith("gguf:") and remote.exact
    assert remote.render(MESSAGES) == local.render(MESSAGES) == CHATML_PROMPT  # SmolLM2's template is ChatML
    assert remote.count_tokens(CHATML_PROMPT) == local.count_tokens(CHATML_PROMPT) > 0


# ------------------------------------------------------------------------------------------ echo scoring


def echoed(pieces: list[str], logprobs: list[float | None], **extra: Any) -> dict[str, Any]:
    """A `/v1/completions` answer echoing `pieces` (the last one generated), with text offsets."""
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    lp = {"tokens": pieces, "text_offset": offsets, "token_logprobs": logprobs}
    return {"choices": [{"text": "".join(pieces), "logprobs": lp}], **extra}


PROMPT = CHATML_PROMPT


def test_echo_request_asks_for_the_prompts_logprobs_and_one_token() -> None:
    body = echo_request("served", PROMPT, "Rating: 4")
    assert body["prompt"] == PROMPT + "Rating: 4" and body["model"] == "served"
    assert (body["echo"], body["logprobs"], body["max_tokens"], body["temperature"]) == (True, 1, 1, 0.0)


def test_the_continuations_tokens_are_summed() -> None:
    """vLLM/OpenAI style: offsets into the prompt text, the first logprob null, one generated token."""
    answer = echoed([PROMPT, "Rating", ":", " 4", " x"], [None, -1.0, -0.5, -2.0, -9.0], usage={"completion_tokens": 1})
    score = continuation_score(answer, "Rating: 4")
    assert score.tokens == 3 and score.logprob == pytest.approx(-3.5) and score.mean == pytest.approx(-3.5 / 3)


def test_without_usage_the_generated_token_is_told_by_the_text() -> None:
    one = echoed([PROMPT, "Rating", ":", " 4", " x"], [None, -1.0, -0.5, -2.0, -9.0])
    assert continuation_score(one, "Rating: 4").logprob == pytest.approx(-3.5)
    # A server that generated nothing (the text ends with the continuation): every token is echoed.
    none = echoed([PROMPT, "Rating", ":", " 4"], [None, -1.0, -0.5, -2.0])
    assert continuation_score(none, "Rating: 4").logprob == pytest.approx(-3.5)
    # usage says so too
    said = echoed([PROMPT, "Rating", ":", " 4"], [None, -1.0, -0.5, -2.0], usage={"completion_tokens": 0})
    assert continuation_score(said, "Rating: 4").tokens == 3


def test_a_token_across_the_boundary_counts_for_the_continuation() -> None:
    """BPE may merge the prompt's last character with the continuation's first: that token counts."""
    answer = echoed([PROMPT[:-1], "\nRating", ": 4", " x"], [None, -1.5, -0.5, -9.0], usage={"completion_tokens": 1})
    score = continuation_score(answer, "Rating: 4")
    assert score.tokens == 2 and score.logprob == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"choices": [{"text": "x", "logprobs": None}]}, "no log-probabilities"),
        ({"choices": []}, "no log-probabilities"),
        ("not an object", "no log-probabilities"),
        (
            {"choices": [{"logprobs": {"token_logprobs": [-1.0, -2.0], "text_offset": [0]}}]},
            "no log-probabilities of the prompt's tokens",
        ),
        (
            {
                "choices": [{"logprobs": {"token_logprobs": [-1.0], "text_offset": [0]}}],
                "usage": {"completion_tokens": 1},
            },
            "did not echo",
        ),
        (
            {
                "choices": [{"logprobs": {"token_logprobs": [None, -1.0, -2.0], "text_offset": [0, 5, 9]}}],
                "usage": {"completion_tokens": 0},
            },
            "no token texts",
        ),
    ],
)
def test_answers_that_cannot_score_say_why(answer: Any, why: str) -> None:
    with pytest.raises(Unscorable, match=why):
        continuation_score(answer, "Rating: 4")


def test_a_continuation_token_without_a_logprob_cannot_score() -> None:
    answer = echoed([PROMPT, "Rating", ":", " 4", " x"], [None, -1.0, None, -2.0, -9.0], usage={"completion_tokens": 1})
    with pytest.raises(Unscorable, match="no log-probability"):
        continuation_score(answer, "Rating: 4")


def test_offsets_that_do_not_cover_the_candidate_cannot_score() -> None:
    answer = echoed(["Rat", "ing", ": 4", " x"], [-0.1, -1.0, -2.0, -9.0], usage={"completion_tokens": 1})
    with pytest.raises(Unscorable, match="do not cover"):
        continuation_score(answer, "A longer candidate than the text: 4")


def test_the_error_names_the_server_and_what_to_do() -> None:
    error = cannot_score("http://box:8080/v1", "HTTP 400: logprobs not supported")
    assert (
        error.message
        == "http://box:8080/v1: this LLM server can't score candidates (HTTP 400: logprobs not supported)."
    )
    assert error.hint == SCORE_HINT


# -------------------------------------------------------------------------------------------- tokenizers


class StubAPI:
    """Answers the tokenizer endpoints like a server would, counting the requests."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post_extra(self, endpoint: str, body: dict[str, Any]) -> Any | None:
        self.calls.append((endpoint, body))
        answer = self.answers.get(endpoint)
        return answer(body) if callable(answer) else answer


def test_server_counts_read_llama_server_vllm_and_llama_cpp_python_answers() -> None:
    api: Any = StubAPI({"/tokenize": {"tokens": [1, 2, 3]}, "/extras/tokenize/count": {"count": 7}})
    assert server_count(api, "/tokenize", "abc") == 3
    assert api.calls[-1] == ("/tokenize", {"content": "abc", "prompt": "abc"})
    assert server_count(api, "/extras/tokenize/count", "abc") == 7
    assert api.calls[-1] == ("/extras/tokenize/count", {"input": "abc"})
    assert server_count(StubAPI({}), "/tokenize", "abc") is None  # type: ignore[arg-type]


def test_the_tokenizer_is_the_servers_when_it_has_one_else_an_estimate() -> None:
    api: Any = StubAPI({"/extras/tokenize/count": lambda body: {"count": len(body["input"].split())}})
    chosen = choose_tokenizer(api, None, named=False, served=lambda: pytest.fail("no need to ask"))
    assert isinstance(chosen, ServerTokenizer) and chosen.name == "server:/extras/tokenize/count" and chosen.exact
    asked = len(api.calls)
    assert chosen.count("one two three") == chosen.count("one two three") == 3
    assert len(api.calls) == asked + 1  # one request per distinct text
    assert chosen.template.render(MESSAGES) == CHATML_PROMPT

    estimate = choose_tokenizer(StubAPI({}), None, named=False, served=lambda: "x")  # type: ignore[arg-type]
    assert isinstance(estimate, EstimateTokenizer) and not estimate.exact and estimate.name == "estimate"
    assert estimate.count("abcdefghi") == 3  # ceil(9 / 4)


def test_a_served_model_names_a_gguf_by_path_file_or_stem() -> None:
    gguf = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert same_model(gguf, gguf)
    assert same_model("smollm2-135m-instruct", gguf)
    assert same_model("HuggingFaceTB/SmolLM2-135M-Instruct.Q4_1.gguf", gguf)
    assert not same_model("qwen2.5:7b", gguf)


# ------------------------------------------------------------------------------------------------ factory


def test_the_factory_chooses_and_caches_the_backend(tmp_path: Path) -> None:
    from logo_cli.config import Settings
    from logo_cli.llm.remote import RemoteGenerator

    fake = generator_for(Settings(home=tmp_path, model="fake", llm_url=""))
    assert isinstance(fake, FakeGenerator) and fake is generator_for(Settings(home=tmp_path, model="fake"))
    remote = generator_for(Settings(home=tmp_path, model="served", llm_url="127.0.0.1:9"))
    assert isinstance(remote, RemoteGenerator) and remote.base == "http://127.0.0.1:9/v1"
    assert remote is generator_for(Settings(home=tmp_path, model="served", llm_url="http://127.0.0.1:9/v1/"))
    with pytest.raises(UsageError):
        generator_for(Settings(home=tmp_path, model="served", llm_url="ftp://box"))


@pytest.mark.real
def test_scoring_as_a_trie_equals_scoring_each_continuation_alone(gguf: str) -> None:
    """Shared prefixes are evaluated once, and each unforked run of tokens in one decode; every continuation's
    log-likelihood is what evaluating the prompt and it alone, token by token from an empty cache, gives, up
    to llama.cpp's batched arithmetic (a few hundredths of a nat per token: its batched and single-token
    kernels round differently)."""
    import numpy as np

    from logo_cli.llm import Usage
    from logo_cli.llm.llama import LlamaCppGenerator

    gen = LlamaCppGenerator(gguf, n_ctx=512, n_threads=2)
    messages = [{"role": "system", "content": "Rate films."}, {"role": "user", "content": "How would I rate Heat?"}]
    continuations = [
        "Rating: 3/5",
        "Rating: 3.5/5",
        "Rating: 4/5",
        "Rating: 3/5",
        "Rating: 10/10",
        "Yes",
        "Cinema Paradiso (Nuovo cinema Paradiso) (1989)",  # a choice's options: long branches, one decode each
        "Cinema Paradiso (1989)",
        "The Commitments (1991)",
    ]
    scores = gen.score(messages, continuations, Usage())
    llm = gen._llm
    prompt = gen._prompt_tokens(messages)
    for text, score in zip(continuations, scores, strict=True):
        piece = llm.tokenize(text.encode(), add_bos=False, special=False)
        llm.reset()
        llm.eval(prompt)
        total = 0.0
        for i, token in enumerate(piece):
            total += float(gen._last_logprobs()[token])
            if i + 1 < len(piece):
                llm.eval([token])
        assert score.tokens == len(piece) and np.isclose(score.logprob, total, atol=0.05 * len(piece)), text
    assert scores[0].logprob == scores[3].logprob  # the same text, the same score
    alone = gen.score(messages, ["Cinema Paradiso (1989)"], Usage())[0]
    assert np.isclose(alone.logprob, scores[7].logprob, atol=0.05 * alone.tokens)  # whatever its siblings


@pytest.mark.real
def test_generating_right_after_scoring_the_same_prompt_is_unchanged(gguf: str) -> None:
    """Scoring leaves llama.cpp's logits on a candidate's last token; a generation from the same prompt must
    not start from them (a batch may ask the same prompt for a rating, then for open text)."""
    from logo_cli.llm import Usage
    from logo_cli.llm.llama import LlamaCppGenerator

    gen = LlamaCppGenerator(gguf, n_ctx=512, n_threads=2)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a film."}]
    options = {"max_tokens": 12, "temperature": 0.0, "seed": 0}
    alone = "".join(gen.stream(messages, usage=Usage(), **options))  # type: ignore[arg-type]
    gen.score(messages, ["Rating: 4/5", "Rating: 4.5/5"], Usage())
    after = "".join(gen.stream(messages, usage=Usage(), **options))  # type: ignore[arg-type]
    assert after == alone
