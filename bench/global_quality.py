"""Global memory quality and cost, on sample_histories/ and on MovieLens (ml-latest-small).

For each dataset: ingest into a fresh LOGO_HOME, run `logo build-global` as a child process and read its
wall time and peak memory (wait4 rusage), then measure how the clusters agree with known classes
(sample: meta.area; MovieLens: each film's first-listed genre) as NMI and purity, and compare the diversity
of users the sample marks as biased with the others.

Usage: python bench/global_quality.py [--movielens DIR] [--max-users N] [--skip-movielens]
Prints one JSON line per dataset. MovieLens in full (100k ratings) takes ~10 minutes on 2 cores.
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
# the full data set: --movielens DIR, else $LOGO_EVAL_DATA/ml-latest-small
MOVIELENS = Path(os.environ.get("LOGO_EVAL_DATA", "eval-data")) / "ml-latest-small"


def logo(home: Path, *args: str) -> tuple[float, float, str]:
    """Run logo as a child: (seconds, peak RSS in MiB, stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "logo_cli", *args], env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"logo {' '.join(args)} failed with {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def measure(name: str, records: Path, meta_key: str, home: Path, kinds: dict[str, str] | None) -> dict:
    from logo_cli import global_memory
    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.evaluate import cluster_agreement
    from logo_cli.local_memory.store import Store

    ingest_s, _, _ = logo(home, "ingest", str(records))
    build_s, build_mb, _ = logo(home, "build-global", "--seed", "0")
    settings = Settings(home=home)
    embedder = load_embedder(settings.embedder_spec())
    store = Store(settings.store_dir).open(embedder.id, embedder.dim, create=False)
    memory = global_memory.load(settings.global_dir)
    agreement = cluster_agreement(memory, store, meta_key)
    row = {
        "dataset": name,
        "records": memory.records,
        "users": len(memory.users),
        "ingest_s": round(ingest_s, 1),
        "build_s": round(build_s, 1),
        "build_peak_mb": round(build_mb),
        "clusters": len(memory.clusters),
        "communities": len(memory.communities),
        "nmi": agreement.nmi,
        "purity": agreement.purity,
        "classes": agreement.classes,
    }
    if kinds:
        for kind in ("biased", "regular"):
            values = [p.diversity for u, p in memory.users.items() if kinds.get(u) == kind]
            row[f"median_diversity_{kind}"] = round(statistics.median(values), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", type=Path, default=MOVIELENS)
    parser.add_argument("--max-users", type=int, default=None, help="MovieLens: only the first N users")
    parser.add_argument("--skip-movielens", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        people = json.loads((ROOT / "sample_histories" / "users.json").read_text())
        kinds = {u: p["kind"] for u, p in people.items()}
        rows = [
            measure(
                "sample_histories", ROOT / "sample_histories" / "histories.jsonl", "area", Path(tmp) / "sample", kinds
            )
        ]
        if not args.skip_movielens:
            from logo_cli.convert import movielens

            converted = movielens(
                args.movielens, Path(tmp) / "ml", holdout=0.2, cold_share=0.0, max_users=args.max_users
            )
            rows.append(measure("movielens", Path(converted.records_file), "genre", Path(tmp) / "mlhome", None))
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
