"""A one-shot command imports only what it uses: a person waits for every import of every `logo ask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import HISTORIES, logo

NEVER_IN_ASK = {
    "sklearn",
    "scipy",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "torch",
    "sentence_transformers",
    "transformers",
    "chromadb",  # a user's history comes from the user index
    "pyspark",
    "pyarrow",
    "pandas",
}
PROBE = """
import json, sys
from logo_cli.cli import main
sys.argv = ["logo", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def imported(home: Path, args: list[str], env: dict[str, str]) -> set[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LOGO_")} | {"LOGO_HOME": str(home), **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, env=full, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_library() -> None:
    modules = imported(Path("/nonexistent"), ["--help"], {})
    assert not modules & (NEVER_IN_ASK | {"numpy", "chromadb", "llama_cpp", "onnxruntime", "httpx", "pydantic"})


@pytest.mark.real
def test_a_one_shot_ask_imports_only_what_it_uses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert logo(home, "ingest", str(HISTORIES)).returncode == 0
    assert logo(home, "build-global", "--seed", "0").returncode == 0
    recommend = imported(home, ["ask", "-u", "maya", "What should I watch this weekend?"], {})
    assert not recommend & NEVER_IN_ASK, recommend & NEVER_IN_ASK
    assert "llama_cpp" not in recommend  # recommendations come from memory: no model
    rating = imported(home, ["ask", "-u", "maya", "How would I rate Dune: Part Two?"], {})
    assert not rating & NEVER_IN_ASK and "llama_cpp" in rating
    served = imported(home, ["--server", "http://127.0.0.1:9", "--help"], {})
    assert "fastapi" not in served
