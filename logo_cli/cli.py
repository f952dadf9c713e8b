"""The command line: parse, call one library function, render. The one place errors become exit codes.

stdout carries data only (JSON lines, or the answer text); everything for people goes to stderr.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from typer.core import TyperGroup

from . import __version__
from .errors import ExitCode, LogoError, UsageError, exit_codes_line

EPILOG_LINK = f"Docs: README.md and docs/. {exit_codes_line()}"


VERBOSITY = {"level": 1}  # 0 --quiet, 1 normal, 2 --verbose; set once per run by the root callback
SERVICES: dict[str, str | None] = {"chroma_url": None, "llm_url": None}  # root --chroma-url / --llm-url


def _stderr(*, always: bool = False) -> Any:
    """The console for people. --quiet silences it, except for errors (`always`)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, quiet=VERBOSITY["level"] == 0 and not always)


class LogoGroup(TyperGroup):
    """Maps LogoError to its exit code and Ctrl-C to 130, with a short message and no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LogoError as exc:
            from rich.markup import escape

            console = _stderr(always=True)
            console.print(f"[bold red]Error:[/] {escape(exc.message)}", soft_wrap=True)
            if exc.hint:
                console.print(escape(exc.hint), soft_wrap=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            _stderr(always=True).print("Interrupted.")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    cls=LogoGroup,
    name="logo",
    help=(
        "Personalized answers from a local LLM, from each user's own history (local memory) and what everyone "
        "shares (global memory).\n\n"
        "Typical run:\n\n"
        "  logo ingest histories.jsonl        # user histories -> local memory\n\n"
        "  logo build-global                  # cluster everyone -> global memory\n\n"
        '  logo ask --user maya "What should I cook tonight?"'
    ),
    epilog=EPILOG_LINK,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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
        "--biased-max-diversity", min=0.0, max=1.0, help="...and at most this diversity (normalized entropy)."
    ),
]


def _locked(settings: Any, wait: float | None) -> Any:
    """The store lock, saying on stderr when it has to wait for another process."""
    from .locking import store_lock

    return store_lock(settings.home, wait, on_wait=lambda msg: _stderr().print(f"[yellow]{msg}[/]"))


def _mediator_options(
    local_mode: str, cold_start_max: int, biased_min_history: int, biased_max_diversity: float, **more: Any
) -> Any:
    """The mediator's options from the shared flags, checked once for `ask` and `eval`."""
    from .mediator import LOCAL_MODES, MediatorOptions

    if local_mode not in LOCAL_MODES:
        raise UsageError(f"--local must be one of {', '.join(LOCAL_MODES)}, not {local_mode!r}.")
    return MediatorOptions(
        local_mode=local_mode,  # type: ignore[arg-type]
        cold_start_max=cold_start_max,
        biased_min_history=biased_min_history,
        biased_max_diversity=biased_max_diversity,
        **more,
    )


def _settings(home: Path | None, embedder: str | None = None, model: str | None = None) -> Any:
    from .config import resolve

    return resolve(home, embedder=embedder, model=model, **SERVICES)


def _emit(obj: Any) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More on stderr: timings, the memory each answer used.")
    ] = False,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            envvar="LOGO_CHROMA_URL",
            help="Keep local memory in a Chroma server (http://HOST:PORT) instead of the folder under --home.",
            show_default="on disk",
        ),
    ] = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url",
            envvar="LOGO_LLM_URL",
            help="Send generation to an OpenAI-compatible server (http://HOST:PORT/v1) instead of the in-process GGUF.",
            show_default="in process",
        ),
    ] = None,
) -> None:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose contradict each other.")
    VERBOSITY["level"] = 0 if quiet else 2 if verbose else 1
    SERVICES.update(chroma_url=chroma_url, llm_url=llm_url)


# --------------------------------------------------------------------------------------------------- ingest


@app.command(
    "ingest",
    epilog="Example: logo ingest sample_histories/histories.jsonl\n\nExample: cat export.jsonl | logo ingest -",
)
def ingest_cli(
    files: Annotated[list[str], typer.Argument(help="JSONL files of records; - reads stdin.", show_default=False)],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Report bad lines on stderr and go on.")] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Records embedded and written at once.")
    ] = 2048,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Add user histories to local memory (records -> embeddings -> on-disk Chroma store).

    Each line is a JSON object: user (or user_id), text (or query + response), and optional timestamp,
    id, item, rating, label, meta. Re-ingesting the same records adds nothing. A bad line stops the run
    with FILE:LINE: reason and exit code 3; the records before it are kept. Prints one JSON summary line:
    read, added, duplicates, invalid, users.
    """
    from .embed import load_embedder
    from .ingest import IngestStopped, count_lines, ingest
    from .store import store_for

    settings = _settings(home, embedder)
    model = load_embedder(settings.embedder_spec())
    store = store_for(settings)
    console = _stderr()
    progress = None
    task = None
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        progress.start()
        task = progress.add_task("ingest", total=count_lines(files))

    def on_batch(summary: Any) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=summary.read + summary.invalid)

    def on_invalid(line: Any) -> None:
        from rich.markup import escape

        console.print(f"[yellow]skipped[/] {escape(str(line))}", soft_wrap=True)

    try:
        with _locked(settings, wait):
            summary = ingest(
                files,
                store,
                model,
                skip_invalid=skip_invalid,
                batch_size=batch_size,
                on_batch=on_batch,
                on_invalid=on_invalid,
            )
    except IngestStopped as exc:
        if progress is not None:
            progress.stop()
        _emit({**exc.summary.to_json(), "error": exc.message})
        raise
    finally:
        if progress is not None:
            progress.stop()
    _emit(summary.to_json())


# --------------------------------------------------------------------------------------------- build-global


@app.command(
    "build-global",
    epilog=(
        "Example: logo build-global\n\nExample: logo build-global --clusters 12 --seed 1\n\n"
        "Example: logo ingest new.jsonl && logo build-global --update"
    ),
)
def build_global_cli(
    clusters: Annotated[
        int | None, typer.Option("--clusters", min=1, help="Force k interest clusters (default: chosen by silhouette).")
    ] = None,
    communities: Annotated[
        int | None,
        typer.Option("--communities", min=1, help="Force the number of user communities (default: automatic)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same clusters.")] = 0,
    min_users: Annotated[
        int,
        typer.Option("--min-users", min=1, help="Clusters, items and ratings from fewer distinct users stay private."),
    ] = 3,
    segments: Annotated[int, typer.Option("--segments", min=0, help="Time periods for each cluster's trend.")] = 4,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Keep the clusters, assign new records to them and refresh every statistic (fast)."
        ),
    ] = False,
    describe: Annotated[
        bool, typer.Option("--describe", help="Ask the model for a one-line description of each cluster (cached).")
    ] = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Cluster everyone's records into global memory: interest clusters, user profiles, communities.

    Each cluster gets keywords (class-based TF-IDF), its most shared items, rating mean, size, users and a
    trend over time; each user a cluster distribution and diversity (normalized entropy); users with
    similar distributions form communities. Written as a new version and switched atomically: `ask`
    keeps using the previous one until the build is complete. Prints one JSON line.
    """
    from .embed import load_embedder
    from .global_build import BuildOptions, build_global
    from .store import store_for

    settings = _settings(home, embedder, model)
    if update and (clusters is not None or communities is not None):
        raise UsageError("--update keeps the existing clusters: drop --clusters / --communities, or drop --update.")
    embed_model = load_embedder(settings.embedder_spec())
    console = _stderr()
    options = BuildOptions(
        clusters=clusters, communities=communities, seed=seed, min_users=min_users, segments=segments, update=update
    )
    describer = None
    if describe:
        from .describe import Describer

        describer = Describer(settings)
    store = store_for(settings)
    with _locked(settings, wait):
        if console.is_terminal:
            with console.status("building global memory") as status:
                memory = build_global(
                    store,
                    embed_model.id,
                    embed_model.dim,
                    settings.global_dir,
                    options,
                    progress=lambda msg: status.update(msg),
                    describe=describer,
                )
        else:
            memory = build_global(
                store, embed_model.id, embed_model.dim, settings.global_dir, options, describe=describer
            )
    if memory.drift.get("rebuild_advised"):
        console.print(
            "[yellow]Advice:[/] the data has drifted from the clusters "
            f"(similarity drop {memory.drift['similarity_drop']}, "
            f"new records {memory.drift['new_records_share']:.0%}): "
            "run `logo build-global` without --update to re-cluster."
        )
    _emit(memory.summary())


# ----------------------------------------------------------------------------------------------------- ask


def _parse_at(value: str | None) -> float | None:
    if value is None:
        return None
    from .records import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}", "Give an ISO 8601 time (2025-06-01T00:00:00Z) or epoch seconds.") from None


@app.command(
    "ask",
    epilog=(
        'Example: logo ask --user maya "What should I cook tonight?"\n\n'
        'Example: logo ask --user maya --json "Any film for tonight?" | jq .answer\n\n'
        'Example: echo \'{"user": "maya", "query": "A book for the train?"}\' | logo ask -'
    ),
)
def ask_cli(
    question: Annotated[
        str | None,
        typer.Argument(help="The question; - (or piped stdin) reads JSONL {user, query, id, at}.", show_default=False),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Whose memory to use. Unknown users are cold-start users.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: answer, memory used, weights, flags, tokens, timings."),
    ] = False,
    memory: Annotated[
        str, typer.Option("--memory", help="Memory sources: logo (both), local, global or none.")
    ] = "logo",
    at: Annotated[
        str | None,
        typer.Option("--at", help="Answer as of this time (ISO 8601 or epoch s): later records are ignored."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", "-e", help="Show on stderr which memory was used and why.")
    ] = False,
    show_prompt: Annotated[
        bool, typer.Option("--show-prompt", help="Include the prompt messages in the JSON.")
    ] = False,
    answer_type: Annotated[
        str,
        typer.Option(
            "--answer-type",
            "-t",
            help="auto (by the question), rating (a number on the scale, with where it comes from), choice (the "
            "best of the options the question lists), recommend (items from memory only) or open (generated text).",
        ),
    ] = "auto",
    count: Annotated[
        int | None,
        typer.Option("--count", "-n", min=1, max=50, help="Items to recommend.", show_default="as asked, else 5"),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest open answer, in tokens.")] = 160,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 gives reproducible answers.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    local_k: Annotated[int, typer.Option("--local-k", min=0, help="Most of the user's records in the prompt.")] = 4,
    global_k: Annotated[int, typer.Option("--global-k", min=0, help="Most population clusters in the prompt.")] = 3,
    local_mode: LocalOpt = "rag",
    cold_start_max: ColdStartOpt = 3,
    biased_min_history: BiasedHistoryOpt = 20,
    biased_max_diversity: BiasedDiversityOpt = 0.35,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Answer a question for one user, from their history and the population's global memory.

    The mediator weighs local against global memory: cold-start users and off-profile questions from
    biased users lean on global memory. Each question gets an answer type (--answer-type auto): a rating
    is a number read off the model and memory's estimate, then where it comes from; a recommendation names
    only items from memory, never ones the user already has; a choice picks among listed options; anything
    else is short generated text, streamed on a terminal. --json prints one object with the answer, its
    type and value, and everything that went into it.
    """
    from .answers import ANSWER_TYPES, AnswerType
    from .ask import Asker, GenerationOptions, Question
    from .modes import MEMORY_MODES, Memory

    if memory not in MEMORY_MODES:
        raise UsageError(f"--memory must be one of {', '.join(MEMORY_MODES)}, not {memory!r}.")
    if answer_type not in ANSWER_TYPES:
        raise UsageError(f"--answer-type must be one of {', '.join(ANSWER_TYPES)}, not {answer_type!r}.")
    forced = AnswerType(answer_type)
    batch = question == "-" or (question is None and not sys.stdin.isatty())
    if not batch and question is None:
        raise UsageError(
            "Give a question, or - to read JSONL questions from stdin.", 'Example: logo ask --user maya "..."'
        )
    if not batch and not user:
        raise UsageError("--user is required for a single question.", 'Example: logo ask --user maya "..."')

    when = _parse_at(at)
    settings = _settings(home, embedder, model)
    options = _mediator_options(
        local_mode,
        cold_start_max,
        biased_min_history,
        biased_max_diversity,
        memory=Memory(memory),
        local_k=local_k,
        global_k=global_k,
    )
    with _locked(settings, wait):  # held while answering: another process may not write meanwhile
        asker = Asker(settings, options, GenerationOptions(max_tokens=max_tokens, temperature=temperature, seed=seed))

        if batch:
            answered = 0
            for item in _batch_questions(user, when, forced, count):
                _emit(asker.answer(item).to_json(include_prompt=show_prompt))
                answered += 1
            if not answered and question is None:
                raise UsageError(
                    "No question given and nothing on stdin.",
                    'Example: logo ask --user maya "..." or logo ask - < q.jsonl',
                )
            return

        assert user is not None and question is not None
        item = Question(user=user, query=question, at=when, answer_type=forced, count=count)
        stream = not as_json and sys.stdout.isatty()
        streamed: list[str] = []

        def write_through(text: str) -> None:
            streamed.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()

        result = asker.answer(item, on_token=write_through if stream else None)
        if as_json:
            _emit(result.to_json(include_prompt=show_prompt))
        elif streamed:
            sys.stdout.write("\n")
        else:  # typed answers are whole at once: nothing to stream
            sys.stdout.write(result.answer + "\n")
        if result.note:
            _stderr().print(f"[yellow]Note:[/] {result.note}")
        if explain or VERBOSITY["level"] == 2:
            _explain(result, always=explain)


def _batch_questions(default_user: str | None, default_at: float | None, default_type: Any, count: int | None) -> Any:
    """Questions from JSONL on stdin: {user, query, id?, at?, candidates|options?, answer_type?, count?}."""
    from .answers import ANSWER_TYPES, AnswerType
    from .ask import Question
    from .errors import BadRecord
    from .records import parse_time, parse_user, read_jsonl_objects

    for line, obj in read_jsonl_objects("-"):
        if not isinstance(obj, dict):
            raise BadRecord("<stdin>", line, "expected a JSON object")
        try:
            user = parse_user(obj) if ("user" in obj or "user_id" in obj or default_user is None) else default_user
        except ValueError as exc:
            raise BadRecord("<stdin>", line, f"{exc} (or pass --user for lines without one)") from None
        query = obj.get("query", obj.get("question"))
        if not isinstance(query, str) or not query.strip():
            raise BadRecord("<stdin>", line, "missing or empty `query`")
        when = default_at
        if obj.get("at") is not None:
            try:
                when = parse_time(obj["at"])
            except ValueError as exc:
                raise BadRecord("<stdin>", line, f"field `at`: {exc}") from None
        options = obj.get("candidates", obj.get("options"))
        if options is not None and (
            not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options)
        ):
            raise BadRecord("<stdin>", line, "`candidates` must be a list of at least two strings")
        kind = obj.get("answer_type", default_type.value)
        if kind not in ANSWER_TYPES:
            raise BadRecord("<stdin>", line, f"`answer_type` must be one of {', '.join(ANSWER_TYPES)}")
        wanted = obj.get("count", count)
        if wanted is not None and (isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= 50):
            raise BadRecord("<stdin>", line, "`count` must be an integer from 1 to 50")
        yield Question(
            user=user,
            query=query,
            id=str(obj["id"]) if obj.get("id") is not None else None,
            at=when,
            candidates=options,
            answer_type=AnswerType(kind),
            count=wanted,
        )


def _explain(result: Any, *, always: bool = False) -> None:
    """Which memory went into the answer, for people (stderr)."""
    from rich.markup import escape

    ctx = result.context
    flags = [name for name in ("cold_start", "biased", "off_profile") if getattr(ctx, name)]
    if ctx.conflicts:
        flags.append(f"{len(ctx.conflicts)} conflict(s)")
    lines = [
        f"memory {ctx.memory}: local {ctx.weights['local']:.2f} / global {ctx.weights['global']:.2f}"
        f" · history {ctx.history_size} records · {' '.join(flags) or 'regular'}"
    ]
    for hit in ctx.local:
        title = f"[{hit.record.item}] " if hit.record.item else ""
        lines.append(f"  local  {hit.score:.2f}  {title}{hit.record.text.replace(chr(10), ' ')[:90]}")
    for use in ctx.global_:
        c = use.cluster
        lines.append(
            f"  global {use.score:.2f}  cluster {c.id} ({c.users} users, via {use.source}): {', '.join(c.keywords[:5])}"
        )
    for item in ctx.items:
        lines.append(
            f"  item   {item.similarity:.2f}  {item.item}: {item.ratings} ratings, avg {item.rating_mean:.2f}"
            f" (weight {item.weight:.2f})"
        )
    if ctx.community is not None:
        lines.append(f"  community {ctx.community.id} ({ctx.community.size} users, via {ctx.community_source})")
    for conflict in ctx.conflicts:
        mine = conflict.get("user_rating", conflict.get("user_label"))
        theirs = conflict.get("population_rating", conflict.get("population_label"))
        lines.append(f"  conflict on {conflict['topic']}: user {mine}, others {theirs}")
    if ctx.evidence:
        shown = ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in ctx.evidence.items() if v is not None and k != "items"
        )
        lines.append(f"  evidence: {shown}")
    lines.append(f"  answer type: {result.answer_type.value}" + (f" ({result.note})" if result.note else ""))
    if result.rating is not None:
        r = result.rating
        spread = ", ".join(f"{v}: {p:.2f}" for v, p in r.distribution.items() if p >= 0.05)
        lines.append(
            f"  rating: {r.value:g} on {r.scale.low:g}-{r.scale.high:g} by step {r.scale.step:g}, head {r.head}"
            f" (expected {r.expected:.2f}, memory's estimate {r.estimate}) · {spread}"
        )
    if result.choice is not None:
        for option in result.choice.scores:
            lines.append(f"  option {option['score']:.2f}  {option['option']}")
    for rec in result.recommendations or []:
        terms = " ".join(f"{k} {v:.2f}" for k, v in rec.terms.items())
        lines.append(f"  item   {rec.score:.2f}  {rec.item} via {'+'.join(rec.sources) or 'rank'} ({terms})")
    t = result.timings_ms
    phases = ", ".join(f"{k} {v:.0f} ms" for k, v in t.items() if k != "total")
    lines.append(
        f"  tokens: prompt {result.usage.prompt_tokens}, answer {result.usage.completion_tokens} · "
        f"{t['total'] / 1000:.1f} s ({phases})"
    )
    console = _stderr(always=always)  # asked for by name: shown even with --quiet
    for line in lines:
        console.print(f"[dim]{escape(line)}[/]", soft_wrap=True)


# ------------------------------------------------------------------------------------------ global/profile


def _is_terminal() -> bool:
    return sys.stdout.isatty()


@app.command(
    "global",
    epilog=(
        "Example: logo global\n\nExample: logo global --cluster 3\n\n"
        "Example: logo global --plot map.png\n\nExample: logo global --json | jq -r '.keywords | join(\" \")'"
    ),
)
def global_cli(
    cluster: Annotated[int | None, typer.Option("--cluster", "-c", help="Show one cluster in full.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the clusters as a 2-D map into this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines even on a terminal.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="Statistics as of this time (ISO 8601 or epoch s).")] = None,
    home: HomeOpt = None,
) -> None:
    """Show global memory: interest clusters with keywords, users, shared items, ratings and trend.

    A table on a terminal, one JSON object per cluster otherwise (or with --json).
    """
    from .views import cluster_rows, load_memory, plot_map

    memory = load_memory(_settings(home), _parse_at(at))
    rows = cluster_rows(memory, cluster)
    if plot is not None:
        plot_map(memory, plot)
        _stderr().print(f"wrote {plot}")
        if not as_json:
            return
    if as_json or not _is_terminal():
        for row in rows:
            _emit(row)
        return
    _print_clusters(rows, memory, detailed=cluster is not None)


def _print_clusters(rows: list[dict[str, Any]], memory: Any, *, detailed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from .views import sparkline

    console = Console(highlight=False)
    when = f" as of {format_when(memory.as_of_time)}" if memory.as_of_time is not None else ""
    if detailed:
        row = rows[0]
        console.print(f"[bold]cluster {row['id']}[/]{when}: {', '.join(row['keywords'])}")
        for key in ("size", "users", "rating_mean", "rating_count", "community", "private", "description"):
            console.print(f"  {key}: {row[key]}")
        console.print(f"  trend: {sparkline(row['trend'])} {row['trend_word']} {row['trend']}")
        console.print("  shared items: " + ", ".join(f"{i['item']} ({i['users']})" for i in row["top_items"]))
        if row["labels"]:
            console.print(f"  labels: {row['labels']}")
        for text in row["examples"]:
            console.print(f"  · {text}", soft_wrap=True)
        return
    table = Table(title=f"global memory {memory.version}{when}: {memory.records} records, {len(memory.users)} users")
    for name in ("id", "users", "size", "keywords", "shared items", "rating", "trend", "community"):
        table.add_column(name, justify="right" if name in ("id", "users", "size", "rating") else "left")
    for row in rows:
        table.add_row(
            str(row["id"]) + (" 🔒" if row["private"] else ""),
            str(row["users"]),
            str(row["size"]),
            ", ".join(row["keywords"][:5]),
            ", ".join(i["item"] for i in row["top_items"][:3]),
            f"{row['rating_mean']:.2f}" if row["rating_mean"] is not None else "",
            f"{sparkline(row['trend'])} {row['trend_word']}",
            "" if row["community"] is None else str(row["community"]),
        )
    console.print(table)


def format_when(ts: float) -> str:
    from .records import format_time

    return format_time(ts)


@app.command("profile", epilog="Example: logo profile --user hollis\n\nExample: logo profile --user maya --json")
def profile_cli(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose profile.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object even on a terminal.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="As of this time (ISO 8601 or epoch s).")] = None,
    cold_start_max: ColdStartOpt = 3,
    biased_min_history: BiasedHistoryOpt = 20,
    biased_max_diversity: BiasedDiversityOpt = 0.35,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Show a user's profile: history size, diversity, dominant clusters, community, cold-start/biased.

    Diversity is the normalized entropy of the user's distribution over clusters: 0 means all their records
    fall in one cluster, 1 means evenly spread.
    """
    from .mediator import MediatorOptions
    from .views import profile_view

    options = MediatorOptions(
        cold_start_max=cold_start_max, biased_min_history=biased_min_history, biased_max_diversity=biased_max_diversity
    )
    settings = _settings(home, embedder)
    with _locked(settings, wait):
        view = profile_view(settings, user, _parse_at(at), options)
    if as_json or not _is_terminal():
        _emit(view)
        return
    from rich.console import Console

    console = Console(highlight=False)
    kind = "cold-start" if view["cold_start"] else "biased" if view["biased"] else "regular"
    console.print(f"[bold]{user}[/]: {view['history']} records, diversity {view['diversity']:.2f} → {kind}")
    for d in view["dominant"]:
        console.print(f"  {d['share']:>5.0%}  cluster {d['cluster']}: {', '.join(d['keywords'])}")
    if view["community"]:
        c = view["community"]
        tops = "; ".join(", ".join(t["keywords"][:3]) for t in c["top_clusters"])
        console.print(f"  community {c['id']} ({c['size']} users): {tops}")


# ------------------------------------------------------------------------------------------ export/forget


@app.command("export", epilog="Example: logo export --user maya > maya.jsonl")
def export_cli(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records.", show_default=False)],
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Write all of a user's records as JSONL on stdout, oldest first: the input format of `logo ingest`."""
    from .privacy import export_user

    settings = _settings(home, embedder)
    with _locked(settings, wait):
        for record in export_user(settings, user):
            _emit(record.to_json())


@app.command("forget", epilog="Example: logo forget --user maya --dry-run\n\nExample: logo forget --user maya")
def forget_cli(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records to delete.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say how many records would go.")] = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Delete every record of a user, and refresh global memory so nothing counts them any more.

    Global memory is refreshed at once (`build-global --update`): no cluster size, item, rating, profile
    or community counts the user afterwards. Run a full `logo build-global` to re-cluster without them too.
    """
    from dataclasses import asdict

    from .privacy import forget_user

    settings = _settings(home, embedder)
    with _locked(settings, wait):
        report = forget_user(settings, user, dry_run=dry_run)
    _emit(asdict(report))


# ------------------------------------------------------------------------------------ inspecting the install


def _rows_out(rows: list[dict[str, Any]], as_json: bool, columns: list[str], title: str) -> None:
    """JSON lines when piped or with --json, a table on a terminal."""
    if as_json or not _is_terminal():
        for row in rows:
            _emit(row)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console(highlight=False).print(table)


def _object_out(obj: dict[str, Any], as_json: bool) -> None:
    if as_json or not _is_terminal():
        _emit(obj)
        return
    from rich.console import Console

    console = Console(highlight=False)

    def show(value: Any, indent: str) -> None:
        for key, item in value.items():
            if isinstance(item, dict):
                console.print(f"{indent}{key}:")
                show(item, indent + "  ")
            else:
                console.print(f"{indent}{key}: {'' if item is None else item}", soft_wrap=True)

    show(obj, "")


JsonOpt = Annotated[bool, typer.Option("--json", help="JSON even on a terminal.")]


@app.command("users", epilog="Example: logo users\n\nExample: logo users | jq -r 'select(.diversity < 0.35) | .user'")
def users_cli(
    as_json: JsonOpt = False, wait: WaitOpt = None, home: HomeOpt = None, embedder: EmbedderOpt = None
) -> None:
    """List the users in the store: records and time span; once global memory is built, also diversity,
    community and dominant clusters (JSON lines when piped)."""
    from .status import users

    settings = _settings(home, embedder)
    with _locked(settings, wait):
        rows = users(settings)
    columns = ["user", "records", "first", "last"]
    if rows and "diversity" in rows[0]:
        columns += ["diversity", "community", "dominant"]
    _rows_out(rows, as_json, columns, f"{len(rows)} users")


@app.command("stats", epilog="Example: logo stats\n\nExample: logo stats --json | jq .global.stale")
def stats_cli(
    as_json: JsonOpt = False, wait: WaitOpt = None, home: HomeOpt = None, embedder: EmbedderOpt = None
) -> None:
    """Records, users, clusters, store size, embedder and model, global memory age and whether it is stale."""
    from .status import stats

    settings = _settings(home, embedder)
    with _locked(settings, wait):
        _object_out(stats(settings), as_json)


@app.command("history", epilog="Example: logo history --user maya --limit 5")
def history_cli(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records.", show_default=False)],
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N records.")] = None,
    as_json: JsonOpt = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """A user's records, newest first."""
    from .status import history

    settings = _settings(home, embedder)
    with _locked(settings, wait):
        rows = history(settings, user, limit)
    _rows_out(rows, as_json, ["timestamp", "item", "rating", "text"], f"{user}: newest {len(rows)} records")


@app.command("paths", epilog="Example: logo paths --json | jq -r .store")
def paths_cli(as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Where logo keeps things: home, config file, store, global memory, models in use."""
    from .status import paths

    _object_out(paths(_settings(home)), as_json)


@app.command(
    "config", epilog="Example: logo config\n\nExample: echo 'threads = 2' >> $(logo paths --json | jq -r .config)"
)
def config_cli(
    as_json: JsonOpt = False, home: HomeOpt = None, embedder: EmbedderOpt = None, model: ModelOpt = None
) -> None:
    """Show the settings in effect and where each comes from: flag, LOGO_* variable, config.toml or default.

    `$LOGO_HOME/config.toml` may set `model`, `embedder`, `threads`, `ctx`, `chroma_url` and `llm_url`; flags
    and environment variables win over it.
    """
    from .status import config

    _object_out(config(_settings(home, embedder, model)), as_json)


@app.command("doctor", epilog="Example: logo doctor  # paste its output into bug reports")
def doctor_cli(
    as_json: JsonOpt = False, home: HomeOpt = None, embedder: EmbedderOpt = None, model: ModelOpt = None
) -> None:
    """Check the install: versions, the embedder and the GGUF load and run on this CPU, the store opens."""
    from .status import doctor

    settings = _settings(home, embedder, model)
    with _locked(settings, None):
        checks = doctor(settings)
    if as_json or not _is_terminal():
        _rows_out(checks, True, [], "")
    else:
        readable = [
            {
                **c,
                "ok": "ok" if c["ok"] else "FAILED",
                "detail": ", ".join(f"{k} {v}" for k, v in c["detail"].items())
                if isinstance(c["detail"], dict)
                else c["detail"],
            }
            for c in checks
        ]
        _rows_out(readable, False, ["check", "ok", "detail", "seconds"], "logo doctor")
    if not all(c["ok"] for c in checks):
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


# --------------------------------------------------------------------------------------------------- convert

convert_app = typer.Typer(help="Convert public datasets into logo records and evaluation sets.", no_args_is_help=True)
app.add_typer(convert_app, name="convert")


@convert_app.command(
    "movielens",
    epilog="Example: logo convert movielens path/to/ml-latest-small --out movielens\n\n"
    "Then: logo ingest movielens/records.jsonl && logo build-global",
)
def convert_movielens_cli(
    folder: Annotated[Path, typer.Argument(help="Folder with ratings.csv and movies.csv (and tags.csv).")],
    out: Annotated[Path, typer.Option("--out", help="Where records.jsonl and eval.jsonl go.")] = Path("movielens"),
    holdout: Annotated[float, typer.Option("--holdout", help="Each user's latest share of ratings held out.")] = 0.2,
    cold_share: Annotated[float, typer.Option("--cold-share", help="Share of users cut to 1-3 records.")] = 0.1,
    max_users: Annotated[int | None, typer.Option("--max-users", min=1, help="Only the first N users.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the cold-start sample.")] = 0,
) -> None:
    """MovieLens ratings -> records (one per rating) and an eval set (each user's latest ratings as questions)."""
    from .convert import movielens, summary_json

    _emit(summary_json(movielens(folder, out, holdout=holdout, cold_share=cold_share, seed=seed, max_users=max_users)))


@convert_app.command(
    "prefeval",
    epilog="Example: logo convert prefeval path/to/PrefEval/benchmark_dataset --out prefeval\n\n"
    "Then: logo ingest prefeval/records.jsonl && logo build-global && logo eval prefeval/eval.jsonl",
)
def convert_prefeval_cli(
    folder: Annotated[Path, typer.Argument(help="The PrefEval benchmark folder (with mcq_options/).")],
    out: Annotated[Path, typer.Option("--out", help="Where records.jsonl and eval.jsonl go.")] = Path("prefeval"),
    max_per_topic: Annotated[int | None, typer.Option("--max-per-topic", min=1, help="Only N items per topic.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for shuffling the options.")] = 0,
) -> None:
    """PrefEval MCQ -> one user per item (their stated preference) and 4-option questions, shuffled."""
    from .convert import prefeval, summary_json

    _emit(summary_json(prefeval(folder, out, seed=seed, max_per_topic=max_per_topic)))


# ------------------------------------------------------------------------------------------------------ eval


@app.command(
    "eval",
    epilog=(
        "Example: logo eval movielens/eval.jsonl --per-bucket 40 --plot eval.png\n\n"
        "Example: logo eval movielens/recommend.jsonl --per-bucket 50 --methods local,global,logo\n\n"
        "Example: logo eval prefeval/eval.jsonl --methods none,local,logo --json"
    ),
)
def eval_cli(
    file: Annotated[str, typer.Argument(help='JSONL of {"user", "query", "gold", "candidates"?, "at"?}; - is stdin.')],
    methods: Annotated[str, typer.Option("--methods", help="Memory modes to compare, comma-separated.")] = (
        "none,local,global,logo"
    ),
    per_bucket: Annotated[
        int | None, typer.Option("--per-bucket", min=1, help="At most N questions per user bucket (sampled by --seed).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling questions.")] = 0,
    scan: Annotated[
        int | None,
        typer.Option(
            "--scan",
            min=0,
            help="With --per-bucket: look at most at N questions to fill the buckets (default 40 x --per-bucket, "
            "at least 300); 0 looks at all, to find rare buckets such as biased off-profile.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object even on a terminal.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Bar chart of the results, as PNG.")] = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Write every prediction as JSONL here.")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", min=1, help="Recommend questions: score the top K items.", show_default="as asked"),
    ] = None,
    references: Annotated[
        str,
        typer.Option(
            "--references",
            help="Plain recommenders run beside logo on recommend questions: popularity, item-knn, or none.",
        ),
    ] = "popularity,item-knn",
    local_mode: LocalOpt = "rag",
    cold_start_max: ColdStartOpt = 3,
    biased_min_history: BiasedHistoryOpt = 20,
    biased_max_diversity: BiasedDiversityOpt = 0.35,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Measure the answers `logo ask` gives against gold, for each memory mode, by user bucket (cold-start,
    biased off/on profile, regular).

    Every question is answered exactly as `logo ask` answers it, with the type its gold implies: a number
    -> a rating answer, scored by MAE and RMSE of the number it prints; candidates -> a choice, scored by
    accuracy; a list of item names -> a recommendation, scored by hit rate, recall and NDCG at k, beside
    plain popularity and item-kNN recommenders on the same store (--references); free text -> ROUGE-L.
    Questions are bucketed by what logo's mediator sees at their time. Component figures are labelled as
    such: "evidence only" is the mediator's estimate without the model, and --json's mae_by_head every
    rating head on the same scores.
    """
    from .baselines import REFERENCES
    from .evaluate import load_eval, plot_report, run_eval
    from .modes import MEMORY_MODES

    refs = [r.strip() for r in references.split(",") if r.strip() and r.strip() != "none"]
    if any(r not in REFERENCES for r in refs):
        raise UsageError(f"--references takes a comma-separated subset of {', '.join(REFERENCES)}, or none.")

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    if not chosen or any(m not in MEMORY_MODES for m in chosen):
        raise UsageError(f"--methods takes a comma-separated subset of {', '.join(MEMORY_MODES)}.")
    base = _mediator_options(local_mode, cold_start_max, biased_min_history, biased_max_diversity)
    items = load_eval(file)
    if not items:
        raise UsageError(f"{file}: no questions.")
    console = _stderr()
    settings = _settings(home, embedder, model)
    with _locked(settings, wait):
        run = partial(
            run_eval,
            settings,
            items,
            chosen,
            base=base,
            per_bucket=per_bucket,
            seed=seed,
            scan=scan,
            references=refs,
            k=k,
        )
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn("evaluating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("eval", total=None)
                report = run(progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            report = run()
    if predictions is not None:
        predictions.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in report.predictions))
    if plot is not None:
        plot_report(report, str(plot))
        console.print(f"wrote {plot}")
    from dataclasses import asdict

    summary = {k: v for k, v in asdict(report).items() if k != "predictions"}
    if as_json or not _is_terminal():
        _emit(summary)
        return
    from rich.console import Console
    from rich.table import Table

    head = f", rating head {report.rating_head}" if any(r.metric == "mae" for r in report.rows) else ""
    table = Table(title=f"logo eval: {report.items} questions, {report.model}{head}, {report.seconds:.0f} s")
    for name in ("bucket", "method", "n", "metric", "value", "rmse / recall", "evidence only / ndcg", "prompt tokens"):
        table.add_column(name, justify="left" if name in ("bucket", "method", "metric") else "right")
    for row in sorted(report.rows, key=lambda r: (r.metric, r.bucket, r.method)):
        extra = list((row.extra or {}).values())
        second = row.rmse if row.rmse is not None else extra[0] if extra else None
        third = row.evidence_mae if row.evidence_mae is not None else extra[1] if len(extra) > 1 else None
        table.add_row(
            row.bucket,
            row.method,
            str(row.n),
            row.metric,
            f"{row.value:.3f}",
            "" if second is None else f"{second:.3f}",
            "" if third is None else f"{third:.3f}",
            f"{row.prompt_tokens:.0f}",
        )
    console = Console(highlight=False)
    console.print(table)
    if report.checks:
        console.print("checks: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.checks.items()))


def main() -> None:
    app()
