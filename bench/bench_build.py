"""Global memory's build at scale: the local engine and Spark against each other and against an older logo.

Each figure is a `logo` command run as a child process: its wall time and its peak memory, both the largest
single process (wait4's ru_maxrss) and the whole process tree summed (sampled from /proc every 0.2 s: Spark's
JVM and its Python workers are children of logo).

    --home DIR        a store (LOGO_HOME) to snapshot and to build from;
    --snapshot DIR    the snapshot to write from --home, or an existing one (e.g. bench/synthetic.py's 10M);
    --figures LIST    any of: before, snapshot, local, full, spark, jvm (default: snapshot,local,full);
    --before DIR      a checkout of an older logo: `before` runs its build-global (which read Chroma directly);
    --master URL      Spark's master for `spark` and `jvm` (default local[2]).

Prints one JSON line per figure, with the command that produced it.
Usage: python bench/bench_build.py --home /tmp/logo-scale/1000000 --snapshot /tmp/logo-scale/snap-1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

JVM_START = """
import os, sys, time
os.environ["PYSPARK_PYTHON"] = sys.executable
t = time.perf_counter()
from pyspark.sql import SparkSession
imported = time.perf_counter() - t
spark = SparkSession.builder.master(sys.argv[1]).config("spark.ui.enabled", "false").getOrCreate()
started = time.perf_counter() - t
spark.range(1).count()
first = time.perf_counter() - t
spark.stop()
print(f'{{"import_s": {imported:.2f}, "session_s": {started:.2f}, "first_job_s": {first:.2f}}}')
"""


def tree_rss(root: int) -> int:
    """The summed resident memory (bytes) of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(args: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, object]:
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(proc.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {stderr[-2000:]}")
    line = stdout.strip().splitlines()[-1] if stdout.strip() else "{}"
    return {
        "wall_s": round(wall, 1),
        "peak_process_mb": round(usage.ru_maxrss / 1024),  # the largest single process (and waited descendants)
        "peak_tree_mb": round(peak[0] / 2**20),
        "output": json.loads(line),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--figures", default="snapshot,local,full")
    parser.add_argument("--before", type=Path)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")}
    home = args.home or args.snapshot.parent / f"{args.snapshot.name}-home"
    env["LOGO_HOME"] = str(home)
    logo = [sys.executable, "-m", "logo_cli", "--quiet"]
    commands = {
        "before": (["build-global", "--seed", "0"], "logo build-global --seed 0 (the older checkout)"),
        "snapshot": (["snapshot", str(args.snapshot)], f"logo snapshot {args.snapshot}"),
        "local": (
            ["build-global", "--seed", "0", "--snapshot", str(args.snapshot)],
            f"logo build-global --seed 0 --snapshot {args.snapshot}",
        ),
        "full": (["build-global", "--seed", "0"], "logo build-global --seed 0 (snapshot + local engine)"),
        "spark": (
            [
                "build-global",
                "--seed",
                "0",
                "--engine",
                "spark",
                "--master",
                args.master,
                "--snapshot",
                str(args.snapshot),
            ],
            f"logo build-global --seed 0 --engine spark --master {args.master} --snapshot {args.snapshot}",
        ),
    }
    for figure in args.figures.split(","):
        if figure == "jvm":
            row = measure([sys.executable, "-c", JVM_START, args.master], env)
            row["command"] = f"SparkSession.builder.master({args.master!r}).getOrCreate(), one job, stop"
        else:
            argv, command = commands[figure]
            cwd = None
            if figure == "before":
                if args.before is None:
                    raise SystemExit("--before DIR is needed for the before figure")
                cwd = args.before  # python -m imports logo_cli from the working directory: the older checkout
            row = measure([*logo, *argv], env, cwd=cwd)
            row["command"] = command
            out = row.pop("output")
            assert isinstance(out, dict)
            row["records"] = out.get("records")
            if "clusters" in out:
                row["clusters"] = out["clusters"]
                row["communities"] = out.get("communities")
                row["build_s_inside"] = (out.get("selection") or {}).get("seconds")
            if figure in ("before", "local", "full", "spark"):  # keep each build's memory for comparison
                current = home / "global" / (home / "global" / "CURRENT").read_text().strip()
                kept = home / f"global-{figure}"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(current, kept / current.name)
                (kept / "CURRENT").write_text(current.name)
        print(json.dumps({"figure": figure, **row}), flush=True)


if __name__ == "__main__":
    main()
