"""The generator contract and what every backend shares, written once: messages, usage and scores, the
`Generator` protocol, chat templates, fitting a prompt into the context, and the sampling constants.

Imports no backend (and nothing heavy: jinja2 is imported when a template is first compiled).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import UsageError

Message = dict[str, str]
FAKE_MODEL = "fake"
REPEAT_PENALTY = 1.3  # small models loop on a phrase without it (seen with SmolLM2-135M at 1.0)
STOP = ("<|im_end|>", "<|endoftext|>")  # ChatML's end of turn and end of text, for every backend
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONTEXT_HINT = "Shorten the question, or raise LOGO_CTX if the model supports a longer context."


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Score:
    """How likely the model finds a continuation as the start of its answer."""

    logprob: float  # sum over the continuation's tokens
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(self.tokens, 1)


class Generator(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def render(self, messages: Sequence[Message]) -> str: ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]: ...

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]: ...


# ------------------------------------------------------------------------------------------ chat templates


def compile_template(source: str) -> Any:
    """A GGUF's chat template (Jinja), in a sandbox: the template comes from the model file."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(source)


class ChatTemplate:
    """Renders chat messages into the prompt text the model continues, ending with the assistant's turn."""

    def __init__(self, source: str = CHATML) -> None:
        self.source = source
        self._compiled = compile_template(source)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ChatTemplate:
        """The template a GGUF carries (`tokenizer.chat_template`), ChatML when it carries none."""
        return cls(metadata.get("tokenizer.chat_template") or CHATML)

    def render(self, messages: Sequence[Message]) -> str:
        return str(
            self._compiled.render(messages=list(messages), add_generation_prompt=True, bos_token="", eos_token="")
        )


# ------------------------------------------------------------------------------------------------ context


def fit_context(prompt_tokens: int, n_ctx: int, max_tokens: int = 1, *, reserve: int = 0) -> int:
    """The answer length to ask for: `max_tokens`, cut to what the context has left after the prompt (at
    least 1). A prompt that leaves no room (with `reserve` more tokens kept free) is a UsageError."""
    if prompt_tokens + reserve >= n_ctx:
        raise UsageError(
            f"The prompt ({prompt_tokens} tokens) does not fit the model's context ({n_ctx} tokens).", CONTEXT_HINT
        )
    return max(min(max_tokens, n_ctx - prompt_tokens), 1)
