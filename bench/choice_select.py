"""Fit how a choice answer weighs its features, on selection runs' predictions (component figures).

`logo eval --predictions` keeps, for each choice question, every option's features as `ask` computed them
(`answers/choice.py`: the model's score, memory's estimate, together, popularity, content, stated), centred
on the options. This fits the weights of a conditional logit (the probability of the gold option is the
softmax of the weighted features over the question's options) by maximum likelihood with a small L2 penalty,
on the `logo` rows of every file given (the selection halves of MovieLens' choice questions and of PrefEval),
with every weight at least 0, then tunes that fit for accuracy (a coordinate search, `tune`),
prints the accuracy of each feature alone and of the fit by bucket and variant beside the plain references
of the same runs, and the weights to put in answers/choice.py. The reported figures come from `logo eval` on
the other halves, run once afterwards.

    python bench/choice_select.py ml-choice-selection.jsonl pe-selection.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from logo_cli.answers.choice import FEATURES

PENALTY = 0.01


def load(paths: list[Path]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    questions = [r for r in rows if r.get("method") == "logo" and r.get("options")]
    return questions, rows


def design(question: dict[str, object]) -> tuple[np.ndarray, int]:
    options = question["options"]
    assert isinstance(options, list)
    x = np.array([[o["features"].get(f, 0.0) for f in FEATURES] for o in options], dtype=np.float64)
    gold = next(i for i, o in enumerate(options) if o["gold"])
    return x, gold


def fit(data: list[tuple[np.ndarray, int]]) -> np.ndarray:
    from scipy.optimize import minimize

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, gold in data:
            z = x @ w
            z -= z.max()
            p = np.exp(z) / np.exp(z).sum()
            total -= float(np.log(p[gold] + 1e-12))
            grad -= x[gold] - p @ x
        total += PENALTY * float(w @ w) * len(data)
        grad += 2 * PENALTY * w * len(data)
        return total / len(data), grad / len(data)

    # every feature says "more of this is better": weights are kept at or above 0, so the fit cannot learn how an
    # eval set drew its wrong options (MovieLens' unseen variant draws them among films 10+ people rated, so
    # there a negative popularity weight wins, which nobody asking "which would I like?" would want)
    result = minimize(loss, np.zeros(len(FEATURES)), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(FEATURES))
    out: np.ndarray = result.x
    return out


def tune(data: list[tuple[np.ndarray, int]], w: np.ndarray) -> np.ndarray:
    """Coordinate search for accuracy from the likelihood fit: each weight scaled by a few factors (or set to
    a small value from 0), kept when accuracy on the selection questions rises. The likelihood fit hedges
    where one feature is often right by a margin (PrefEval's `stated`), which costs accuracy."""
    best, best_acc = w.copy(), accuracy(data, w)
    for _ in range(3):
        improved = False
        for j in range(len(w)):
            for factor in (0.0, 0.25, 0.5, 2.0, 4.0, 8.0):
                trial = best.copy()
                trial[j] = trial[j] * factor if trial[j] > 0 else factor / 8
                acc = accuracy(data, trial)
                if acc > best_acc + 1e-9:
                    best, best_acc, improved = trial, acc, True
        if not improved:
            break
    return best


def accuracy(data: list[tuple[np.ndarray, int]], w: np.ndarray) -> float:
    return float(np.mean([int(np.argmax(x @ w) == gold) for x, gold in data])) if data else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path, nargs="+")
    args = parser.parse_args()
    questions, rows = load(args.predictions)
    data = [design(q) for q in questions]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(questions):
        groups[f"{q['bucket']}"].append(i)
        groups[f"variant:{q.get('variant') or '-'}"].append(i)
        groups["all"].append(i)
    weights = fit(data)
    heads = {f: np.eye(len(FEATURES))[j] for j, f in enumerate(FEATURES)}
    heads["fit"] = weights
    weights = heads["tuned"] = tune(data, weights)
    names = sorted(groups)
    print(f"{'head':14} " + " ".join(f"{g[:16]:>16}" for g in names))
    for head, w in heads.items():
        cells = [f"{accuracy([data[i] for i in groups[g]], w):.3f} ({len(groups[g])})" for g in names]
        print(f"{head:14} " + " ".join(f"{c:>16}" for c in cells))
    by_id = {str(q["id"]): q for q in questions}
    references: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("method") in ("logo", "none", "local", "global") or str(r["id"]) not in by_id:
            continue
        q = by_id[str(r["id"])]
        for g in (str(q["bucket"]), f"variant:{q.get('variant') or '-'}", "all"):
            references[str(r["method"])][g].append(float(r.get("score") or 0.0))
    for name, by_group in references.items():
        cells = [f"{np.mean(by_group[g]):.3f} ({len(by_group[g])})" if by_group.get(g) else "-" for g in names]
        print(f"{name:14} " + " ".join(f"{c:>16}" for c in cells))
    print(json.dumps({"WEIGHTS": {f: round(float(w), 3) for f, w in zip(FEATURES, weights, strict=True)}}))


if __name__ == "__main__":
    main()
