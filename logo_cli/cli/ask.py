"""`logo ask`: one question, or a JSONL batch on stdin, answered by its type."""

from __future__ import annotations

import sys
from typing import Annotated

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
from .output import (
    emit,
    stderr,
)
from .output import explain as explain_answer
from .state import CliState


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
    run = CliState.of(ctx)
    from ..answers import ANSWER_TYPES, AnswerType
    from ..ask import Asker, GenerationOptions, Question
    from ..modes import MEMORY_MODES, Memory
    from ..questions import Defaults, read_questions

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

    when = parse_at(at)
    settings = settings_for(run, home, embedder, model)
    options = mediator_options(
        local_mode,
        cold_start_max,
        biased_min_history,
        biased_max_diversity,
        memory=Memory(memory),
        local_k=local_k,
        global_k=global_k,
    )
    with locked(run, settings, wait):  # held while answering: another process may not write meanwhile
        asker = Asker(settings, options, GenerationOptions(max_tokens=max_tokens, temperature=temperature, seed=seed))

        if batch:
            defaults = Defaults(user=user, at=when, answer_type=forced, count=count)
            answered = 0
            for _line, q in read_questions("-", defaults):
                item = Question(q.user, q.query, q.id, q.at, q.candidates, q.answer_type, q.count)
                emit(asker.answer(item).to_json(include_prompt=show_prompt))
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
            emit(result.to_json(include_prompt=show_prompt))
        elif streamed:
            sys.stdout.write("\n")
        else:  # typed answers are whole at once: nothing to stream
            sys.stdout.write(result.answer + "\n")
        if result.note:
            stderr(run).print(f"[yellow]Note:[/] {result.note}")
        if explain or run.verbose:
            explain_answer(run, result, always=explain)
