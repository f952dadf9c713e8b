"""A user's data: export it all, forget it all (store and global memory), never leak it to another user."""

from __future__ import annotations

import json
from pathlib import Path

from logo_cli import global_memory
from logo_cli.embed import load_embedder
from logo_cli.local_memory.store import Store

from ..helpers import lines, run


def test_export_round_trips_through_ingest(fake_env: Path, population: Path, tmp_path: Path) -> None:
    assert run("ingest", str(population))[0] == 0
    code, out, _ = run("export", "--user", "cook1")
    rows = [json.loads(line) for line in out.splitlines()]
    source = [json.loads(line) for line in population.read_text().splitlines() if '"cook1"' in line]
    assert code == 0 and len(rows) == len(source) == 12
    assert [r["id"] for r in rows] == sorted((r["id"] for r in source), key=lambda i: int(i.split("-")[1]))
    assert {(r["text"], r["item"], r["rating"]) for r in rows} == {(r["text"], r["item"], r["rating"]) for r in source}
    exported = tmp_path / "cook1.jsonl"
    exported.write_text(out)
    code, out, _ = run("ingest", str(exported))
    assert json.loads(out)["added"] == 0  # the same records: ids survive the round trip
    assert run("export", "--user", "nobody")[0] == 4


def test_forget_removes_user_everywhere(fake_env: Path, population: Path) -> None:
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3")[0] == 0
    before = global_memory.load(fake_env / "global")
    code, out, _ = run("forget", "--user", "narrow", "--dry-run")
    assert code == 0 and json.loads(out) == {
        "user": "narrow",
        "records": 30,
        "dry_run": True,
        "global_refreshed": False,
        "global_version": None,
    }
    code, out, _ = run("forget", "--user", "narrow")
    report = json.loads(out)
    assert code == 0 and report["records"] == 30 and report["global_refreshed"] is True

    embedder = load_embedder("fake")
    store = Store(fake_env / "store").open(embedder.id, embedder.dim, create=False)
    assert store.user_ids("narrow") == []
    assert all(r.user != "narrow" for page in store.pages() for r in page.records)
    after = global_memory.load(fake_env / "global")
    assert after.version == report["global_version"] and "narrow" not in after.users
    assert after.records == before.records - 30
    assert sum(c.size for c in after.clusters) == after.records
    code, out, _ = run("ask", "--user", "narrow", "--json", "films at the cinema?")
    assert code == 0 and json.loads(out)["local"] == [] and json.loads(out)["flags"]["cold_start"] is True
    assert run("forget", "--user", "narrow")[0] == 4
    versions = [p.name for p in (fake_env / "global").iterdir() if p.is_dir()]
    assert versions == [after.version]  # the version before still held narrow's profile


def test_a_forget_killed_before_its_refresh_finishes_when_run_again(fake_env: Path, population: Path) -> None:
    """Found by a helper playing attacker: `forget` killed after the store dropped the records but before global
    memory was refreshed left the user's profile and figures there, and running it again said "No records"."""
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3")[0] == 0
    embedder = load_embedder("fake")
    store = Store(fake_env / "store").open(embedder.id, embedder.dim, create=False)
    store.delete(store.user_ids("narrow"))  # where the kill landed
    del store
    assert "narrow" in global_memory.load(fake_env / "global").users
    code, out, _ = run("forget", "--user", "narrow")
    report = json.loads(out)
    assert code == 0 and report["records"] == 0 and report["global_refreshed"] is True
    assert "narrow" not in global_memory.load(fake_env / "global").users
    assert run("forget", "--user", "narrow")[0] == 4  # now done

    # killed after the refresh, before the older version (which still had cook1's profile) was deleted
    store = Store(fake_env / "store").open(embedder.id, embedder.dim, create=False)
    store.delete(store.user_ids("cook1"))
    del store
    assert run("build-global", "--update")[0] == 0
    folders = global_memory.versions.version_folders
    assert any(global_memory.versions.holds_user(v, "cook1") for v in folders(fake_env / "global"))
    code, out, _ = run("forget", "--user", "cook1")
    assert code == 0 and json.loads(out)["global_refreshed"] is False
    assert not any(global_memory.versions.holds_user(v, "cook1") for v in folders(fake_env / "global"))

    users = [json.loads(line)["user"] for line in run("users")[1].splitlines()]
    (fake_env / "global" / ".tmp-v1").mkdir()  # what killed builds leave: profiles, and every record as Parquet
    (fake_env / ".snapshot-build-1").mkdir()
    for user in users:
        assert run("forget", "--user", user)[0] == 0
    assert not global_memory.exists(fake_env / "global")
    # nobody left: no version kept, nothing half-written; only when the last forget was (an older snapshot's bar)
    assert [p.name for p in (fake_env / "global").iterdir()] == [global_memory.versions.FORGOTTEN_AT]
    assert not list(fake_env.glob(".snapshot-build-*"))


def test_forget_without_current_keeps_the_versions_unless_nobody_is_left(fake_env: Path, population: Path) -> None:
    """A reviewer found that `forget` in a store whose CURRENT was lost deleted every version, and with them the
    release a later build must continue (a new ledger, every closed period drawn again). It now deletes the
    records and stops (exit 6, saying what to do); only when nobody is left does it finish by deleting them."""
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3", "--epsilon", "3")[0] == 0
    home = fake_env / "global"
    (home / "CURRENT").unlink()  # a build or a forget killed at the switch
    code, _, err = run("forget", "--user", "narrow")
    assert code == 6 and "no CURRENT" in err and "then `logo forget --user narrow` again" in err, err
    assert global_memory.versions.version_folders(home)
    code, _, err = run("forget", "--user", "narrow")  # rerun before the build: the same advice, nothing lost
    assert code == 6 and "`logo build-global`" in err and global_memory.versions.version_folders(home)
    code, _, err = run("build-global", "--update")
    assert code == 6 and "CURRENT is missing" in err, err
    code, _, err = run("ask", "--user", "cook1", "films?")
    assert code == 6 and "CURRENT is missing" in err
    code, out, _ = run("doctor", "--json")
    assert not next(c for c in lines(out) if c.get("check") == "global memory loads")["ok"]

    users = [json.loads(line)["user"] for line in run("users")[1].splitlines()]
    for user in users[:-1]:
        assert run("forget", "--user", user)[0] == 6
    assert run("forget", "--user", users[-1])[0] == 0  # the last person: nobody is left, nothing kept
    assert not global_memory.versions.version_folders(home)
