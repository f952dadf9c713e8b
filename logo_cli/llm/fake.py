"""The test generator (`LOGO_MODEL=fake`): deterministic and instant, registered like a real backend."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..cancel import checkpoint
from .base import FAKE_MODEL, Message, Score, Usage


class FakeGenerator:
    """Answers by quoting the question: deterministic and instant, for tests that do not test the model."""

    id = FAKE_MODEL
    n_ctx = 2048

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def render(self, messages: Sequence[Message]) -> str:
        return "\n".join(f"<{m['role']}>\n{m['content']}" for m in messages) + "\n<assistant>\n"

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        usage.prompt_tokens = self.count_tokens(self.render(messages))
        words = ("Fake answer to: " + messages[-1]["content"].splitlines()[-1]).split()[:max_tokens]
        for word in words:
            checkpoint()
            usage.completion_tokens += 1
            yield word + " "

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Deterministic stand-in: a continuation scores by how many of its words the prompt mentions."""
        prompt = self.render(messages).lower()
        usage.prompt_tokens = self.count_tokens(prompt)
        out = []
        for text in continuations:
            words = text.lower().split() or [""]
            out.append(Score(float(sum(w in prompt for w in words)) - len(words), len(words)))
        return out
