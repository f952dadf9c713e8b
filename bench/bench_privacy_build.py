"""What the privacy release costs a build: `logo build-global --snapshot DIR` with the default budget against
`--epsilon inf` (no release), alternated, each a `logo` child process timed from outside.

    python bench/bench_privacy_build.py [--records 1000000] [--rounds 3] [--snapshot DIR] [--period-days D]

The snapshot is bench/synthetic.py's (written once under /tmp/logo-scale). Prints each build's wall time,
the medians and the ratio private / exact, and the release's own seconds as the build reports them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--snapshot", type=Path)
    parser.add_argument("--period-days", type=float, help="the release's period (default: logo's)")
    args = parser.parse_args()
    snapshot = args.snapshot or Path(f"/tmp/logo-scale/snap-{args.records}")
    if not (snapshot / "stamp.json").is_file():
        from synthetic import write_snapshot

        print(f"writing {args.records} synthetic records to {snapshot}", file=sys.stderr)
        print(json.dumps(write_snapshot(snapshot, args.records)), file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")}
    times: dict[str, list[float]] = {"inf": [], "3": []}
    with tempfile.TemporaryDirectory(prefix="logo-privacy-build-") as home:
        env["LOGO_HOME"] = home
        for _ in range(args.rounds):
            for epsilon in ("inf", "3"):
                subprocess.run(["rm", "-rf", f"{home}/global"], check=True)  # a first build each time
                started = time.perf_counter()
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "logo_cli",
                        "--quiet",
                        "build-global",
                        "--seed",
                        "0",
                        "--snapshot",
                        str(snapshot),
                        "--epsilon",
                        epsilon,
                        *(["--period-days", str(args.period_days)] if args.period_days else []),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                wall = time.perf_counter() - started
                times[epsilon].append(wall)
                summary = json.loads(out.stdout)
                cells = sum(r["cells"] for r in (summary["privacy"].get("ledger") or [{}])[-1].get("releases", []))
                print(
                    json.dumps(
                        {"epsilon": epsilon, "wall_s": round(wall, 2), "records": summary["records"], "cells": cells}
                    ),
                    flush=True,
                )
    exact, private = statistics.median(times["inf"]), statistics.median(times["3"])
    print(
        json.dumps(
            {
                "median_exact_s": round(exact, 2),
                "median_private_s": round(private, 2),
                "ratio": round(private / exact, 3),
                "rounds": args.rounds,
                "period_days": args.period_days,
                "snapshot": str(snapshot),
            }
        )
    )


if __name__ == "__main__":
    main()
