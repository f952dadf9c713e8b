"""What a person waits for: one-shot `logo ask` processes, on sample_histories/, against the raw components.

For each answer type, the median wall time of `logo ask ... --json` run as a fresh process, and its start-up
overhead: wall time minus the in-process phases the answer reports (`timings_ms.total`, what `-v` prints).
Compared in the same run with `python -c pass` (the interpreter alone) and with the answer's own
generation time (the model's work), as ratios. `--before DIR` runs the same commands from another checkout
of logo (for example `git worktree add /tmp/before <commit>`) with this environment, for a before/after.

Usage: python bench/bench_oneshot.py [--runs 5] [--before DIR]
Prints one JSON line per figure. Needs `make setup` (real models).
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

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_histories"
QUESTIONS = {  # the same user and topic for every type
    "recommend": ["-u", "maya", "-t", "recommend", "What should I watch this weekend?"],
    "rating": ["-u", "maya", "-t", "rating", "How would I rate Dune: Part Two?"],
    "open": ["-u", "maya", "-t", "open", "--max-tokens", "40", "What should I watch this weekend?"],
}


def wall(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, str]:
    """`python -m logo_cli` imports logo from its working directory first, so `cwd` picks the checkout."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=cwd)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout of logo to run the same commands from")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": tmp}
        logo = [sys.executable, "-m", "logo_cli"]
        subprocess.run([*logo, "-q", "ingest", str(SAMPLES / "histories.jsonl")], env=env, check=True)
        subprocess.run([*logo, "-q", "build-global", "--seed", "0"], env=env, check=True, capture_output=True)
        python = statistics.median(wall([sys.executable, "-c", "pass"], env)[0] for _ in range(args.runs))
        helps = statistics.median(wall([*logo, "--help"], env)[0] for _ in range(args.runs))
        print(json.dumps({"figure": "logo --help", "median_s": round(helps, 3), "python_alone_s": round(python, 3)}))

        versions = {"now": (env, QUESTIONS, ROOT)}
        if args.before is not None:  # its own store: an older logo may not read a newer global memory
            home = Path(tmp) / "before"
            before = {**env, "PYTHONPATH": str(args.before), "LOGO_HOME": str(home)}
            ingest = [*logo, "-q", "ingest", str(SAMPLES / "histories.jsonl")]
            subprocess.run(ingest, env=before, check=True, cwd=args.before)
            build = [*logo, "-q", "build-global", "--seed", "0"]
            subprocess.run(build, env=before, check=True, capture_output=True, cwd=args.before)
            open_question = [q for q in QUESTIONS["open"] if q not in ("-t", "open")]
            versions["before"] = (before, {"open": open_question}, args.before)
        for version, (run_env, questions, cwd) in versions.items():
            for kind, question in questions.items():
                walls, overheads, generation = [], [], []
                wall([*logo, "ask", "--json", *question], run_env, cwd)  # once first: caches (priors, ONNX) warm
                for _ in range(args.runs):
                    seconds, out = wall([*logo, "ask", "--json", *question], run_env, cwd)
                    timings = json.loads(out)["timings_ms"]
                    walls.append(seconds)
                    overheads.append(seconds - timings["total"] / 1000)
                    generation.append(timings.get("generate", timings.get("recommend", 0.0)) / 1000)
                overhead = statistics.median(overheads)
                row = {
                    "figure": f"one-shot logo ask, {kind} answer ({version})",
                    "wall_s": round(statistics.median(walls), 3),
                    "startup_overhead_s": round(overhead, 3),
                    "answer_work_s": round(statistics.median(generation), 3),
                    "overhead_vs_answer_work": round(overhead / max(statistics.median(generation), 1e-3), 2),
                    "overhead_vs_python_alone": round(overhead / python, 1),
                    "runs": args.runs,
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
