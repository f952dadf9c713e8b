"""Build a private global memory with another split of epsilon among the released statistics (an experiment).

The split (`SHARES` in global_memory/release.py) is a constant chosen on half 0 of the MovieLens users; this
runs `logo build-global` in process with the named variant patched in, so `bench/recommend_select.py` and
`bench/evidence_only.py` can score it (component figures). The reported figures come from `logo eval` on half
1, once, after the choice.

    LOGO_HOME=ml-home python bench/privacy_shares.py people -- --epsilon 3 --seed 1
"""

from __future__ import annotations

import math
import sys

import logo_cli.global_memory.release as release

CLUSTERS_HALVED = {
    "cluster_records": 1 / 48,
    "cluster_users": 1 / 24,
    "cluster_rated": 1 / 24,
    "cluster_rating_sum": 1 / 24,
    "cluster_labels": 1 / 48,
}
# What the clusters give up (1/6 of epsilon: their cells hold hundreds of people) goes to the item figures.
VARIANTS: dict[str, dict[str, float]] = {
    "now": {},
    "people": {**CLUSTERS_HALVED, "item_users": 1 / 3},
    "split": {**CLUSTERS_HALVED, "item_users": 1 / 4, "item_rating_sum": 1 / 3},
    "counts": {**CLUSTERS_HALVED, "item_users": 1 / 4, "item_ratings": 1 / 4},
    # half of epsilon to the rating sums, whose noise is most of what ratings pay (half the scale of now)
    "sums": {**CLUSTERS_HALVED, "item_users": 1 / 8, "item_ratings": 1 / 8, "item_rating_sum": 1 / 2},
}


def main() -> None:
    name, rest = sys.argv[1], sys.argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    shares = {**release.SHARES, **VARIANTS[name]}
    if not math.isclose(sum(shares.values()), 1.0):
        raise SystemExit(f"the shares of {name} add up to {sum(shares.values())}, not 1")
    release.SHARES.update(shares)
    print(f"shares {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in shares.items()), file=sys.stderr)
    from logo_cli.cli.app import app

    app(["build-global", *rest], prog_name="logo")


if __name__ == "__main__":
    main()
