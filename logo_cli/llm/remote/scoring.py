"""Scoring candidates on a server by echo: `POST /v1/completions` of prompt + continuation with `echo` and
`logprobs` returns each prompt token's log-probability and text offset; the continuation's tokens are the
last echoed ones. Pure functions over the request and the parsed JSON answer: no HTTP here."""

from __future__ import annotations

import math
from typing import Any

from ...errors import ModelError
from ..base import Score

SCORE_HINT = (
    "Rating and choice answers (and `logo eval`) score candidates: use the in-process model (unset "
    "LOGO_LLM_URL), start llama-cpp-python's server with `--logits_all true` (vLLM also returns prompt "
    "log-probabilities), or ask with --answer-type open."
)


class Unscorable(ValueError):
    """The server's answer carries no usable log-probabilities of the continuation; the text says why."""


def cannot_score(base: str, why: str) -> ModelError:
    """The error a caller raises for a server that cannot score: it names the server and what to do."""
    return ModelError(f"{base}: this LLM server can't score candidates ({why}).", SCORE_HINT)


def echo_request(model: str, prompt: str, continuation: str) -> dict[str, Any]:
    """The `/v1/completions` body that echoes prompt + continuation with log-probabilities (one token generated)."""
    return {
        "model": model,
        "prompt": prompt + continuation,
        "max_tokens": 1,
        "temperature": 0.0,
        "seed": 0,
        "echo": True,
        "logprobs": 1,
    }


def continuation_score(answer: Any, continuation: str) -> Score:
    """The log-likelihood of `continuation` from the server's answer to `echo_request(..., continuation)`:
    the sum of the log-probabilities of the echoed tokens that overlap the continuation's characters (the
    last ones before the generated token). Raises Unscorable when the answer cannot give it."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        raise Unscorable("it returned no log-probabilities")
    values, offsets = logprobs.get("token_logprobs"), logprobs.get("text_offset")
    tokens = logprobs.get("tokens") or []
    if not isinstance(values, list) or not isinstance(offsets, list) or len(values) != len(offsets):
        raise Unscorable("it returned no log-probabilities of the prompt's tokens")
    reported = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    generated = reported.get("completion_tokens")
    if not isinstance(generated, int):
        generated = 0 if str(choice.get("text", "")).endswith(continuation) else 1
    echoed = len(values) - generated  # the prompt's tokens (some servers leave out BOS tokens)
    if echoed < 2:
        raise Unscorable("it did not echo the prompt's log-probabilities")
    if echoed < len(offsets):
        end = int(offsets[echoed])  # where the generated token starts
    elif len(tokens) >= echoed:
        end = int(offsets[echoed - 1]) + len(str(tokens[echoed - 1]))
    else:
        raise Unscorable("it returned no token texts")
    start = end - len(continuation)
    total, count = 0.0, 0
    for i in range(echoed):
        token_end = int(offsets[i + 1]) if i + 1 < len(offsets) else end
        if token_end <= start:
            continue
        if not isinstance(values[i], int | float):
            raise Unscorable("a token of the continuation has no log-probability")
        total += float(values[i])
        count += 1
    if count == 0 or start < int(offsets[0]) or not math.isfinite(total):
        raise Unscorable("its echoed offsets do not cover the candidate")
    return Score(total, count)
