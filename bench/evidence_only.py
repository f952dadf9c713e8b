"""The memories' rating estimates alone, without the model: a cheap way to compare mediator choices.

Samples questions as `logo eval` does (seeded shuffle, buckets as logo's mediator sees them, at most
--per-bucket each among the first --scan questions), then runs only the mediator of each memory mode and
scores its `rating_estimate` against the gold rating. No text is generated: the defaults (seed 1, 345
questions found among 4,000) took 9 minutes here, most of it the bucket scan, against about an hour for an
LLM run of the same questions. `--no-items` hides global memory's per-item ratings, to measure
what they add.

Usage: LOGO_HOME=ml-home python bench/evidence_only.py ml/eval.jsonl [--seed 1] [--per-bucket 150]
       [--scan 4000] [--biased-max-diversity 0.55] [--no-items]
Prints one JSON line per memory mode: {bucket: [questions, MAE]}.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from dataclasses import replace

import numpy as np

from logo_cli.ask import Asker, GenerationOptions, Question
from logo_cli.config import force_offline, resolve
from logo_cli.evaluate import bucket_of, load_eval
from logo_cli.mediator import MediatorOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-bucket", type=int, default=150)
    parser.add_argument("--scan", type=int, default=4000)
    parser.add_argument("--biased-max-diversity", type=float, default=0.55)
    parser.add_argument("--no-items", action="store_true", help="hide global memory's per-item ratings")
    args = parser.parse_args()
    force_offline()

    settings = resolve()
    base = MediatorOptions(biased_max_diversity=args.biased_max_diversity)
    generation = GenerationOptions(max_tokens=8)
    askers = {m: Asker(settings, replace(base, memory=m), generation) for m in ("local", "global", "logo")}
    if args.no_items:
        for asker in askers.values():
            if asker.memory is not None:
                asker.memory.items = None

    order = [item for item in load_eval(args.eval_file) if item.kind == "number"]
    random.Random(args.seed).shuffle(order)
    chosen: list[tuple[Question, float, str]] = []
    counts: Counter[str] = Counter()
    for item in order[: args.scan]:
        question = Question(item.user, item.query, item.id, item.at)
        ctx, _, _ = askers["logo"].prepare(question)
        bucket = bucket_of(ctx.cold_start, ctx.biased, ctx.off_profile)
        if counts[bucket] < args.per_bucket:
            chosen.append((question, float(item.gold), bucket))
            counts[bucket] += 1

    for method, asker in askers.items():
        errors: dict[str, list[float]] = defaultdict(list)
        for question, gold, bucket in chosen:
            ctx, _, _ = asker.prepare(question)
            estimate = (ctx.evidence or {}).get("rating_estimate")
            if estimate is not None:
                errors[bucket].append(abs(float(estimate) - gold))
                errors["all"].append(abs(float(estimate) - gold))
        summary = {b: [len(v), round(float(np.mean(v)), 3)] for b, v in sorted(errors.items())}
        print(json.dumps({"method": method, "items": not args.no_items, "seed": args.seed, **summary}), flush=True)


if __name__ == "__main__":
    main()
