"""`logo ask`: one question, or a JSONL batch on stdin, answered by its type."""


import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import rules
from ..errors import UsageError
from .app import app
from .options import (
    BiasedDiversityOpt,
    BiasedHistoryOpt,
    ColdStartOpt,
    CountOpt,
    EmbedderOpt,
    GlobalKOpt,
    HomeOpt,
    LocalKOpt,
    LocalOpt,
    MaxTokensOpt,
    MemoryOpt,
    ModelOpt,
    SeedOpt,
    TemperatureOpt,
    WaitOpt,
    flag_error,
    locked,
    parse_at,
    settings_for,
)
from .output import emit, stderr
from .output import explain as explain_answer
from .state import CliState

if TYPE_CHECKING:
    from ..request import BatchDefaults


@app.command(
    "ask",
    epilog=(
        'Example: logo ask --user maya "What should I cook tonight?"\n\n'
        'Example: logo ask --user maya --json "Any film for tonight?" | jq .answer\n\n'
        'Example: echo \'{"user": "ines", "query": "How would I rate Shakshuka?"}\' | logo ask -'
    ),
)
def ask_cli(
    ctx: typer.Context,
    question: Annotated[
        str | None,
        typer.Argument(
            help="The question; - (or piped stdin) reads JSONL {user, query, id?, at?, candidates?, answer_type?, "
            "count?}.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Whose memory to use. Unknown users are cold-start users.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: answer, memory used, weights, flags, tokens, timings."),
    ] = False,
    memory: MemoryOpt = rules.MEMORY.default,
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
    count: CountOpt = None,
    max_tokens: MaxTokensOpt = rules.MAX_TOKENS.default,
    temperature: TemperatureOpt = rules.TEMPERATURE.default,
    seed: SeedOpt = rules.SEED.default,
    local_k: LocalKOpt = rules.LOCAL_K.default,
    global_k: GlobalKOpt = rules.GLOBAL_K.default,
    local_mode: LocalOpt = rules.LOCAL.default,
    cold_start_max: ColdStartOpt = rules.COLD_START_MAX.default,
    biased_min_history: BiasedHistoryOpt = rules.BIASED_MIN_HISTORY.default,
    biased_max_diversity: BiasedDiversityOpt = rules.BIASED_MAX_DIVERSITY.default,
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
    run = CliState.of(ctx)
    from ..answers import ANSWER_TYPES

    if answer_type not in ANSWER_TYPES:
        raise UsageError(f"--answer-type must be one of {', '.join(ANSWER_TYPES)}, not {answer_type!r}.")
    batch = question == "-" or (question is None and not sys.stdin.isatty())
    if not batch and question is None:
        raise UsageError(
            "Give a question, or - to read JSONL questions from stdin.", 'Example: logo ask --user maya "..."'
        )
    if not batch and not user:
        raise UsageError("--user is required for a single question.", 'Example: logo ask --user maya "..."')
    when = parse_at(at)
    knobs = {  # the answer's options, named as a request (and a question line) names them
        "memory": memory,
        "local": local_mode,
        "local_k": local_k,
        "global_k": global_k,
        "cold_start_max": cold_start_max,
        "biased_min_history": biased_min_history,
        "biased_max_diversity": biased_max_diversity,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
        "show_prompt": show_prompt,
        "answer_type": answer_type,
        **({"count": count} if count is not None else {}),
    }
    stream = not as_json and not batch and sys.stdout.isatty()
    if run.server:  # the server reads the request by the same rules
        answers = _ask_server(run.server, batch, user, question, at, knobs, stream)
    else:
        from pydantic import ValidationError

        from ..request import BatchDefaults

        try:  # the flags are every line's defaults, read by the rules a line is read by
            defaults = BatchDefaults.model_validate({**knobs, **({"user": user} if user else {}), "at": when})
        except ValidationError as exc:
            raise flag_error(exc) from None
        answers = _ask_here(run, batch, question, defaults, stream, wait, home, embedder, model)
    answered = 0
    for result, streamed in answers:
        answered += 1
        if batch or as_json:
            emit(result)
            if explain:  # asked for: on stderr, so stdout stays JSON lines
                explain_answer(run, result, always=True)
            continue
        sys.stdout.write("\n" if streamed else result["answer"] + "\n")  # typed answers come whole: no stream
        if result.get("note"):
            stderr(run).print(f"[yellow]Note:[/] {result['note']}")
        if explain or run.verbose:
            explain_answer(run, result, always=explain)
    if batch and not answered and question is None:
        raise UsageError(
            "No question given and nothing on stdin.", 'Example: logo ask --user maya "..." or logo ask - < q.jsonl'
        )


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _ask_here(
    run: CliState,
    batch: bool,
    question: str | None,
    defaults: "BatchDefaults",
    stream: bool,
    wait: float | None,
    home: Path | None,
    embedder: str | None,
    model: str | None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """(answer JSON, whether its text was streamed already) for each question, answered in this process."""
    from ..ask import Question
    from ..questions import read_questions
    from ..request import Askers, read_line

    settings = settings_for(run, home, embedder, model)
    try:
        line = None if batch else read_line({"query": question}, defaults)
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None
    with locked(run, settings, wait):  # held while answering: another process may not write meanwhile
        askers = Askers(settings)
        if batch:
            askers.get(defaults)  # the flags' options are checked (global memory built, ...) before any line
            for _line, q in read_questions("-", defaults):  # a line's own options win over the flags
                assert q.options is not None
                item = Question(q.user, q.query, q.id, q.at, q.candidates, q.answer_type, q.count)
                yield askers.get(q.options).answer(item).to_json(include_prompt=q.show_prompt), False
            return
        assert line is not None
        streamed: list[str] = []

        def through(text: str) -> None:
            streamed.append(text)
            _write(text)

        result = askers.get(line).answer(line.question(), on_token=through if stream else None)
        yield result.to_json(include_prompt=line.show_prompt), bool(streamed)


def _ask_server(
    url: str,
    batch: bool,
    user: str | None,
    question: str | None,
    at: str | None,
    knobs: dict[str, Any],
    stream: bool,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """The same, answered by a running `logo serve`: the flags go as they are, the server checks them."""
    from ..records import read_jsonl_objects
    from ..server.client import ServerClient

    client = ServerClient(url)
    if batch:
        lines = [obj for _line, obj in read_jsonl_objects("-")]
        if not lines:
            return
        defaults = {**knobs, **({"user": user} if user else {}), **({"at": at} if at is not None else {})}
        for answer in client.ask_batch(lines, defaults):
            yield answer, False
        return
    body = {**knobs, "user": user, "query": question, **({"at": at} if at is not None else {})}
    if not stream:
        yield client.ask(body), False
        return
    streamed = False
    for piece in client.ask_stream(body):
        if "token" in piece:
            _write(piece["token"])
            streamed = True
        elif "answer" in piece:
            yield piece["answer"], streamed
