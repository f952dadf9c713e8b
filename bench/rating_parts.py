"""The rating estimate's parts, question by question (component figures): to see where two builds differ.

Chooses questions as `bench/evidence_only.py` does (the first run's choice is kept in --questions, so every
later build, exact or private, is scored on the same questions and buckets), runs logo's mediator only, and
prints one JSON line per rating question: the gold, the estimate, and for the item it names its released mean,
ratings, noise (variance of the mean), the population term and the cluster prior it shrinks toward, the
user's offset and neighbours term. Pair two runs by `id`:

    LOGO_HOME=exact-home python bench/rating_parts.py ml/eval-half0.jsonl --questions q.pkl > exact.jsonl
    LOGO_HOME=private-home python bench/rating_parts.py ml/eval-half0.jsonl --questions q.pkl > private.jsonl

The chosen questions hold the eval's own text and gold only (a pickle: keep it beside the data it came from).
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

from logo_cli.answers import AnswerType
from logo_cli.ask import Asker, GenerationOptions, Question
from logo_cli.config import force_offline, resolve
from logo_cli.evaluate import choose_questions, load_eval
from logo_cli.mediator import MediatorOptions
from logo_cli.modes import Memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_file")
    parser.add_argument("--questions", type=Path, required=True, help="the chosen questions: written once, then read")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-bucket", type=int, default=150)
    parser.add_argument("--scan", type=int, default=4000)
    args = parser.parse_args()
    force_offline()
    asker = Asker(resolve(), replace(MediatorOptions(), memory=Memory.LOGO), GenerationOptions(max_tokens=8))
    if args.questions.exists():
        chosen = pickle.loads(args.questions.read_bytes())
    else:
        items = load_eval(args.eval_file)
        chosen, _, _ = choose_questions(asker, items, per_bucket=args.per_bucket, seed=args.seed, scan=args.scan)
        args.questions.write_bytes(pickle.dumps(chosen))
    for c in (c for c in chosen if c.item.kind == "number"):
        question = Question(c.item.user, c.item.query, c.item.id, c.item.at, answer_type=AnswerType.RATING)
        ctx = asker.prepare(question, c.vector, prompt=False).context
        evidence = ctx.evidence or {}
        named = c.item.meta.get("item")
        item = next((i for i in ctx.items if i.item == named), None)
        parts: dict[str, Any] = {}
        user = ctx.user_evidence
        if item is not None and user is not None and user.memory is not None and user.snapshot is not None:
            memory, snap = user.memory, user.snapshot
            assert memory.items is not None
            parts["prior"] = float(user.cluster_prior(memory.assign(memory.items.vectors[[item.row]]))[0])
            parts["variance"] = None if snap.mean_noise is None else float(snap.mean_noise[item.row])
        line = {
            "id": c.item.id,
            "user": c.item.user,
            "bucket": c.bucket,
            "gold": float(c.item.gold),
            "item": named,
            "estimate": evidence.get("rating_estimate"),
            "named": item.to_json() if item is not None else None,
            **parts,
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
