"""What privacy costs answers: two `logo eval --predictions` files of the same questions, one from a global
memory built with `--epsilon inf` (exact) and one with the default budget, compared question by question.

    python bench/privacy_cost.py EXACT.jsonl PRIVATE.jsonl [--method logo] [--table]
    LOGO_HOME=H python bench/privacy_cost.py EXACT.jsonl PRIVATE.jsonl --by-item-ratings EVAL.jsonl

Rating questions: MAE of the printed number; recommend questions: HR@10 of the printed list; choices:
accuracy. Per bucket (the exact run's), on the questions both runs answered: both figures, the difference
(private - exact) and its 95% paired bootstrap interval (2,000 draws, seeded). `--by-item-ratings` groups
the questions instead by how many ratings the question's item had before the question, in the store of
LOGO_HOME (the evaluation's store: the exact figure that privacy noise hides).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

BUCKETS = ("cold_start", "biased_off_profile", "biased_on_profile", "regular")


def scores(path: Path, method: str) -> tuple[dict[str, float], dict[str, str], str]:
    """Question id -> score (absolute error, hit or correct), question id -> bucket, and the metric's name."""
    out, buckets, metric = {}, {}, ""
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("method") != method:
            continue
        if row.get("answer_type") == "recommend":
            value, metric = float(row["hit"]), "hr@10"
        elif row.get("answer_type") == "choice":
            value, metric = float(row["correct"]), "accuracy"
        elif row.get("error") is not None:
            value, metric = abs(float(row["error"])), "mae"
        else:
            continue
        out[row["id"]] = value
        buckets[row["id"]] = row["bucket"]
    return out, buckets, metric


BANDS = ((0, "0"), (1, "1-9"), (10, "10-29"), (30, "30-99"), (100, "100+"))


def item_rating_bands(eval_file: Path) -> dict[str, str]:
    """Question id -> band of the ratings its item had in the store strictly before the question."""
    from logo_cli.baselines import Interactions
    from logo_cli.config import force_offline, resolve
    from logo_cli.evaluate import load_eval
    from logo_cli.local_memory.store import open_store

    force_offline()
    data = Interactions.from_store(open_store(resolve()))
    rated = ~np.isnan(data.ratings)
    codes = {name: i for i, name in enumerate(data.item_names)}
    out = {}
    for question in load_eval(eval_file):
        code = codes.get(question.meta.get("item", ""), -1)
        when = np.inf if question.at is None else question.at
        n = int((rated & (data.items == code) & (data.ts < when)).sum())
        out[question.id] = next(label for low, label in reversed(BANDS) if n >= low)
    return out


def interval(diff: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exact", type=Path)
    parser.add_argument("private", type=Path)
    parser.add_argument("--method", default="logo")
    parser.add_argument("--table", action="store_true", help="a Markdown table instead of JSON lines")
    parser.add_argument("--by-item-ratings", type=Path, metavar="EVAL", help="group by the item's ratings")
    args = parser.parse_args()
    exact, buckets, metric = scores(args.exact, args.method)
    order = list(BUCKETS)
    if args.by_item_ratings:
        buckets, order = item_rating_bands(args.by_item_ratings), [label for _, label in BANDS]
    private, _, _ = scores(args.private, args.method)
    common = sorted(set(exact) & set(private))
    groups: dict[str, list[str]] = defaultdict(list)
    for qid in common:
        groups[buckets[qid]].append(qid)
    groups["all"] = common
    rows = []
    for bucket in [*order, "all"]:
        ids = groups.get(bucket)
        if not ids:
            continue
        a = np.array([exact[q] for q in ids])
        b = np.array([private[q] for q in ids])
        lo, hi = interval(b - a)
        rows.append(
            {
                "bucket": bucket,
                "metric": metric,
                "n": len(ids),
                "exact": round(float(a.mean()), 3),
                "private": round(float(b.mean()), 3),
                "difference": round(float((b - a).mean()), 3),
                "ci95": [round(lo, 3), round(hi, 3)],
            }
        )
    if args.table:
        print(f"| bucket | n | {metric}, exact | {metric}, private | difference (95% CI) |")
        print("| --- | --- | --- | --- | --- |")
        for r in rows:
            lo, hi = r["ci95"]
            change = f"{r['difference']:+.3f} ({lo:+.3f}..{hi:+.3f})"
            print(f"| {r['bucket']} | {r['n']} | {r['exact']} | {r['private']} | {change} |")
    else:
        for r in rows:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
