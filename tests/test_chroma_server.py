"""`--chroma-url`: the same commands against a real Chroma server (`chroma run`) instead of the on-disk store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import SAMPLES, lines, logo

pytestmark = pytest.mark.real
HISTORIES = SAMPLES / "histories.jsonl"
CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "chroma run exited"
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the Chroma server did not start in 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_end_to_end_against_a_chroma_server(server: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = logo(home, "stats", env={"LOGO_CHROMA_URL": server})
    assert missing.returncode == 4, missing.stderr  # nothing ingested on the server yet
    assert server in missing.stderr

    done = logo(home, "ingest", str(HISTORIES), env={"LOGO_CHROMA_URL": server})
    assert done.returncode == 0, done.stderr
    summary = lines(done.stdout)[0]
    assert summary["added"] == summary["read"] == len(HISTORIES.read_text().splitlines())
    assert not (home / "store").exists(), "with --chroma-url nothing may be written to the on-disk store"

    again = logo(home, "--chroma-url", server, "ingest", str(HISTORIES))  # the flag, not the env var
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout)[0]["added"] == 0

    stats = logo(home, "stats", "--json", env={"LOGO_CHROMA_URL": server})
    assert stats.returncode == 0, stats.stderr
    figures = lines(stats.stdout)[0]
    assert figures["records"] == summary["added"] and figures["store"] == server

    snapped = logo(home, "snapshot", str(home / "snap"), env={"LOGO_CHROMA_URL": server})  # read from Chroma
    assert snapped.returncode == 0, snapped.stderr
    assert lines(snapped.stdout)[0]["records"] == summary["added"]

    built = logo(home, "build-global", "--seed", "0", env={"LOGO_CHROMA_URL": server})
    assert built.returncode == 0, built.stderr

    asked = logo(
        home,
        "ask",
        "--json",
        "--max-tokens",
        "16",
        "--user",
        "maya",
        "What should I watch?",
        env={"LOGO_CHROMA_URL": server},
    )
    assert asked.returncode == 0, asked.stderr
    answer = lines(asked.stdout)[0]
    assert answer["answer"].strip()
    assert answer["local"], "maya's own records must come back from the server"
    owner = {r["id"]: r["user"] for r in map(json.loads, HISTORIES.read_text().splitlines())}
    assert {owner[hit["id"]] for hit in answer["local"]} == {"maya"}

    history = logo(home, "history", "--json", "--user", "ines", env={"LOGO_CHROMA_URL": server})
    assert history.returncode == 0, history.stderr
    assert {row["user"] for row in lines(history.stdout)} == {"ines"}

    gone = logo(home, "forget", "--user", "ines", env={"LOGO_CHROMA_URL": server})
    assert gone.returncode == 0, gone.stderr
    after = logo(home, "history", "--json", "--user", "ines", env={"LOGO_CHROMA_URL": server})
    assert after.returncode == 4 or lines(after.stdout) == [], after.stderr


def test_an_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = logo(tmp_path / "home", "ingest", str(HISTORIES), env={"LOGO_CHROMA_URL": closed})
    assert done.returncode == 6, done.stderr
    assert closed in done.stderr and "chroma run" in done.stderr


def test_a_url_with_a_path_is_refused(tmp_path: Path) -> None:
    done = logo(tmp_path / "home", "stats", env={"LOGO_CHROMA_URL": "http://127.0.0.1:8000/some/path"})
    assert done.returncode == 6 and "not a Chroma server URL" in done.stderr
