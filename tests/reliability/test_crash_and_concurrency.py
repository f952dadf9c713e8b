"""Kills mid-ingest and several processes at once: the store stays exact, nothing is lost or duplicated.

Real processes (`python -m logo_cli`) with the fake embedder, on a real Chroma store. `--slow` runs the
issue's full sizes (20 kills); the default is smaller to keep CI fast.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..helpers import logo_process, make_records, write_jsonl


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "LOGO_HOME": str(home), "LOGO_EMBEDDER": "fake", "LOGO_MODEL": "fake"}


READ_ALL = """
import json, sys
from pathlib import Path
from logo_cli.embed import load_embedder
from logo_cli.local_memory.store import Store
embedder = load_embedder("fake")
store = Store(Path(sys.argv[1]) / "store").open(embedder.id, embedder.dim, create=False)
print(json.dumps([r.uid for page in store.pages() for r in page.records]))
"""


def stored_ids(home: Path) -> list[str]:
    """Read every record in a fresh process, as the next logo command would (an open client in this
    process would keep a stale view of what other processes wrote)."""
    done = subprocess.run([sys.executable, "-c", READ_ALL, str(home)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ids: list[str] = json.loads(done.stdout)
    return ids


def big_file(tmp_path: Path, n_users: int, per_user: int) -> Path:
    topics = ("films", "cooking", "travel")
    users = {f"u{i:03d}": (topics[i % 3], per_user) for i in range(n_users)}
    return write_jsonl(tmp_path / "big.jsonl", make_records(users))


def test_sigkill_mid_ingest_never_loses_or_duplicates(tmp_path: Path, slow: bool) -> None:
    home = tmp_path / "home"
    records = big_file(tmp_path, 100, 50)  # 5,000 records
    expected = {json.loads(line)["id"] for line in records.read_text().splitlines()}
    rng = random.Random(11)
    kills = 20 if slow else 4
    for _ in range(kills):
        proc = logo_process(home, "ingest", "--batch-size", "200", str(records))
        time.sleep(rng.uniform(1.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        ids = stored_ids(home) if (home / "store" / "chroma.sqlite3").exists() else []
        assert len(ids) == len(set(ids)), "duplicates after a kill"
    done = logo_process(home, "ingest", str(records))
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    summary = json.loads(out)
    assert summary["added"] + summary["duplicates"] == len(expected)
    ids = stored_ids(home)
    assert len(ids) == len(set(ids)) == len(expected)


def test_four_writers_and_an_ask_loop_at_once(tmp_path: Path, slow: bool) -> None:
    home = tmp_path / "home"
    topics = ("films", "cooking", "travel")
    # 4,000 records: each writer holds the lock for seconds, so the others must wait (and say so after 2 s)
    everyone = make_records({f"w{i:02d}": (topics[i % 3], 100) for i in range(40)})
    files = []
    for k in range(4):  # overlapping slices: each record is in one or two files
        part = everyone[k * 750 : k * 750 + 1750]
        files.append(write_jsonl(tmp_path / f"part{k}.jsonl", part))
    first = logo_process(home, "ingest", str(files[0]))  # the store must exist before asks start
    assert first.wait(timeout=120) == 0
    writers = [logo_process(home, "ingest", "--batch-size", "100", str(f)) for f in files]
    asks, failures = 0, []
    deadline = time.time() + (120 if slow else 60)
    while any(w.poll() is None for w in writers) and time.time() < deadline:
        proc = logo_process(home, "ask", "--user", "w03", "--memory", "local", "--json", "films?")
        out, err = proc.communicate(timeout=120)
        asks += 1
        if proc.returncode != 0:
            failures.append(err)
        else:
            assert all(item["id"].startswith("w03-") for item in json.loads(out)["local"])
    results = [w.communicate(timeout=300) for w in writers]
    assert all(w.returncode == 0 for w in writers), [err for _, err in results]
    assert failures == [] and asks >= 1
    ids = stored_ids(home)
    assert len(ids) == len(set(ids)) == len({r["id"] for r in everyone[: 3 * 750 + 1750]})
    waited = sum("waiting for another logo process" in err for _, err in results)
    assert waited >= 1, "concurrent writers should have waited for the lock"


def test_wait_gives_up_with_exit_7(tmp_path: Path) -> None:
    from logo_cli.local_memory.locking import store_lock

    home = tmp_path / "home"
    records = write_jsonl(tmp_path / "r.jsonl", make_records({"a": ("films", 3)}))
    with store_lock(home):
        proc = logo_process(home, "ingest", "--wait", "1", str(records))
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 7 and "Another logo process" in err


def test_ctrl_c_exits_130_without_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    records = big_file(tmp_path, 400, 200)  # 80,000 records: still running when the signal comes
    # a shell that starts `make test` in the background makes its children ignore SIGINT; a terminal's does not
    proc = logo_process(
        home,
        "ingest",
        "--batch-size",
        "100",
        str(records),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (home / "store").exists() and time.monotonic() < deadline:  # writing, not still importing
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "ingest ended before the signal: make the file bigger"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted." in err and "Traceback" not in err


def test_store_refuses_another_embedder_or_a_newer_schema(tmp_path: Path) -> None:
    home = tmp_path / "home"
    records = write_jsonl(tmp_path / "r.jsonl", make_records({"a": ("films", 3)}))
    assert logo_process(home, "ingest", str(records)).wait(timeout=120) == 0
    other = subprocess.run(
        [sys.executable, "-m", "logo_cli", "ingest", str(records)],
        capture_output=True,
        text=True,
        env={**env_for(home), "LOGO_EMBEDDER": "fake:64"},
        timeout=120,
    )
    assert other.returncode == 6 and "fake:256" in other.stderr and "fake:64" in other.stderr
    bump = (
        "import chromadb, sys\n"
        "c = chromadb.PersistentClient(path=sys.argv[1]).get_collection('records')\n"
        "c.modify(metadata={**c.metadata, 'logo_schema': 99})\n"
    )
    subprocess.run([sys.executable, "-c", bump, str(home / "store")], check=True, capture_output=True, timeout=120)
    newer = logo_process(home, "ingest", str(records))
    _, err = newer.communicate(timeout=120)
    assert newer.returncode == 6 and "newer logo" in err
