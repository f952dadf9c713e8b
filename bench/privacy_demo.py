"""How the sample histories read under privacy, over many noise draws: each round builds global memory with
a budget (the default, 3) on a copy of a store (`make demo`'s) and asks maya what to watch and ines what to cook,
as `logo ask -` answers them. A film list should hold films, a dinner list dishes.

    python bench/privacy_demo.py [--builds 40] [--period-days 182 365] [--epsilon 3] [--home .demo-home]

Prints, per budget and period length: films in maya's five (mean), lists without a film, lists with at most one, and
the items of ines's lists that are neither dishes nor garden produce; then the counts of each dinner item.
Kinds are the `meta.area` of the sample histories' records about each item.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    {"id": area, "user": user, "query": query, "answer_type": "recommend"}
    for area, user, query in [
        ("films", "maya", "What should I watch this weekend?"),
        ("cooking", "ines", "What's an easy dinner I could cook tonight?"),
    ]
]


def item_areas() -> dict[str, set[str]]:
    areas: dict[str, set[str]] = {}
    for line in (ROOT / "sample_histories" / "histories.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("item"):
            areas.setdefault(record["item"], set()).add(record["meta"]["area"])
    return areas


def one_build(store: Path, period_days: float, epsilon: float, env: dict[str, str]) -> dict[str, list[str]]:
    """One private build on a fresh copy of the store, and the two answers' lists."""
    with tempfile.TemporaryDirectory(prefix="logo-privacy-demo-") as home:
        shutil.copytree(store, Path(home) / "store")
        env = env | {"LOGO_HOME": home}
        logo = [sys.executable, "-m", "logo_cli"]
        build = [*logo, "build-global", "--epsilon", str(epsilon), "--period-days", str(period_days)]
        subprocess.run(build, env=env, check=True, capture_output=True)
        asked = "".join(json.dumps(q) + "\n" for q in QUESTIONS)
        out = subprocess.run([*logo, "ask", "-"], env=env, input=asked, text=True, check=True, capture_output=True)
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    return {a["id"]: [r["item"] for r in a.get("recommendations") or []] for a in answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=40)
    parser.add_argument("--period-days", type=float, nargs="+", default=[182.0, 365.0])
    parser.add_argument("--epsilon", type=float, nargs="+", default=[3.0])
    parser.add_argument("--home", type=Path, default=ROOT / ".demo-home", help="a home with the sample store")
    args = parser.parse_args()
    store = args.home / "store"
    if not store.is_dir():
        sys.exit(f"no store at {store}: run `make demo` first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")}
    areas = item_areas()
    for epsilon, period in ((e, p) for e in args.epsilon for p in args.period_days):
        films, dinner = [], collections.Counter[str]()
        off_kind = 0
        for i in range(args.builds):
            lists = one_build(store, period, epsilon, env)
            films.append(sum(areas[item] <= {"films"} for item in lists["films"]))
            dinner.update(lists["cooking"])
            off_kind += sum(not areas[item] <= {"cooking", "gardening"} for item in lists["cooking"])
            print(f"epsilon {epsilon:g}, {period:g} days, build {i + 1}: {json.dumps(lists)}", file=sys.stderr)
        print(
            json.dumps(
                {
                    "epsilon": epsilon,
                    "period_days": period,
                    "builds": args.builds,
                    "films_in_maya_list_mean": round(statistics.mean(films), 2),
                    "lists_without_film": sum(f == 0 for f in films),
                    "lists_with_at_most_one_film": sum(f <= 1 for f in films),
                    "dinner_items_off_kind": off_kind,
                    "dinner_items": dict(dinner.most_common()),
                }
            )
        )


if __name__ == "__main__":
    main()
