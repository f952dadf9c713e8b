"""Paired comparisons of memory modes from `logo eval --predictions FILE`, with bootstrap intervals.

Every method answered the same questions, so the difference between two methods is measured question by
question: for each bucket and metric, `logo` minus `local`, `global`, `none` and the plain recommenders,
with a 95% interval from resampling the questions (paired bootstrap, 2,000 draws, seeded). An interval
that excludes 0 is a difference that this sample can tell apart from noise.

Metrics: rating questions: `answer`, the absolute error of the number `logo ask` prints (the product), and
each rating head's expected value (`anchored`, `model`, `calibrated`: component figures); recommend
questions: `hit` (HR@k), `ndcg` and `recall`, higher is better; choice questions: `correct` (1 when the
printed option is the gold one; the mean is the accuracy).

`--questions FILE --split FIELD` breaks each bucket down by a field of the questions (for MovieLens
recommend questions, `variant`: `any` film, or films of the user's least-seen `genre`, which is the nearest
thing MovieLens has to an off-profile request; biased users' two buckets are merged then, as `biased`).

Usage: python bench/eval_compare.py PREDICTIONS.jsonl [--metric answer,hit] [--against local,global,none]
       [--questions QUESTIONS.jsonl --split variant]
Prints one JSON line per (bucket, metric, other method); with --table, a Markdown table instead.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

BUCKETS = ("cold_start", "biased_off_profile", "biased_on_profile", "regular", "all")


def load(path: Path, split: dict[str, str] | None = None) -> dict[tuple[str, str], dict[str, object]]:
    """(question id, method) -> {"bucket", "values": {metric: value}}; with `split` (question id -> value),
    the bucket is `bucket/value`."""
    out: dict[tuple[str, str], dict[str, object]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        values: dict[str, float] = {}
        if "heads" in row and row.get("error") is not None:
            gold = float(row["gold"])
            values["answer"] = abs(float(row["error"]))
            values |= {h: abs(float(v) - gold) for h, v in row["heads"].items()}
        elif "hit" in row:
            values = {m: float(row[m]) for m in ("hit", "ndcg", "recall")}
        elif row.get("answer_type") == "choice" and row.get("score") is not None:
            values = {"correct": float(row["score"])}
        if values:
            bucket = row["bucket"]
            if split is not None:
                bucket = f"{'biased' if bucket.startswith('biased') else bucket}/{split.get(row['id'], '-')}"
            out[(row["id"], row["method"])] = {"bucket": bucket, "values": values}
    return out


def compare(
    rows: dict[tuple[str, str], dict[str, object]], metric: str, other: str, draws: int = 2000, seed: int = 0
) -> list[dict[str, object]]:
    by_bucket: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (qid, method), row in rows.items():
        theirs = rows.get((qid, other))
        mine_values, their_values = row["values"], theirs["values"] if theirs else {}
        assert isinstance(mine_values, dict) and isinstance(their_values, dict)
        if method != "logo" or metric not in mine_values or metric not in their_values:
            continue
        pair = (mine_values[metric], their_values[metric])
        by_bucket[str(row["bucket"])].append(pair)
        by_bucket["all"].append(pair)
    rng = np.random.default_rng(seed)
    results = []
    for bucket in [b for b in BUCKETS if b in by_bucket] + sorted(set(by_bucket) - set(BUCKETS)):
        pairs = np.array(by_bucket.get(bucket, []))
        if not len(pairs):
            continue
        diff = pairs[:, 0] - pairs[:, 1]
        boots = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(axis=1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        mine, theirs = float(pairs[:, 0].mean()), float(pairs[:, 1].mean())
        results.append(
            {
                "bucket": bucket,
                "metric": metric,
                "logo": round(mine, 3),
                "other": other,
                "other_value": round(theirs, 3),
                "n": len(pairs),
                "difference": round(mine - theirs, 3),
                "relative": round((mine - theirs) / theirs, 3) if theirs else None,
                "ci95": [round(float(lo), 3), round(float(hi), 3)],
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument(
        "--metric", default="answer,anchored,model,calibrated,hit,ndcg,correct", help="metrics, comma-separated"
    )
    parser.add_argument(
        "--against", default="local,global,none,popularity,item-knn", help="methods to compare logo with"
    )
    parser.add_argument("--table", action="store_true", help="a Markdown table instead of JSON lines")
    parser.add_argument("--questions", type=Path, help="the questions file, for --split")
    parser.add_argument("--split", help="break buckets down by this field of the questions (needs --questions)")
    args = parser.parse_args()
    split = None
    if args.split:
        if args.questions is None:
            parser.error("--split needs --questions")
        split = {}
        for line in args.questions.read_text().splitlines():
            if line.strip():
                question = json.loads(line)
                split[str(question["id"])] = str(question.get(args.split, "-"))
    rows = load(args.predictions, split)
    results = [
        r
        for metric in args.metric.split(",")
        for other in args.against.split(",")
        for r in compare(rows, metric, other)
    ]
    if not args.table:
        for r in results:
            print(json.dumps(r))
        return
    print("| bucket | metric | logo vs | n | logo | other | difference (95% CI) | relative |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ci = r["ci95"]
        assert isinstance(ci, list)
        lo, hi = ci
        print(
            f"| {r['bucket']} | {r['metric']} | {r['other']} | {r['n']} | {r['logo']:.3f} | {r['other_value']:.3f} "
            f"| {r['difference']:+.3f} ({lo:+.3f}, {hi:+.3f}) | "
            + ("n/a" if r["relative"] is None else f"{r['relative']:+.1%}")
            + " |"
        )


if __name__ == "__main__":
    main()
