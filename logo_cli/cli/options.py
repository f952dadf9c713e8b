"""Options several commands share (Annotated, with help and env vars), and turning them into library input:
settings, the store lock, the mediator's options, a time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from .state import CliState

if TYPE_CHECKING:
    from ..config import Settings
    from ..mediator import MediatorOptions

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="LOGO_HOME",
        help="Data folder (store + global memory).",
        show_default="platform user data dir",
    ),
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        envvar="LOGO_EMBEDDER",
        help="sentence-transformers folder (default: packaged all-MiniLM-L6-v2).",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar="LOGO_MODEL",
        help="GGUF model file (default: packaged SmolLM2-135M-Instruct Q4_1).",
    ),
]
WaitOpt = Annotated[
    float | None,
    typer.Option(
        "--wait",
        envvar="LOGO_WAIT",
        min=0.0,
        help="If another logo process is using the store, wait at most this many seconds (exit 7 after).",
        show_default="as long as it takes",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON even on a terminal.")]
LocalOpt = Annotated[
    str,
    typer.Option(
        "--local",
        help="How local memory enters the prompt: rag (retrieved records), profile (a rule-built profile), or both.",
    ),
]
ColdStartOpt = Annotated[
    int, typer.Option("--cold-start-max", min=0, help="Users with at most this many records are cold-start.")
]
BiasedHistoryOpt = Annotated[
    int, typer.Option("--biased-min-history", min=1, help="Biased users have at least this many records...")
]
BiasedDiversityOpt = Annotated[
    float,
    typer.Option(
        "--biased-max-diversity",
        min=0.0,
        max=1.0,
        help="...and at most this diversity (entropy over clusters against a random history of the same length).",
    ),
]
AtOpt = Annotated[str | None, typer.Option("--at", help="As of this time (ISO 8601 or epoch s).")]


def settings_for(run: CliState, home: Path | None, embedder: str | None = None, model: str | None = None) -> Settings:
    from ..config import resolve

    return resolve(home, embedder=embedder, model=model, chroma_url=run.chroma_url, llm_url=run.llm_url)


def locked(run: CliState, settings: Settings, wait: float | None) -> Any:
    """The store lock, saying on stderr when it has to wait for another process."""
    from ..local_memory.locking import store_lock
    from .output import stderr

    return store_lock(settings.home, wait, on_wait=lambda msg: stderr(run).print(f"[yellow]{msg}[/]"))


def mediator_options(
    local_mode: str, cold_start_max: int, biased_min_history: int, biased_max_diversity: float, **more: Any
) -> MediatorOptions:
    """The mediator's options from the shared flags, checked once for `ask` and `eval`."""
    from ..mediator import checked_options

    return checked_options(
        local_mode=local_mode,
        cold_start_max=cold_start_max,
        biased_min_history=biased_min_history,
        biased_max_diversity=biased_max_diversity,
        **more,
    )


def parse_at(value: str | None) -> float | None:
    if value is None:
        return None
    from ..records import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}", "Give an ISO 8601 time (2025-06-01T00:00:00Z) or epoch seconds.") from None
