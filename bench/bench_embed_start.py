"""Embedding start-up and batch speed: the ONNX runtime against sentence-transformers, same weights.

Start-up, as a one-shot `logo ask` pays it: a fresh Python process that imports logo_cli.embed, loads the
packaged all-MiniLM-L6-v2 and embeds one question, with each runtime (the ONNX export is made first, once,
and not counted). The raw component is the interpreter alone (`python -c pass`). Medians of --repeats
fresh processes each.

Batch, as `logo ingest` pays it: --texts short texts (10-60 words drawn from sample_histories) embedded in
batches of --batch, after a warm-up, by (a) raw sentence-transformers (`SentenceTransformer.encode`, the
raw component), (b) logo's SentenceTransformerEmbedder, (c) logo's OnnxEmbedder with intra-op threads =
os.cpu_count(), and (d, e) raw sentence-transformers and OnnxEmbedder on 1 thread each (a fair per-core
comparison when other processes hold a core). Each runs in its own resident process and they take turns, one pass
each per round (so a busy machine slows all alike); median of --repeats passes. Also the lowest cosine
between the ONNX and sentence-transformers vectors of the same texts. About 1 minute per round on 2 cores.

Prints one JSON line per figure. No assertions on time.

Usage: python bench/bench_embed_start.py [--repeats R] [--texts N] [--batch B]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "I just got my first real kitchen. What's an easy dinner I could cook tonight?"

ONE_QUESTION = """
import os, sys
import logo_cli.embed as e
from logo_cli.config import default_embedder_path
model = e.load_embedder(str(default_embedder_path()), sys.argv[1])
vector = model.embed([sys.argv[2]])
assert vector.shape == (1, 384), vector.shape
print(model.runtime, 'torch' in sys.modules)
"""


def texts(n: int, seed: int = 0) -> list[str]:
    words: list[str] = []
    with open(ROOT / "sample_histories" / "histories.jsonl", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            words.extend(" ".join(str(record.get(k, "")) for k in ("text", "query", "response")).split())
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(10, 60))) for _ in range(n)]


def fresh_runs(args: list[str], repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        done = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
        out = done.stdout.strip()
    return statistics.median(times), out


def worker(mode: str, n: int, batch: int) -> None:
    """One backend, resident: load, warm up, print "ready"; then per stdin line `go` time one pass over the
    texts and print its seconds, `save PATH` write the last vectors; exit at end of input."""
    import numpy as np

    from logo_cli.config import default_embedder_path, force_offline

    force_offline()
    folder = str(default_embedder_path())
    corpus = texts(n)
    run: Callable[[list[str]], np.ndarray]
    if mode.startswith("st-raw"):
        from sentence_transformers import SentenceTransformer

        if mode == "st-raw-1thread":
            import torch

            torch.set_num_threads(1)

        model = SentenceTransformer(folder, device="cpu", local_files_only=True)

        def run(items: list[str]) -> np.ndarray:
            return np.asarray(model.encode(items, batch_size=batch, normalize_embeddings=True, show_progress_bar=False))
    else:
        from logo_cli.embed import Embedder, OnnxEmbedder, SentenceTransformerEmbedder

        embedder: Embedder
        if mode == "st-logo":
            embedder = SentenceTransformerEmbedder(folder, batch_size=batch)
        else:
            threads = 1 if mode == "onnx-1thread" else os.cpu_count()
            embedder = OnnxEmbedder(folder, batch_size=batch, threads=threads)
        run = embedder.embed

    vectors = run(corpus[:batch])  # warm-up: weights loaded, first-call allocations done
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "go":
            t = time.perf_counter()
            vectors = run(corpus)
            print(time.perf_counter() - t, flush=True)
        elif command == "save":
            np.save(arg, vectors)
            print("saved", flush=True)


def batch_figures(modes: tuple[str, ...], n: int, batch: int, repeats: int, tmp: Path) -> dict[str, float]:
    """Median seconds per pass for each mode. All workers stay loaded and take turns, one pass each per
    round, so load from other processes on a shared machine falls on every backend alike."""
    procs = {}
    for mode in modes:
        command = [sys.executable, __file__, "--worker", mode, "--texts", str(n), "--batch", str(batch)]
        procs[mode] = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
    times: dict[str, list[float]] = {mode: [] for mode in modes}

    def ask(mode: str, line: str) -> str:
        proc = procs[mode]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    try:
        for mode in modes:
            proc = procs[mode]
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"worker {mode} failed to start")
        for _ in range(repeats):
            for mode in modes:
                times[mode].append(float(ask(mode, "go")))
        for mode in modes:
            ask(mode, f"save {tmp / mode}.npy")
    finally:
        for proc in procs.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    return {mode: statistics.median(values) for mode, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.texts, args.batch)
        return

    import numpy as np

    py = sys.executable
    subprocess.run([py, "-m", "logo_cli.onnx_export"], check=True, capture_output=True, cwd=ROOT)  # once, uncounted

    python_alone, _ = fresh_runs([py, "-c", "pass"], args.repeats)
    print(json.dumps({"figure": "python -c pass", "median_s": round(python_alone, 3)}))
    start: dict[str, float] = {}
    for runtime in ("onnx", "torch"):
        seconds, out = fresh_runs([py, "-c", ONE_QUESTION, runtime, QUESTION], args.repeats)
        start[runtime] = seconds
        ran, torch_loaded = out.split()
        row = {
            "figure": f"import + load + embed one question ({runtime})",
            "median_s": round(seconds, 3),
            "runtime": ran,
            "torch_imported": torch_loaded == "True",
            "minus_python_s": round(seconds - python_alone, 3),
        }
        print(json.dumps(row))
    print(json.dumps({"figure": "one question: torch / onnx", "ratio": round(start["torch"] / start["onnx"], 2)}))

    modes = ("st-raw", "st-logo", "onnx", "st-raw-1thread", "onnx-1thread")
    with tempfile.TemporaryDirectory() as tmp:
        pass_s = batch_figures(modes, args.texts, args.batch, args.repeats, Path(tmp))
        rate = {mode: args.texts / value for mode, value in pass_s.items()}
        for mode in modes:
            row = {
                "figure": f"batch {mode}",
                "texts": args.texts,
                "batch": args.batch,
                "median_s": round(pass_s[mode], 3),
                "texts_per_s": round(rate[mode], 1),
                "vs_raw_st": round(rate[mode] / rate["st-raw"], 3),
            }
            print(json.dumps(row), flush=True)
        reference, onnx_vectors = np.load(Path(tmp) / "st-raw.npy"), np.load(Path(tmp) / "onnx.npy")
        cosine = float(np.min(np.sum(reference * onnx_vectors, axis=1)))
    print(json.dumps({"figure": f"min cosine onnx vs sentence-transformers over {args.texts} texts", "value": cosine}))


if __name__ == "__main__":
    main()
