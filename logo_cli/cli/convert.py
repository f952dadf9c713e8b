"""`logo convert movielens|prefeval`: public data sets -> records and eval sets."""


from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .output import (
    emit,
)

convert_app = typer.Typer(help="Convert public datasets into logo records and evaluation sets.", no_args_is_help=True)
app.add_typer(convert_app, name="convert")


@convert_app.command(
    "movielens",
    epilog="Example: logo convert movielens path/to/ml-latest-small --out movielens\n\n"
    "Then: logo ingest movielens/records.jsonl && logo build-global",
)
def convert_movielens_cli(
    folder: Annotated[Path, typer.Argument(help="Folder with ratings.csv and movies.csv (and tags.csv).")],
    out: Annotated[
        Path, typer.Option("--out", help="Where records.jsonl, eval.jsonl and recommend.jsonl go.")
    ] = Path("movielens"),
    holdout: Annotated[float, typer.Option("--holdout", help="Each user's latest share of ratings held out.")] = 0.2,
    cold_share: Annotated[float, typer.Option("--cold-share", help="Share of users cut to 1-3 records.")] = 0.1,
    max_users: Annotated[int | None, typer.Option("--max-users", min=1, help="Only the first N users.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the cold-start sample.")] = 0,
) -> None:
    """MovieLens ratings -> records (one per rating) and an eval set (each user's latest ratings as questions)."""
    from ..convert import movielens, summary_json

    emit(summary_json(movielens(folder, out, holdout=holdout, cold_share=cold_share, seed=seed, max_users=max_users)))


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
    from ..convert import prefeval, summary_json

    emit(summary_json(prefeval(folder, out, seed=seed, max_per_topic=max_per_topic)))
