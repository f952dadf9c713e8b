from __future__ import annotations

import os
from collections.abc import Iterator
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


def pytest_configure(config: pytest.Config) -> None:
    # Most tests check exact statistics: they build with --epsilon inf. The privacy release is tested with the
    # default budget where it matters (tests/test_release.py, the demo in tests/test_end_to_end.py).
    os.environ["LOGO_EPSILON"] = "inf"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run the long reliability loops at full size")


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--slow"))


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] SparkSession for the whole test run (the JVM takes seconds to start): UI off, few shuffle
    partitions. Without pyspark or Java the tests that use it skip, saying which is missing."""
    import os
    import shutil
    import sys

    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("pyspark is not installed (pip install 'logo-cli[spark]'; make setup installs it)")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java: Spark needs Java 17+ on PATH or JAVA_HOME")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("logo tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
