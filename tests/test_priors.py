"""The content-free prior kept on disk: reused by later processes, keyed by the model file, never trusted when
unreadable."""

from __future__ import annotations

import json
import os
from pathlib import Path

from logo_cli.priors import PriorCache

from .helpers import run


def test_put_get_and_keys(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF....")
    cache = PriorCache(tmp_path / "priors.json")
    key = cache.key("llama.cpp:m.gguf", str(model), "<prompt>", ["Rating: 1/5", "Rating: 2/5"])
    assert cache.get(key) is None
    cache.put(key, [-1.0, -2.5])
    assert PriorCache(tmp_path / "priors.json").get(key) == [-1.0, -2.5]  # another process reads it
    assert cache.key("llama.cpp:m.gguf", str(model), "<prompt>", ["Rating: 1/5"]) != key  # other candidates
    os.utime(model, ns=(1, 1))
    assert cache.key("llama.cpp:m.gguf", str(model), "<prompt>", ["Rating: 1/5", "Rating: 2/5"]) != key  # replaced
    (tmp_path / "priors.json").write_text("{not json")
    assert cache.get(key) is None
    cache.put(key, [0.0, 0.0])
    assert cache.get(key) == [0.0, 0.0]


def test_a_rating_answer_writes_the_prior_once(fake_env: Path, population: Path) -> None:
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3")[0] == 0
    code, out, _ = run("ask", "--user", "cook1", "--json", "How would I rate Jaws?")  # a film no cook rated
    assert code == 0 and json.loads(out)["answer_type"] == "rating"
    stored = json.loads((fake_env / "priors.json").read_text())
    assert len(stored) == 1 and len(next(iter(stored.values()))) == 5  # the population rates 1-5, whole stars
    assert run("ask", "--user", "cook2", "How would I rate Heat?")[0] == 0
    assert json.loads((fake_env / "priors.json").read_text()) == stored  # reused, not recomputed
