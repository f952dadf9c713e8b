from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_histories"
FIXTURES = ROOT / "tests" / "data"  # small slices of public data sets, shipped with the tests
# the full public data sets (MovieLens ml-latest-small, PrefEval), where a machine has them
EVAL_DATA = Path(os.environ.get("LOGO_EVAL_DATA") or ROOT.parent / "shared" / "eval-data")


def full_data(name: str) -> Path:
    """A full data set under LOGO_EVAL_DATA, or skip the test saying where it was looked for."""
    import pytest

    folder = EVAL_DATA / name
    if not folder.is_dir():
        pytest.skip(f"{name} not found under {EVAL_DATA} (set LOGO_EVAL_DATA to the folder holding it)")
    return folder


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


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake embedder and model (instant), real Chroma store in a temporary LOGO_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("LOGO_HOME", str(home))
    monkeypatch.setenv("LOGO_EMBEDDER", "fake")
    monkeypatch.setenv("LOGO_MODEL", "fake")
    return home


@pytest.fixture
def population(tmp_path: Path) -> Path:
    users = {f"film{i}": ("films", 12) for i in range(4)}
    users |= {f"cook{i}": ("cooking", 12) for i in range(4)}
    users |= {f"trav{i}": ("travel", 12) for i in range(4)}
    users |= {"narrow": ("films", 30), "newbie": ("cooking", 1)}
    return write_jsonl(tmp_path / "pop.jsonl", make_records(users))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run the long reliability loops at full size")


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--slow"))
