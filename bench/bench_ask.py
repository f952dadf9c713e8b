"""Benchmark `ask` against the raw components in the same run, on sample_histories/.

- ask overhead: logo's full answer (embed + retrieve + mediate + generate) vs llama.cpp alone generating from
  the very same prompt tokens with an empty cache; the ratio shows what logo adds around the model.
- batch cache reuse: the same questions asked in a row with llama.cpp's KV cache kept between them (the
  shared head of the prompt is not processed again) vs reset before each question.
- prompt tokens per memory mode (none, local, global, logo) and per local mode (rag, profile, profile+rag).

Ingest is in bench/bench_ingest.py, scale (1M records) in bench/bench_scale.py.
Usage: python bench/bench_ask.py [--questions N] [--repeats R]
Prints one JSON line per figure and a summary table on stderr. Needs `make setup` (real models).
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
SAMPLES = ROOT / "sample_histories"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()

    from logo_cli.answers import AnswerType
    from logo_cli.ask import Asker, GenerationOptions, Question

    OPEN = AnswerType.OPEN  # generated text: what this bench compares with llama.cpp alone
    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.global_memory.build import BuildOptions, build_global
    from logo_cli.llm import Usage
    from logo_cli.local_memory.ingest import ingest
    from logo_cli.local_memory.store import Store
    from logo_cli.mediator import MediatorOptions

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        embedder = load_embedder(settings.embedder_spec())

        store = Store(settings.store_dir)
        ingest([str(SAMPLES / "histories.jsonl")], store, embedder)
        build_global(store, embedder.id, embedder.dim, settings.global_dir, BuildOptions())
        asker = Asker(settings, MediatorOptions(), GenerationOptions(max_tokens=args.max_tokens))
        questions = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()]
        questions = questions[: args.questions]
        generator = asker.generator
        llm = generator._llm  # type: ignore[attr-defined]  # the raw llama.cpp object
        asker.answer(Question(questions[0]["user"], questions[0]["query"], answer_type=OPEN))  # warm up

        logo_ms, raw_ms, overhead_ms, prompt_tokens = [], [], [], []
        for _ in range(args.repeats):
            for q in questions:
                result = asker.answer(Question(q["user"], q["query"], answer_type=OPEN))
                logo_ms.append(result.timings_ms["total"])
                overhead_ms.append(result.timings_ms["total"] - result.timings_ms["generate"])
                prompt_tokens.append(result.usage.prompt_tokens)
                tokens = llm.tokenize(generator.render(result.messages).encode(), add_bos=True, special=True)
                llm.reset()  # no KV-cache reuse, the same as logo got
                t = time.perf_counter()
                usage = Usage()
                for _chunk in llm.create_completion(
                    prompt=tokens,
                    max_tokens=result.usage.completion_tokens or 1,
                    temperature=0.0,
                    seed=0,
                    stream=True,
                    repeat_penalty=1.3,
                ):
                    usage.completion_tokens += 1
                raw_ms.append((time.perf_counter() - t) * 1000)
                llm.reset()
        out.append(
            {
                "figure": "ask_ms_median",
                "logo": round(statistics.median(logo_ms), 1),
                "raw_llama_cpp": round(statistics.median(raw_ms), 1),
                "ratio": round(statistics.median(logo_ms) / statistics.median(raw_ms), 3),
            }
        )
        out.append(
            {
                "figure": "ask_overhead_ms_median",
                "logo": round(statistics.median(overhead_ms), 1),
                "share_of_total": round(statistics.median(overhead_ms) / statistics.median(logo_ms), 4),
            }
        )
        out.append({"figure": "prompt_tokens_median", "logo": statistics.median(prompt_tokens)})

        # batch mode: the KV cache kept between questions (what `logo ask -` does) vs reset before each
        kept_ms, reset_ms = [], []
        for _ in range(args.repeats):
            for q in questions:
                t = time.perf_counter()
                asker.answer(Question(q["user"], q["query"], answer_type=OPEN))
                kept_ms.append((time.perf_counter() - t) * 1000)
            for q in questions:
                llm.reset()
                t = time.perf_counter()
                asker.answer(Question(q["user"], q["query"], answer_type=OPEN))
                reset_ms.append((time.perf_counter() - t) * 1000)
        out.append(
            {
                "figure": "batch_ask_ms_median",
                "cache_kept": round(statistics.median(kept_ms), 1),
                "cache_reset": round(statistics.median(reset_ms), 1),
                "ratio": round(statistics.median(kept_ms) / statistics.median(reset_ms), 3),
            }
        )

        # prompt tokens per memory mode and local mode, over every sample question (no generation needed)
        all_questions = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines()]
        for memory in ("none", "local", "global", "logo"):
            for local in ("rag", "profile", "profile+rag") if memory in ("local", "logo") else ("rag",):
                mode = Asker(settings, MediatorOptions(memory=memory, local_mode=local), GenerationOptions())
                counts = [
                    generator.count_tokens(
                        generator.render(mode.prepare(Question(q["user"], q["query"], answer_type=OPEN)).messages)
                    )
                    for q in all_questions
                ]
                out.append(
                    {
                        "figure": "prompt_tokens_by_mode",
                        "memory": memory,
                        "local": local if memory in ("local", "logo") else None,
                        "median": statistics.median(counts),
                        "max": max(counts),
                    }
                )

    for row in out:
        print(json.dumps(row))
    for row in out:
        print(f"{row['figure']:<24} " + "  ".join(f"{k}={v}" for k, v in row.items() if k != "figure"), file=sys.stderr)


if __name__ == "__main__":
    main()
