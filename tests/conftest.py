from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_records, write_jsonl


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
