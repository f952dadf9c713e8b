"""`logo ask`: one question, or a JSONL batch on stdin, answered by its type."""


import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from .app import app
from .options import (
    BiasedDiversityOpt,
    BiasedHistoryOpt,
    ColdStartOpt,
    EmbedderOpt,
    HomeOpt,
    LocalOpt,
    ModelOpt,
    WaitOpt,
    locked,
    mediator_options,
    parse_at,
    settings_for,
)
from .output import emit, stderr
from .output import explain as explain_answer
from .state import CliState

if TYPE_CHECKING:
    from ..answers import AnswerType


@app.command(
    "ask",
    epilog=(
        'Example: logo ask --user maya "What should I cook tonight?"\n\n'
        'Example: logo ask --user maya --json "Any film for tonight?" | jq .answer\n\n'
        'Example: echo \'{"user": "maya", "query": "A book for the train?"}\' | logo ask -'
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
    biased_max_diversity: BiasedDiversityOpt = 0.7,
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
    from ..answers import ANSWER_TYPES, AnswerType

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
    when = parse_at(at)
    knobs = {  # the answer's options, as a server request names them
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
    }
    stream = not as_json and not batch and sys.stdout.isatty()
    if run.server:
        answers = _ask_server(run.server, batch, user, question, at, forced, count, knobs, stream)
    else:
        answers = _ask_here(run, batch, user, question, when, forced, count, knobs, stream, wait, home, embedder, model)
    answered = 0
    for result, streamed in answers:
        answered += 1
        if batch or as_json:
            emit(result)
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
    user: str | None,
    question: str | None,
    when: float | None,
    forced: "AnswerType",
    count: int | None,
    knobs: dict[str, Any],
    stream: bool,
    wait: float | None,
    home: Path | None,
    embedder: str | None,
    model: str | None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """(answer JSON, whether its text was streamed already) for each question, answered in this process."""
    from ..ask import Asker, GenerationOptions, Question
    from ..questions import Defaults, read_questions

    settings = settings_for(run, home, embedder, model)
    options = mediator_options(
        knobs["local"],
        knobs["cold_start_max"],
        knobs["biased_min_history"],
        knobs["biased_max_diversity"],
        memory=knobs["memory"],
        local_k=knobs["local_k"],
        global_k=knobs["global_k"],
    )
    generation = GenerationOptions(knobs["max_tokens"], knobs["temperature"], knobs["seed"])
    with locked(run, settings, wait):  # held while answering: another process may not write meanwhile
        asker = Asker(settings, options, generation)
        if batch:
            defaults = Defaults(user=user, at=when, answer_type=forced, count=count)
            for _line, q in read_questions("-", defaults):
                item = Question(q.user, q.query, q.id, q.at, q.candidates, q.answer_type, q.count)
                yield asker.answer(item).to_json(include_prompt=knobs["show_prompt"]), False
            return
        assert user is not None and question is not None
        item = Question(user=user, query=question, at=when, answer_type=forced, count=count)
        streamed: list[str] = []

        def through(text: str) -> None:
            streamed.append(text)
            _write(text)

        result = asker.answer(item, on_token=through if stream else None)
        yield result.to_json(include_prompt=knobs["show_prompt"]), bool(streamed)


def _ask_server(
    url: str,
    batch: bool,
    user: str | None,
    question: str | None,
    at: str | None,
    forced: "AnswerType",
    count: int | None,
    knobs: dict[str, Any],
    stream: bool,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """The same, answered by a running `logo serve`."""
    from ..records import read_jsonl_objects
    from ..server.client import ServerClient

    client = ServerClient(url)
    shared = {**knobs, "answer_type": forced.value, **({"count": count} if count is not None else {})}
    if batch:
        lines = [obj for _line, obj in read_jsonl_objects("-")]
        if not lines:
            return
        defaults = {**shared, **({"user": user} if user else {}), **({"at": at} if at is not None else {})}
        for answer in client.ask_batch(lines, defaults):
            yield answer, False
        return
    body = {**shared, "user": user, "query": question, **({"at": at} if at is not None else {})}
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
