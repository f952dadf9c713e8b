"""What the root options say for the whole run, kept on Typer's context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class CliState:
    verbosity: int = 1  # 0 --quiet, 1 normal, 2 --verbose
    chroma_url: str | None = None
    llm_url: str | None = None
    server: str | None = None  # a `logo serve` to send ask, ingest, users and profile to

    @classmethod
    def of(cls, ctx: Any) -> CliState:
        """The run's state, kept on the root context by the root callback (defaults if it never ran)."""
        found = ctx.find_root().obj if ctx is not None else None
        return found if isinstance(found, CliState) else cls()

    @property
    def verbose(self) -> bool:
        return self.verbosity == 2

    @property
    def quiet(self) -> bool:
        return self.verbosity == 0
