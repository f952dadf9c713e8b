"""How long each answer type takes, against llama.cpp alone, on sample_histories/.

- product path: the wall time of one-shot `logo ask --user U "question"` processes (what a person waits
  for), per answer type, beside `python -c pass`;
- component (warm process): logo's `Asker.answer` per answer type, and llama.cpp alone generating the open
  answer from the very same prompt tokens (the raw component), as a ratio.

Rating and recommend answers are asked the same questions as open ones where that makes sense (a recommend
question forced to `--answer-type open`), so the prompt is the same and only the answer's work differs.

Usage: python bench/bench_answers.py [--repeats R] [--one-shot N]
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
LOGO_CMD = [sys.executable, "-m", "logo_cli"]
SAMPLES = ROOT / "sample_histories"
RATING = [
    ("maya", "How would I rate Dune: Part Two on a scale from 1 to 5?"),
    ("greg_p", "How would I rate Parasite?"),
    ("jules", "How many stars would I give Kind of Blue?"),
    ("sasha_t", "How would I rate Spirited Away out of 5?"),
]
CHOICE = [
    ("maya", "Which should I watch tonight: A) Barbie B) Get Out C) Conclave"),
    ("greg_p", "Which film would I like most: A) Parasite B) Barbie C) Hereditary"),
    ("ines", "Which should I cook: A) Shakshuka B) Dal tadka C) Pad Thai"),
    ("hollis", "Which would I enjoy: A) Sinners B) The Substance C) Past Lives"),
]
RECOMMEND = [
    ("ines", "I just got my first real kitchen. What's an easy dinner I could cook tonight that isn't pasta?"),
    ("hollis", "Suggest a quick weeknight dinner for two, nothing fancy."),
    ("maya", "What should I watch this weekend?"),
    ("amara", "What should I read next?"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-shot", type=int, default=3, help="one-shot processes per answer type")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()

    from logo_cli.answers import AnswerType, RatingScale
    from logo_cli.ask import Asker, GenerationOptions, Question
    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.global_memory.build import BuildOptions, build_global
    from logo_cli.llm import Usage
    from logo_cli.local_memory.ingest import ingest
    from logo_cli.local_memory.store import Store
    from logo_cli.mediator import MediatorOptions

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        embedder = load_embedder(settings.embedder_spec())
        store = Store(settings.store_dir)
        ingest([str(SAMPLES / "histories.jsonl")], store, embedder)
        build_global(store, embedder.id, embedder.dim, settings.global_dir, BuildOptions())

        # product path: one-shot processes, as a person runs them
        env = {**os.environ, "LOGO_HOME": tmp}
        python = _median_wall([sys.executable, "-c", "pass"], env, args.one_shot)
        cases = {
            "rating": RATING[: args.one_shot],
            "choice": CHOICE[: args.one_shot],
            "recommend": RECOMMEND[: args.one_shot],
            "open": [(u, q) for u, q in RECOMMEND[: args.one_shot]],
        }
        one_shot: dict[str, float] = {}
        # uncounted: the first rating computes the model's content-free prior once (kept in priors.json)
        subprocess.run(
            [*LOGO_CMD, "-q", "ask", "-u", "maya", "-t", "rating", "Rate Heat"],
            env=env,
            check=True,
            capture_output=True,
        )
        for kind, questions in cases.items():
            walls = []
            for user, query in questions:
                command = [sys.executable, "-m", "logo_cli", "-q", "ask", "-u", user, "-t", kind, query]
                command += ["--max-tokens", str(args.max_tokens)]
                walls.append(_wall(command, env))
            one_shot[kind] = statistics.median(walls)
            _emit(
                {
                    "figure": f"one-shot logo ask, {kind} answer (product path)",
                    "median_s": round(one_shot[kind], 3),
                    "python_alone_s": round(python, 3),
                    "runs": len(walls),
                }
            )
        for kind in ("rating", "choice", "recommend"):
            _emit({"figure": f"one-shot {kind} / open", "ratio": round(one_shot[kind] / one_shot["open"], 2)})
        _emit({"figure": "one-shot choice / rating", "ratio": round(one_shot["choice"] / one_shot["rating"], 2)})

        # component: a warm process
        asker = Asker(settings, MediatorOptions(), GenerationOptions(max_tokens=args.max_tokens))
        llm = asker.generator._llm  # type: ignore[attr-defined]  # the raw llama.cpp object
        asker.answer(Question("maya", "warm up", answer_type=AnswerType.OPEN))
        warm: dict[str, list[float]] = {"rating": [], "choice": [], "recommend": [], "open": []}
        raw: list[float] = []
        tokens: list[int] = []
        same_prompt: dict[str, list[float]] = {"choice": [], "rating": []}
        scale = RatingScale()
        for _ in range(args.repeats):
            for user, query in CHOICE:
                answer = asker.answer(Question(user, query, answer_type=AnswerType.CHOICE))
                warm["choice"].append(answer.timings_ms["total"])
                options = [c["option"] for c in answer.to_json()["choices"]]
                for kind, candidates in (("choice", options), ("rating", scale.candidates())):
                    started = time.perf_counter()
                    asker.generator.score(answer.messages, candidates, Usage())
                    same_prompt[kind].append((time.perf_counter() - started) * 1000)
            for user, query in RATING:
                warm["rating"].append(
                    asker.answer(Question(user, query, answer_type=AnswerType.RATING)).timings_ms["total"]
                )
            for user, query in RECOMMEND:
                warm["recommend"].append(
                    asker.answer(Question(user, query, answer_type=AnswerType.RECOMMEND)).timings_ms["total"]
                )
                answer = asker.answer(Question(user, query, answer_type=AnswerType.OPEN))
                warm["open"].append(answer.timings_ms["total"])
                tokens.append(answer.usage.completion_tokens)
                prompt = llm.tokenize(asker.generator.render(answer.messages).encode(), add_bos=True, special=True)
                llm.reset()
                started = time.perf_counter()
                for _chunk in llm.create_completion(
                    prompt=prompt,
                    max_tokens=max(answer.usage.completion_tokens, 1),
                    temperature=0.0,
                    stream=True,
                    stop=["<|im_end|>", "<|endoftext|>"],
                    repeat_penalty=1.3,
                ):
                    pass
                raw.append((time.perf_counter() - started) * 1000)
                llm.reset()
        for kind, values in warm.items():
            _emit(
                {
                    "figure": f"warm Asker.answer, {kind} answer (component)",
                    "median_ms": round(statistics.median(values), 1),
                }
            )
        _emit(
            {
                "figure": "warm open answer / llama.cpp alone on the same prompt and token count (component)",
                "logo_ms": round(statistics.median(warm["open"]), 1),
                "llama_cpp_ms": round(statistics.median(raw), 1),
                "ratio": round(statistics.median(warm["open"]) / statistics.median(raw), 2),
                "median_answer_tokens": statistics.median(tokens),
            }
        )
        _emit(
            {
                "figure": "scoring a choice's options / a rating's scale after the same prompt (component)",
                "choice_ms": round(statistics.median(same_prompt["choice"]), 1),
                "rating_ms": round(statistics.median(same_prompt["rating"]), 1),
                "ratio": round(statistics.median(same_prompt["choice"]) / statistics.median(same_prompt["rating"]), 2),
            }
        )
        for kind in ("rating", "choice", "recommend"):
            ratio = statistics.median(warm[kind]) / statistics.median(raw)
            _emit(
                {"figure": f"warm {kind} answer / llama.cpp alone generating the open answer", "ratio": round(ratio, 2)}
            )


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _median_wall(command: list[str], env: dict[str, str], repeats: int) -> float:
    return statistics.median(_wall(command, env) for _ in range(max(repeats, 1)))


def _emit(row: dict[str, object]) -> None:
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
