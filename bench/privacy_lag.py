"""What reading only released periods costs, apart from the noise: item means as of each rating question,
from an exact global memory and from another one, scored by a shrunk item-mean predictor (a component
figure, not the product's). Build the other with a huge budget (`--epsilon 1e6`) to see the lag of
`--at` reading only periods ended by then; with the default to see lag and noise together.

    python bench/privacy_lag.py EXACT_HOME OTHER_HOME ml/eval-half0.jsonl [--sample 1500]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from logo_cli.global_memory import GlobalMemory, versions

PRIOR, MEAN = 10.0, 3.5  # shrink each item's mean toward 3.5 by 10 ratings


def predict(memory: GlobalMemory, item: str, at: float) -> tuple[float, bool]:
    table = memory.items
    row = table.rows.get(item) if table is not None else None
    found = table.rating(row, at, memory.min_users) if table is not None and row is not None else None
    if found is None:
        return MEAN, False
    mean, n = found
    return (mean * n + MEAN * PRIOR) / (n + PRIOR), True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exact", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--sample", type=int, default=1500)
    args = parser.parse_args()
    exact, other = versions.load(args.exact / "global"), versions.load(args.other / "global")
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    picked = np.random.default_rng(0).choice(len(questions), min(args.sample, len(questions)), replace=False)
    errors: dict[str, list[float]] = {"exact": [], "other": []}
    known = {"exact": 0, "other": 0}
    for q in (questions[i] for i in picked):
        for name, memory in (("exact", exact), ("other", other)):
            value, found = predict(memory, q["item"], float(q["at"]))
            errors[name].append(abs(value - float(q["gold"])))
            known[name] += found
    a, b = float(np.mean(errors["exact"])), float(np.mean(errors["other"]))
    print(
        json.dumps(
            {
                "questions": len(picked),
                "mae_exact": round(a, 4),
                "mae_other": round(b, 4),
                "difference": round(b - a, 4),
                "items_known": known,
            }
        )
    )


if __name__ == "__main__":
    main()
