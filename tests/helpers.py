"""What many test modules need, in one place: paths, the data makers, and running logo (in process, or as a
real `logo` process the way a person runs it). Fixtures are in conftest.py; no test module imports another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from logo_cli.global_memory import GlobalMemory

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_histories"
HISTORIES = SAMPLES / "histories.jsonl"
FIXTURES = ROOT / "tests" / "data"  # small slices of public data sets, shipped with the tests
# the full public data sets (MovieLens ml-latest-small, PrefEval), where a machine has them
EVAL_DATA = Path(os.environ.get("LOGO_EVAL_DATA") or ROOT.parent / "shared" / "eval-data")


def full_data(name: str) -> Path:
    """A full data set under LOGO_EVAL_DATA, or skip the test saying where it was looked for."""
    folder = EVAL_DATA / name
    if not folder.is_dir():
        pytest.skip(f"{name} not found under {EVAL_DATA} (set LOGO_EVAL_DATA to the folder holding it)")
    return folder


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    """`logo ARGS` in process (fast; the environment's LOGO_* apply): exit code, stdout, stderr. A crash that is
    not an exit, or a traceback on stderr, fails the test."""
    from typer.testing import CliRunner

    from logo_cli.cli import app

    result = CliRunner().invoke(app, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def logo(
    home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A real `logo` process on LOGO_HOME=home, with no other LOGO_* variable but those in `env` and the
    suite's LOGO_EPSILON (conftest: exact figures unless a test passes --epsilon)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_") or k == "LOGO_EPSILON"}
    clean |= {"LOGO_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "logo_cli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=clean,
        timeout=timeout,
    )


def logo_process(home: Path, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    """A `logo` process running in the background (fake models), for tests that signal or race it."""
    full = {**os.environ, "LOGO_HOME": str(home), "LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "logo_cli", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a command's stdout."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


TOPICS = {  # each topic's texts share a vocabulary the fake (bag-of-words) embedder can cluster on
    "films": [
        "Watched the film {x} at the cinema, the director and the actors made a tense movie",
        "Rewatched the movie {x}, a film with a great director, cast and cinema score",
        "The cinema showed {x} again, such a film: director, actors, screenplay, movie magic",
    ],
    "cooking": [
        "Cooked {x} for dinner with garlic, the recipe needs an oven and fresh basil",
        "Tried the recipe for {x}, garlic and basil in the sauce, dinner from the oven",
        "Made {x} again for dinner, the recipe with garlic sauce and basil never fails",
    ],
    "travel": [
        "Flew to {x} for a trip, the hotel near the beach and the old town were lovely",
        "Trip to {x} by train, booked a hotel near the beach, walked the old town",
        "Long weekend trip to {x}, a hotel by the beach and a flight home from the old town",
    ],
}
ITEMS = {
    "films": ["Alien", "Heat", "Psycho", "Vertigo", "Jaws"],
    "cooking": ["risotto", "ramen", "shakshuka", "lasagna", "curry"],
    "travel": ["Lisbon", "Kyoto", "Oslo", "Porto", "Seville"],
}


def make_records(users: dict[str, tuple[str, int]], *, start: int = 1_735_689_600) -> list[dict]:
    """users: name -> (topic, count). Deterministic records with ratings and timestamps a day apart."""
    out = []
    for u, (topic, count) in users.items():
        for i in range(count):
            item = ITEMS[topic][i % len(ITEMS[topic])]
            out.append(
                {
                    "user": u,
                    "id": f"{u}-{i}",
                    "text": TOPICS[topic][i % 3].format(x=item),
                    "item": item,
                    "rating": float(1 + (i % 5)),
                    "timestamp": start + 86_400 * (i + 7 * len(u)),
                }
            )
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_memory(**fields: Any) -> GlobalMemory:
    """A GlobalMemory holding only what the test gives (clusters, communities, items...), empty otherwise."""
    from logo_cli.global_memory import GlobalMemory

    empty: dict[str, Any] = {
        "version": "v-test",
        "built_at": 0.0,
        "embedder": "fake:4",
        "options": {},
        "records": 0,
        "clusters": [],
        "users": {},
        "communities": [],
        "segments": [],
        "rating_range": None,
    }
    return GlobalMemory(**(empty | fields))
