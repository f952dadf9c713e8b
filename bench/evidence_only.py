"""The memories' rating estimates alone, without the model: a cheap way to compare mediator choices.

Samples questions as `logo eval` does (`choose_questions`: seeded shuffle, buckets as logo's mediator sees
them, at most --per-bucket each among the first --scan questions), then runs only the mediator of each memory mode and
scores its `rating_estimate` against the gold rating. No text is generated: the defaults (seed 1, 345
questions found among 4,000) took 9 minutes here with one embedding per question, under 3 with the
batched embeddings of `choose_questions`; the LLM
runs took about 4.7 s per question for 4 methods (2,680 s for 568). `--no-items` hides global memory's
per-item ratings, to measure what they add.

Usage: LOGO_HOME=ml-home python bench/evidence_only.py ml/eval.jsonl [--seed 1] [--per-bucket 150]
       [--scan 4000] [--biased-max-diversity 0.7] [--no-items]
Prints one JSON line per memory mode, and one for the user+item bias reference on the same questions:
{bucket: [questions, MAE]}.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace

import numpy as np

from logo_cli.answers import AnswerType
from logo_cli.ask import Asker, GenerationOptions, Question
from logo_cli.config import force_offline, resolve
from logo_cli.evaluate import choose_questions, load_eval
from logo_cli.mediator import MediatorOptions
from logo_cli.modes import Memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-bucket", type=int, default=150)
    parser.add_argument("--scan", type=int, default=4000)
    parser.add_argument("--biased-max-diversity", type=float, default=MediatorOptions.biased_max_diversity)
    parser.add_argument("--no-items", action="store_true", help="hide global memory's per-item ratings")
    args = parser.parse_args()
    force_offline()

    settings = resolve()
    base = MediatorOptions(biased_max_diversity=args.biased_max_diversity)
    generation = GenerationOptions(max_tokens=8)
    askers = {m: Asker(settings, replace(base, memory=Memory(m)), generation) for m in ("local", "global", "logo")}
    if args.no_items:
        for asker in askers.values():
            if asker.memory is not None:
                asker.memory.items = None

    items = load_eval(args.eval_file)
    chosen, _, _ = choose_questions(askers["logo"], items, per_bucket=args.per_bucket, seed=args.seed, scan=args.scan)

    for method, asker in askers.items():
        errors: dict[str, list[float]] = defaultdict(list)
        for c in (c for c in chosen if c.item.kind == "number"):
            question = Question(c.item.user, c.item.query, c.item.id, c.item.at, answer_type=AnswerType.RATING)
            ctx = asker.prepare(question, c.vector, prompt=False).context
            estimate = (ctx.evidence or {}).get("rating_estimate")
            if estimate is not None:
                error = abs(float(estimate) - float(c.item.gold))
                errors[c.bucket].append(error)
                errors["all"].append(error)
        summary = {b: [len(v), round(float(np.mean(v)), 3)] for b, v in sorted(errors.items())}
        print(json.dumps({"method": method, "items": not args.no_items, "seed": args.seed, **summary}), flush=True)

    from logo_cli.baselines import Interactions, bias_rating

    data = Interactions.from_store(askers["logo"].store)  # type: ignore[arg-type]
    errors = defaultdict(list)
    for c in (c for c in chosen if c.item.kind == "number"):
        value = bias_rating(data, c.item.user, c.item.meta.get("item"), c.item.at)
        if value is not None:
            errors[c.bucket].append(abs(value - float(c.item.gold)))
            errors["all"].append(abs(value - float(c.item.gold)))
    summary = {b: [len(v), round(float(np.mean(v)), 3)] for b, v in sorted(errors.items())}
    print(json.dumps({"method": "user-item-bias", "seed": args.seed, **summary}), flush=True)


if __name__ == "__main__":
    main()
