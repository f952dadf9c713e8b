"""Choose answers/recommend.py's constants on a selection sample (component figures, not the product's).

Recommend answers need no model, so this runs the mediator once per (question, memory mode) and then the
ranker under each variant of answers/recommend.py's module constants, scoring hit rate / recall / NDCG at k by
bucket, beside the plain references (popularity, item-kNN). The reported figures come from `logo eval`
on another seed, run once after the choice.

    LOGO_HOME=ml-home python bench/recommend_select.py ml/recommend.jsonl --per-bucket 50 --seed 1 \
        --variants '[{}, {"TOPIC_SPREAD": 0.3}]'
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

import logo_cli.answers.recommend as ranker
from logo_cli.answers import DEFAULT_COUNT, requested_count
from logo_cli.ask import Asker, GenerationOptions
from logo_cli.baselines import Interactions, item_knn, popularity
from logo_cli.config import resolve
from logo_cli.evaluate import BUCKETS, _genre_precision, _question, choose_questions, load_eval, ranking_metrics
from logo_cli.mediator import MediatorOptions
from logo_cli.modes import Memory

METHODS = ("none", "local", "global", "logo")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--per-bucket", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scan", type=int, default=0)
    parser.add_argument("--variants", default="[{}]", help="JSON list of {CONSTANT: value} overrides")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--biased-max-diversity", type=float, default=MediatorOptions.biased_max_diversity)
    parser.add_argument("--half", type=int, choices=(0, 1), help="only users whose crc32 %% 2 is this")
    args = parser.parse_args()

    settings = resolve()
    methods = args.methods.split(",")
    base = MediatorOptions(biased_max_diversity=args.biased_max_diversity)
    askers = {m: Asker(settings, replace(base, memory=Memory(m)), GenerationOptions()) for m in methods}
    judge = askers.get("logo") or Asker(settings, base, GenerationOptions())
    items = load_eval(args.file)
    if args.half is not None:
        items = [i for i in items if zlib.crc32(i.user.encode()) % 2 == args.half]
    started = time.time()
    chosen, counts, scanned = choose_questions(judge, items, per_bucket=args.per_bucket, seed=args.seed, scan=args.scan)
    print(f"{len(chosen)} questions ({dict(counts)}), scanned {scanned}, {time.time() - started:.0f} s")

    prepared: dict[tuple[int, str], Any] = {}
    catalogs: dict[int, Any] = {}
    for i, c in enumerate(chosen):
        for m in methods:
            p = askers[m].prepare(_question(c.item), c.vector, prompt=False)
            prepared[(i, m)] = p
        memory = judge.catalog
        catalogs[i] = memory.as_of(c.item.at) if memory is not None and c.item.at is not None else memory

    results: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    data = Interactions.from_store(judge.store)  # type: ignore[arg-type]
    min_users = judge.memory.min_users if judge.memory else 1

    def scored(named: list[str], c: Any, k: int) -> dict[str, float]:
        metrics = ranking_metrics(named, list(c.item.gold), k)
        precision = _genre_precision(data, c.item, named)
        return metrics | ({"genre_precision": precision} if precision is not None else {})

    for c in chosen:
        k = c.item.count or requested_count(c.item.query) or DEFAULT_COUNT
        for name, rank in (("popularity", popularity), ("item-knn", item_knn)):
            named = rank(data, c.item.user, c.item.at, k, min_users, c.item.meta.get("genre"))
            for group in (c.bucket, c.item.id.rsplit("-", 1)[-1]):
                results[name][group].append(scored(named, c, k))

    defaults = {k: getattr(ranker, k) for k in dir(ranker) if k.isupper()}
    for variant in json.loads(args.variants):
        for key, value in {**defaults, **variant}.items():
            setattr(ranker, key, value)
        label = " ".join(f"{k.split('_')[0].lower()[:5]}={v}" for k, v in variant.items()) or "defaults"
        for i, c in enumerate(chosen):
            k = c.item.count or requested_count(c.item.query) or DEFAULT_COUNT
            for m in methods:
                p = prepared[(i, m)]
                request = judge.recommend_request(c.item.query, p)
                recs = ranker.recommend(p.evidence.catalog or catalogs[i], request, k)
                for group in (c.bucket, c.item.id.rsplit("-", 1)[-1]):  # user bucket; any / genre question
                    results[f"{label} {m}"][group].append(scored([r.item for r in recs], c, k))
    for key, value in defaults.items():
        setattr(ranker, key, value)

    groups = (*BUCKETS, "any", "genre")
    print(f"{'method':50} " + " ".join(f"{b[:11]:>11}" for b in (*groups, "all")) + "  precision  (HR@k)")
    for name, by_bucket in results.items():
        cells = []
        for bucket in (*groups, "all"):
            rows = [r for b, rs in by_bucket.items() for r in rs if bucket == b or (bucket == "all" and b in BUCKETS)]
            if rows:
                cells.append(f"{np.mean([r['hit'] for r in rows]):.3f} ({len(rows)})")
            else:
                cells.append("-")
        genre = [r["genre_precision"] for r in by_bucket.get("genre", []) if "genre_precision" in r]
        cells.append(f"{np.mean(genre):.3f}" if genre else "-")
        print(f"{name[:50]:50} " + " ".join(f"{x:>11}" for x in cells))


if __name__ == "__main__":
    main()
