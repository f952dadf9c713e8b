"""The difference attack of issue 21, run many times: five people rate each of 150 films in 2023, a newcomer
rates them in 2024; an attacker asks `logo ask --json` for each film's population mean twice and subtracts
(through --at, and across two builds around an ingest). Prints the attack's mean absolute error on the
newcomer's 1-5 ratings, per release, at a budget (a guess of 3 errs by 1.2; without privacy the attack errs
by 0.0). Fake embedder and model, a temporary LOGO_HOME.

    python bench/privacy_attack.py [--epsilon 3] [--releases 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import run, write_jsonl
from tests.test_release import (
    FILMS,
    PERIOD_A,
    W,
    attack,
    build,
    first_raters,
    newcomer,
    seen,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", default="3")
    parser.add_argument("--releases", type=int, default=4)
    args = parser.parse_args()
    budget: float | str = args.epsilon if args.epsilon == "inf" else float(args.epsilon)
    folder = Path(tempfile.mkdtemp(prefix="logo-attack-"))
    os.environ.update(LOGO_EMBEDDER="fake", LOGO_MODEL="fake", LOGO_EPSILON=args.epsilon)
    try:
        os.environ["LOGO_HOME"] = str(folder / "at")
        rows = first_raters(FILMS) + newcomer(FILMS, (PERIOD_A + 1.3) * W)
        run("ingest", str(write_jsonl(folder / "rows.jsonl", rows)))
        at_errors = []
        for _ in range(args.releases):
            shutil.rmtree(folder / "at" / "global", ignore_errors=True)
            build("--epsilon", args.epsilon)
            before, after = (seen(FILMS, (PERIOD_A + p) * W + 10, budget) for p in (1, 2))
            errors = attack(before, after, FILMS)
            at_errors.append(float(errors.mean()))
        across = []
        for i in range(args.releases):
            os.environ["LOGO_HOME"] = str(folder / f"across{i}")
            run("ingest", str(write_jsonl(folder / "first.jsonl", first_raters(FILMS))))
            build("--epsilon", args.epsilon)
            before = seen(FILMS, None, budget)
            run("ingest", str(write_jsonl(folder / "p9.jsonl", newcomer(FILMS, time.time() - 3600))))
            build("--epsilon", args.epsilon, "--update")
            across.append(float(attack(before, seen(FILMS, None, budget), FILMS).mean()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"epsilon {args.epsilon}: attack MAE on 1-5 ratings, {FILMS} films per release")
    print(f"  through --at:      median {np.median(at_errors):.3f}  per release {[round(e, 3) for e in at_errors]}")
    print(f"  across two builds: median {np.median(across):.3f}  per release {[round(e, 3) for e in across]}")


if __name__ == "__main__":
    main()
