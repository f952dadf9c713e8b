"""How fast the command line answers before any model loads: `logo --help` and `logo ingest --help`.

The raw component is the Python interpreter itself starting and exiting (`python -c pass`), measured in the
same run; the ratio shows what logo's imports add. Medians of --repeats runs each.

Usage: python bench/bench_cli.py [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def median_s(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    python = median_s([sys.executable, "-c", "pass"], args.repeats)
    for command in (["--help"], ["ingest", "--help"], ["ask", "--help"]):
        logo = median_s([sys.executable, "-m", "logo_cli", *command], args.repeats)
        row = {
            "figure": "logo " + " ".join(command),
            "median_s": round(logo, 3),
            "python_alone_s": round(python, 3),
            "ratio": round(logo / python, 2),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
