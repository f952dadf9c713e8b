"""Generation on an OpenAI-compatible server (`--llm-url` / LOGO_LLM_URL) instead of the GGUF in process.

Works with llama.cpp's `llama-server`, llama-cpp-python's server, vLLM and Ollama: answers stream from
`POST /v1/chat/completions`; candidates are scored with `POST /v1/completions` (`echo` + `logprobs`).
The mediator still counts tokens here, before anything is sent (`tokenizers.py` says how).

Split by concern: `http.py` (requests, errors naming the URL), `tokenizers.py` (token counts and the chat
template), `scoring.py` (echo scoring, pure functions over the parsed answer), `generator.py`
(RemoteGenerator: the served model's identity and streaming, composing the others).
"""

from __future__ import annotations

from .generator import RemoteGenerator
from .http import API_KEY_ENV, ServerAPI, normalize_url
from .scoring import SCORE_HINT, Unscorable, continuation_score, echo_request

__all__ = [
    "API_KEY_ENV",
    "SCORE_HINT",
    "RemoteGenerator",
    "ServerAPI",
    "Unscorable",
    "continuation_score",
    "echo_request",
    "normalize_url",
]
