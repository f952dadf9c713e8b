"""`logo eval`: the answers `logo ask` gives, scored against gold by bucket and memory mode."""


from functools import partial
from pathlib import Path
from typing import Annotated

import orjson
import typer

from .. import rules
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
    ask_options,
    locked,
    output_file,
    plot_file,
    settings_for,
)
from .output import (
    emit,
    is_terminal,
    print_eval,
    progress,
    stderr,
)
from .state import CliState


@app.command(
    "eval",
    epilog=(
        "Example: logo eval movielens/eval.jsonl --per-bucket 40 --plot eval.png\n\n"
        "Example: logo eval movielens/recommend.jsonl --per-bucket 50 --methods local,global,logo\n\n"
        "Example: logo eval prefeval/eval.jsonl --methods none,local,logo --json"
    ),
)
def eval_cli(
    ctx: typer.Context,
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
            help="Plain references answered beside logo, where they apply: popularity and item-knn (recommend and "
            "choice), item-mean and chance (choice), user-item-bias (ratings); or none.",
        ),
    ] = "popularity,item-knn,item-mean,chance,user-item-bias",
    local_mode: LocalOpt = rules.LOCAL.default,
    cold_start_max: ColdStartOpt = rules.COLD_START_MAX.default,
    biased_min_history: BiasedHistoryOpt = rules.BIASED_MIN_HISTORY.default,
    biased_max_diversity: BiasedDiversityOpt = rules.BIASED_MAX_DIVERSITY.default,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Measure the answers `logo ask` gives against gold, for each memory mode, by user bucket (cold-start,
    biased off/on profile, regular).

    Every question is answered exactly as `logo ask` answers it, with the type its gold implies: a number
    -> a rating answer, scored by MAE and RMSE of the number it prints, beside a user+item bias predictor;
    candidates -> a choice, scored by accuracy, beside choosers by item mean, popularity and item-kNN, and
    chance; a list of item names -> a recommendation, scored by hit rate, recall and NDCG at k (and, for
    genre questions, the share of listed items of the genre), beside popularity and item-kNN
    recommenders. The references read the same store as of the same time (--references); free text ->
    ROUGE-L.
    Questions are bucketed by what logo's mediator sees at their time. Component figures are labelled as
    such: "evidence only" is the mediator's estimate without the model, and --json's mae_by_head every
    rating head on the same scores.
    """
    run = CliState.of(ctx)
    from ..baselines import REFERENCES
    from ..evaluate import load_eval, plot_report, run_eval
    from ..modes import MEMORY_MODES

    refs = [r.strip() for r in references.split(",") if r.strip() and r.strip() != "none"]
    if any(r not in REFERENCES for r in refs):
        raise UsageError(f"--references takes a comma-separated subset of {', '.join(REFERENCES)}, or none.")

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    if not chosen or any(m not in MEMORY_MODES for m in chosen):
        raise UsageError(f"--methods takes a comma-separated subset of {', '.join(MEMORY_MODES)}.")
    base = ask_options(
        local=local_mode,
        cold_start_max=cold_start_max,
        biased_min_history=biased_min_history,
        biased_max_diversity=biased_max_diversity,
    ).mediator()
    target = plot_file(plot) if plot is not None else None  # before the evaluation, which can take hours
    if predictions is not None:
        output_file(predictions, "--predictions")
    items = load_eval(file)
    if not items:
        raise UsageError(f"{file}: no questions.")
    console = stderr(run)
    settings = settings_for(run, home, embedder, model)
    with locked(run, settings, wait):
        evaluate = partial(
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
        with progress(run, "evaluating") as update:
            report = evaluate(progress=update)
    if predictions is not None:
        predictions.write_bytes(b"".join(orjson.dumps(p.to_json()) + b"\n" for p in report.predictions))
    if target is not None:
        plot_report(report, str(target))
        console.print(f"wrote {target}")
    from dataclasses import asdict

    summary = {k: v for k, v in asdict(report).items() if k != "predictions"}
    if as_json or not is_terminal():
        emit(summary)
        return
    print_eval(report)
