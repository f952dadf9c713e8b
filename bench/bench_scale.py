"""Scale: build-global and ask's retrieval + mediation at 10k, 100k and 1M records, against raw Chroma.

Stores are synthetic (bench/synthetic.py: 384-d vectors around 300 topic centres, one user per 50 records,
so 20,000 users at 1M) and kept under --dir, so a rerun measures without rewriting them.

For each size:
- build: `logo build-global` as a child process: wall time and peak memory (wait4 rusage);
- ask: in one process with the models loaded, --questions questions from random users. Logo's own work
  (embed the question, read the user's history, search it, mediate, fit the prompt budget) is timed per
  question; the raw component is Chroma alone running the same filtered nearest-neighbour query. Then
  --asks full answers with the real model give the share of logo's work in a whole ask.

Usage: python bench/bench_scale.py [--sizes 10000,100000,1000000] [--dir DIR] [--questions N] [--asks N]
Prints one JSON line per size on stdout. Writing the 1M store the first time takes about 10-15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import topic_words, write_store  # noqa: E402


def build(home: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")}
    env["LOGO_HOME"] = str(home)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logo_cli", "--quiet", "build-global", "--seed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"build-global failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    summary = json.loads(out.splitlines()[0]) if out.strip() else {}
    return {
        "build_s": round(wall, 1),
        "build_peak_mb": round(usage.ru_maxrss / 1024),
        "clusters": summary.get("clusters"),
    }


def asks(home: Path, questions: int, full: int, seed: int) -> dict[str, float]:
    import numpy as np

    from logo_cli.answers import AnswerType
    from logo_cli.ask import Asker, GenerationOptions, Question
    from logo_cli.config import Settings
    from logo_cli.mediator import MediatorOptions

    settings = Settings(home=home)
    t = time.perf_counter()
    asker = Asker(settings, MediatorOptions(), GenerationOptions(max_tokens=48))
    open_s = time.perf_counter() - t  # opening the store; includes building the user index the first time
    assert asker.store is not None and asker.memory is not None
    asker.generator  # noqa: B018 - load the model before timing
    asker.embedder.embed(["warm up"])
    rng = np.random.default_rng(seed)
    users = sorted(asker.memory.users)
    picks = [users[i] for i in rng.choice(len(users), questions + full, replace=False)]
    texts = []
    for _ in picks:
        words = topic_words(int(rng.integers(0, 300)))
        texts.append(f"What should I try next, something with {words[0]} or {words[1]}?")
    t = time.perf_counter()
    asker.prepare(
        Question(picks[0], texts[0], answer_type=AnswerType.OPEN)
    )  # the first read loads Chroma's vector segment into memory
    first_ms = (time.perf_counter() - t) * 1000

    own, embed_ms, retrieve_ms, mediate_ms, raw_ms = [], [], [], [], []
    collection = asker.store.collection
    for user, text in zip(picks[:questions], texts[:questions], strict=True):
        timings = asker.prepare(Question(user, text, answer_type=AnswerType.OPEN)).timings
        own.append(timings["embed"] + timings["retrieve"] + timings["mediate"])
        embed_ms.append(timings["embed"])
        retrieve_ms.append(timings["retrieve"])
        mediate_ms.append(timings["mediate"])
        vector = asker.embedder.embed([text])[0]
        t = time.perf_counter()
        collection.query(query_embeddings=[vector], n_results=10, where={"user": user}, include=["documents"])
        raw_ms.append((time.perf_counter() - t) * 1000)

    totals, shares, prompt = [], [], []
    for user, text in zip(picks[questions:], texts[questions:], strict=True):
        answer = asker.answer(Question(user, text, answer_type=AnswerType.OPEN))
        t = answer.timings_ms
        mine = t["embed"] + t["retrieve"] + t["mediate"]
        totals.append(t["total"])
        shares.append(mine / t["total"])
        prompt.append(answer.usage.prompt_tokens)
    med = statistics.median
    return {
        "open_store_s": round(open_s, 2),
        "first_question_ms": round(first_ms, 1),
        "ask_logo_work_ms": round(med(own), 1),
        "ask_embed_ms": round(med(embed_ms), 1),
        "ask_retrieve_ms": round(med(retrieve_ms), 1),
        "ask_mediate_ms": round(med(mediate_ms), 1),
        "raw_chroma_query_ms": round(med(raw_ms), 1),
        "retrieve_vs_raw_query": round(med(retrieve_ms) / med(raw_ms), 2),
        "ask_total_ms": round(med(totals), 1) if totals else None,
        "logo_work_share": round(med(shares), 4) if shares else None,
        "prompt_tokens": med(prompt) if prompt else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/logo-scale"))
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--asks", type=int, default=5)
    parser.add_argument("--skip-build", action="store_true", help="reuse the global memory already built")
    args = parser.parse_args()

    for size in (int(s) for s in args.sizes.split(",")):
        home = args.dir / str(size)
        row: dict[str, object] = {"records": size, "users": max(size // 50, 10)}
        if not (home / "store").exists():
            print(f"writing a synthetic store of {size} records to {home}", file=sys.stderr)
            home.mkdir(parents=True, exist_ok=True)
            written = write_store(home, size)
            row["store_write_s"] = round(written["write_s"], 1)
        if not args.skip_build or not (home / "global").exists():
            row |= build(home)
        row |= asks(home, args.questions, args.asks, seed=size)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
