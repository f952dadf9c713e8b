"""Choose how a rating answer reads its number, on a selection run's predictions (component figures).

`logo eval --predictions` keeps, for each rating question, the model's log-likelihood of every value on the
scale and of the content-free question, and the mediator's estimate. From them this recomputes, for every
head (model, calibrated, anchored, and `estimate`: memory's estimate alone, the model's only without one),
every way to read one number off a distribution (`mean`: the expected value rounded to the scale's step;
`median`: the value that minimizes expected absolute error) and both candidate sets (every value of the
scale, or its whole numbers only: on MovieLens' half stars the content-free prior of rare values like
`0.5/5` is tiny, and calibrating by it blows them up), the MAE by bucket and method.
It counts the MovieLens targets each meets:

1. cold start: logo's MAE at least 10% below local's;
2. biased off-profile: logo below local;
3. regular: logo no worse than local, and below global;
4. every bucket: logo below none;
5. every bucket: logo at or below the user+item-bias reference of the same run (its rows in the file).

The rule, fixed before looking: the most targets met; ties broken by logo's overall MAE.

Usage: python bench/rating_select.py SELECTION_PREDICTIONS.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from logo_cli.answers import RATING_HEADS, RatingScale, head_distribution

BUCKETS = ("cold_start", "biased_off_profile", "biased_on_profile", "regular")
POINTS = ("mean", "median")
CANDIDATES = ("scale", "whole")  # score every value of the scale, or only its whole numbers (a subset of them)
HEADS = (*RATING_HEADS, "estimate")  # estimate: memory's estimate alone when there is one, else the model's
REFERENCE = "user-item-bias"


def predict(row: dict[str, object], scale: RatingScale, head: str, point: str, candidates: str) -> float:
    """The printed number under one variant, from the row's stored log-likelihoods."""
    estimate = row.get("estimate")
    if head == "estimate":
        if estimate is not None:
            return scale.snap(float(estimate))  # type: ignore[arg-type]
        head = "model"
    values = np.asarray(scale.values)
    keep = np.ones(len(values), dtype=bool) if candidates == "scale" else np.isclose(values % 1, 0)
    sub = RatingScale(float(values[keep][0]), scale.high, 1.0) if candidates == "whole" else scale
    scores = np.asarray(row["logprobs"])[keep]  # type: ignore[arg-type]
    prior = None if row.get("prior") is None else np.asarray(row["prior"])[keep]  # type: ignore[arg-type]
    p = head_distribution(head, scores, prior, estimate, sub)  # type: ignore[arg-type]
    if point == "mean":
        return scale.snap(float((p * np.asarray(sub.values)).sum()))
    return float(np.asarray(sub.values)[int(np.searchsorted(np.cumsum(p), 0.5))])


def targets(mae: dict[tuple[str, str], float]) -> list[bool]:
    def get(method: str, bucket: str) -> float:
        return mae.get((method, bucket), float("nan"))

    present = [b for b in BUCKETS if not np.isnan(get("logo", b))]
    met = [
        get("logo", "cold_start") <= 0.9 * get("local", "cold_start"),
        get("logo", "biased_off_profile") < get("local", "biased_off_profile"),
        get("logo", "regular") <= get("local", "regular") and get("logo", "regular") < get("global", "regular"),
        all(get("logo", b) < get("none", b) for b in present),
        all(get("logo", b) <= get(REFERENCE, b) for b in present if not np.isnan(get(REFERENCE, b))),
    ]
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    args = parser.parse_args()
    everything = [json.loads(line) for line in args.predictions.read_text().splitlines()]
    rows = [r for r in everything if r.get("logprobs") is not None]
    reference: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in everything:
        if r.get("method") == REFERENCE and r.get("error") is not None:
            reference[(REFERENCE, r["bucket"])].append(abs(float(r["error"])))
            reference[(REFERENCE, "all")].append(abs(float(r["error"])))
    results = []
    for head in HEADS:
        for point in POINTS:
            for candidates in CANDIDATES:
                errors: dict[tuple[str, str], list[float]] = defaultdict(list)
                for r in rows:
                    scale = RatingScale(*r["scale"])
                    error = abs(predict(r, scale, head, point, candidates) - float(r["gold"]))
                    errors[(r["method"], r["bucket"])].append(error)
                    errors[(r["method"], "all")].append(error)
                mae = {k: float(np.mean(v)) for k, v in (errors | reference).items()}
                met = targets(mae)
                results.append((sum(met), -mae[("logo", "all")], f"{head}/{candidates}", point, met, mae))
    results.sort(reverse=True)
    for n_met, neg_all, head, point, met, mae in results:
        cells = " ".join(
            f"{b[:10]}:"
            + "/".join(f"{mae.get((m, b), float('nan')):.3f}" for m in ("none", "local", "global", "logo", REFERENCE))
            for b in (*BUCKETS, "all")
        )
        print(f"{head:20} {point:6} targets {n_met}/{len(met)} {met} logo all {-neg_all:.3f} | {cells}")
    best = results[0]
    print(json.dumps({"chosen_head": best[2], "chosen_point": best[3], "targets_met": best[0]}))


if __name__ == "__main__":
    main()
