"""Options several commands share (Annotated, with help and env vars), and turning them into library input:
settings, the store lock, the mediator's options, a time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import rules
from ..errors import UsageError
from .state import CliState

if TYPE_CHECKING:
    from ..config import Settings
    from ..request import AskOptions

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
# The answer's options: defaults, ranges and help from rules.py, the same ones the typed request (and so
# `logo ask -` lines and `logo serve`) applies.
MemoryOpt = Annotated[str, typer.Option("--memory", help=rules.MEMORY.help)]
LocalOpt = Annotated[str, typer.Option("--local", help=rules.LOCAL.help)]
LocalKOpt = Annotated[
    int, typer.Option("--local-k", min=rules.LOCAL_K.ge, max=rules.LOCAL_K.le, help=rules.LOCAL_K.help)
]
GlobalKOpt = Annotated[
    int, typer.Option("--global-k", min=rules.GLOBAL_K.ge, max=rules.GLOBAL_K.le, help=rules.GLOBAL_K.help)
]
_COLD, _BIASED = rules.COLD_START_MAX, rules.BIASED_MIN_HISTORY
ColdStartOpt = Annotated[int, typer.Option("--cold-start-max", min=_COLD.ge, max=_COLD.le, help=_COLD.help)]
BiasedHistoryOpt = Annotated[
    int, typer.Option("--biased-min-history", min=_BIASED.ge, max=_BIASED.le, help=_BIASED.help)
]
BiasedDiversityOpt = Annotated[
    float,
    typer.Option(
        "--biased-max-diversity",
        min=rules.BIASED_MAX_DIVERSITY.ge,
        max=rules.BIASED_MAX_DIVERSITY.le,
        help=rules.BIASED_MAX_DIVERSITY.help,
    ),
]
MaxTokensOpt = Annotated[
    int, typer.Option("--max-tokens", min=rules.MAX_TOKENS.ge, max=rules.MAX_TOKENS.le, help=rules.MAX_TOKENS.help)
]
TemperatureOpt = Annotated[
    float,
    typer.Option(
        "--temperature", min=rules.TEMPERATURE.ge, max=rules.TEMPERATURE.le, help=rules.TEMPERATURE.help
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=rules.SEED.ge, max=rules.SEED.le, help=rules.SEED.help)]
CountOpt = Annotated[
    int | None,
    typer.Option(
        "--count", "-n", min=rules.COUNT.ge, max=rules.COUNT.le, help=rules.COUNT.help, show_default="as asked, else 5"
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


def ask_options(**values: Any) -> AskOptions:
    """The typed options of `ask` and `eval` from their flags (named as a request names them: `local`,
    `local_k`, ...), checked by the same rules a question line and a server request are. Raises UsageError
    naming the flag."""
    from pydantic import ValidationError

    from ..request import AskOptions

    try:
        return AskOptions.model_validate(values)
    except ValidationError as exc:
        raise flag_error(exc) from None


def flag_error(exc: Any) -> UsageError:
    """A ValidationError of values that came from flags, as the flag's error: `--local-k must be ...`."""
    from ..request import invalid

    field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
    flag = "--" + field.replace("_", "-")
    message = invalid(exc)
    return UsageError((message.replace(f"`{field}`", flag, 1) if field else message) + ".")


def parse_at(value: str | None) -> float | None:
    if value is None:
        return None
    from ..records import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}", "Give an ISO 8601 time (2025-06-01T00:00:00Z) or epoch seconds.") from None


def output_file(path: Path, flag: str) -> Path:
    """A file a command writes at its end, checked before any work so a long run's results are not lost to a
    typo: its folder exists and can be written, and it is not a folder itself."""
    import os

    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"{flag} {path}: there is no folder {folder}.", "Create it first, or name a file in an existing folder."
        )
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder.", "Name a file in it.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write into {folder}.", "Name a file in a folder you can write to.")
    return path


def plot_file(path: Path) -> Path:
    """The file `--plot PATH` writes, checked as `output_file` and for a format matplotlib writes. Without a
    suffix it is PATH.png, as matplotlib makes it (so the command can say which file it wrote)."""
    from matplotlib.backend_bases import FigureCanvasBase

    if path.is_dir() or path.name in ("", ".", ".."):  # `--plot .`, `--plot out.d/`: a folder, not a file
        raise UsageError(f"--plot {path} is a folder.", "Name a file in it, such as map.png.")
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix[1:].lower()
    if not suffix:
        path = path.with_name(path.name.rstrip(".") + ".png")
    elif suffix not in formats:
        raise UsageError(
            f"--plot {path}: matplotlib cannot write .{suffix} files.",
            f"Name a .png file (or one of {', '.join(f'.{f}' for f in sorted(formats))}).",
        )
    return output_file(path, "--plot")
