"""Benchmark `logo ingest` against the raw embedder on the same texts, in the same run.

The texts are the sample histories, copied under new user names until there are --records of them, so the
store sees many batches. The raw figure is the embedder in use (its ONNX runtime unless it cannot run)
alone, encoding every text in one call (the fastest way to call it: one length-sorted pass); logo's figure
includes reading JSONL, the duplicate check, the writes to Chroma and to the user index. Medians of
--repeats runs, each into a fresh store; sentence-transformers alone on the same texts is printed beside.

Usage: python bench/bench_ingest.py [--records N] [--repeats R] [--batch-size B]
Prints one JSON line per figure on stdout and a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_histories" / "histories.jsonl"


def make_input(path: Path, n: int) -> int:
    lines = SAMPLE.read_text().splitlines()
    written, copy = 0, 0
    with path.open("w") as out:
        while written < n:
            for line in lines[: n - written]:
                row = json.loads(line)
                if copy:
                    row["user"] = f"{row['user']}-{copy}"
                out.write(json.dumps(row) + "\n")
                written += 1
            copy += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.local_memory.ingest import DEFAULT_BATCH, ingest
    from logo_cli.local_memory.store import Store
    from logo_cli.records import Record, read_records

    batch = args.batch_size or DEFAULT_BATCH
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input.jsonl"
        n = make_input(source, args.records)
        embedder = load_embedder(Settings().embedder_spec())
        texts = [r.embedding_text() for r in read_records([str(source)]) if isinstance(r, Record)]
        embedder.embed(texts[:64])  # load and warm up
        raw, full = [], []
        for i in range(args.repeats):  # interleaved, so drift on a noisy machine hits both alike
            t = time.perf_counter()
            embedder.embed(texts)
            raw.append(n / (time.perf_counter() - t))
            store = Store(Path(tmp) / f"store{i}")
            t = time.perf_counter()
            summary = ingest([str(source)], store, embedder, batch_size=batch)
            full.append(n / (time.perf_counter() - t))
            assert summary.added == n, summary
        from logo_cli.embed import SentenceTransformerEmbedder

        torch_embedder = SentenceTransformerEmbedder(Settings().embedder_spec())
        torch_embedder.embed(texts[:64])
        t = time.perf_counter()
        torch_embedder.embed(texts)
        torch_rate = n / (time.perf_counter() - t)
    row = {
        "figure": "ingest_records_per_s",
        "embedder_runtime": getattr(embedder, "runtime", "?"),
        "sentence_transformers_alone": round(torch_rate, 1),
        "records": n,
        "batch_size": batch,
        "logo": round(statistics.median(full), 1),
        "raw_embedder": round(statistics.median(raw), 1),
        "ratio": round(statistics.median(full) / statistics.median(raw), 3),
        "runs_logo": [round(x, 1) for x in full],
        "runs_raw": [round(x, 1) for x in raw],
    }
    print(json.dumps(row))
    print(
        f"ingest: logo {row['logo']} rec/s, embedder alone {row['raw_embedder']} rec/s, ratio {row['ratio']}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
