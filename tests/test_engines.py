"""The snapshot and the two build engines: the local engine writes what the build wrote before it read a
snapshot; Spark (local[2]) agrees with it on k, assignments, item statistics, privacy and answers."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from logo_cli import global_memory
from logo_cli.global_memory import stages
from logo_cli.global_memory.build import build_global
from logo_cli.global_memory.snapshot import Snapshot, write_snapshot
from logo_cli.global_memory.stages import BuildOptions
from logo_cli.local_memory.store import Store

from .helpers import FIXTURES, make_records, run, write_jsonl
from .helpers import ITEMS as ITEM_NAMES

WORDS = {  # each topic's records share these words (the fake embedder is a bag of words): clear clusters
    "films": "watched film cinema director actors screenplay movie",
    "cooking": "cooked recipe dinner garlic basil oven sauce",
    "travel": "trip hotel beach flight train town holiday",
    "garden": "garden compost mulch seeds bulbs pruned weeded",  # only two people: a private cluster
}
ITEMS = {**ITEM_NAMES, "garden": ["tulip", "rose", "fern"]}


def population_rows(private_topic: bool = False) -> list[dict[str, Any]]:
    """The `population` fixture's people (four per topic, a narrow one, a newcomer) with texts that cluster
    cleanly, so the number of clusters is not a near tie for silhouette; optionally two gardeners. Three film
    people label their records "fan", one "critic" (a label one person gave, which no cluster may show)."""
    users = {f"film{i}": ("films", 12) for i in range(4)}
    users |= {f"cook{i}": ("cooking", 12) for i in range(4)}
    users |= {f"trav{i}": ("travel", 12) for i in range(4)}
    users |= {"narrow": ("films", 30), "newbie": ("cooking", 1)}
    if private_topic:
        users |= {"gard0": ("garden", 8), "gard1": ("garden", 8)}
    rows = []
    for n, (user, (topic, count)) in enumerate(users.items()):
        for i in range(count):
            item = ITEMS[topic][i % len(ITEMS[topic])]
            rows.append(
                {
                    "user": user,
                    "id": f"{user}-{i}",
                    "text": f"{WORDS[topic]} {item.lower()} day{n}x{i} note{i}y{n}",  # words of its own
                    "item": item,
                    "rating": float(1 + (i + n) % 5),
                    "timestamp": 1_735_689_600 + 86_400 * (i + 7 * n),
                }
                | ({"label": "critic" if user == "film3" else "fan"} if user in LABELLED else {})
            )
    return rows


LABELLED = ("film0", "film1", "film2", "film3")


def population_before() -> list[dict[str, Any]]:
    """The `population` fixture's records, as the digest of the build before snapshots was made from."""
    users = {f"film{i}": ("films", 12) for i in range(4)}
    users |= {f"cook{i}": ("cooking", 12) for i in range(4)}
    users |= {f"trav{i}": ("travel", 12) for i in range(4)}
    users |= {"narrow": ("films", 30), "newbie": ("cooking", 1)}
    return make_records(users)


def ingest(home: Path, rows: list[dict[str, Any]]) -> Store:
    path = write_jsonl(home.parent / f"{home.name}.jsonl", rows)
    code, _, err = run("ingest", str(path))
    assert code == 0, err
    return Store(home / "store")


def digest(home: Path) -> dict[str, Any]:
    """memory.json (less what differs by build: version, time, seconds) and a hash of every array."""
    folder = home / "global" / (home / "global" / global_memory.POINTER).read_text().strip()
    data = json.loads((folder / "memory.json").read_text())
    for key in ("version", "built_at"):
        data.pop(key)
    data["selection"].pop("seconds", None)
    arrays = {}
    for file in sorted(folder.iterdir()):
        found = {"": np.load(file)} if file.suffix == ".npy" else dict(np.load(file)) if file.suffix == ".npz" else {}
        for key, value in found.items():
            name = file.name + (f":{key}" if key else "")
            arrays[name] = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
    return {"memory": data, "arrays": arrays}


# ------------------------------------------------------------------------------------------------ snapshot


def test_snapshot_writes_every_record_once_with_the_stores_stamp(fake_env: Path, tmp_path: Path) -> None:
    ingest(fake_env, population_before())
    code, out, err = run("snapshot", str(tmp_path / "snap"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["records"] == 175 and summary["users"] == 14 and summary["embedder"] == "fake:256"
    snap = Snapshot(tmp_path / "snap")
    assert snap.stamp["logo_schema"] == 2 and snap.dim == 256 and snap.count == 175
    batches = list(snap.batches(60))
    assert [len(b) for b in batches] == [60, 60, 55]
    assert [p for b in batches for p in b.pos] == list(range(175))
    first = batches[0]
    assert first.user_names[first.user[0]] == "film0" and first.item_names[first.item[0]] == "Alien"
    assert first.vectors.shape == (60, 256) and np.allclose(np.linalg.norm(first.vectors, axis=1), 1, atol=1e-5)
    assert run("snapshot", str(tmp_path / "snap"))[0] == 0  # a snapshot already there is replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run("snapshot", str(tmp_path / "other"))
    assert code == 2 and "not a logo snapshot" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_a_snapshot_where_none_can_be_written_is_a_usage_error(fake_env: Path, tmp_path: Path) -> None:
    ingest(fake_env, population_before())
    afile = tmp_path / "afile"
    afile.write_text("")
    for out in (afile / "snap", afile):  # a parent that is a file (as /proc or a read-only mount refuse), a file
        code, _, err = run("snapshot", str(out))
        assert code == 2 and f"{out}: " in err, err
    assert "cannot write a snapshot there (Not a directory)" in run("snapshot", str(afile / "snap"))[2]


def test_the_local_engine_writes_what_the_build_wrote_before_snapshots(fake_env: Path, tmp_path: Path) -> None:
    """tests/data/global_memory_before.json is the digest of `logo build-global --seed 0` at commit 64e85c1
    (which read Chroma directly) on these records. From a snapshot of the same vectors (Chroma's copy: it
    renormalizes them for its cosine index, so they can differ from the embedder's in the last bit), the local
    engine writes the same memory, array for array."""
    store = ingest(fake_env, population_before())
    write_snapshot(store, "fake:256", 256, tmp_path / "snap", from_chroma=True)
    # exact, as that build was (since issue 21 a private build measures diversity against noisy cluster sizes)
    options = BuildOptions(seed=0, epsilon=None)
    build_global(None, "fake:256", 256, fake_env / "global", options, snapshot=str(tmp_path / "snap"))
    before = json.loads((FIXTURES / "global_memory_before.json").read_text())
    now = digest(fake_env)
    now["memory"]["selection"].pop("engine")
    for option in ("epsilon", "period_days"):  # the privacy release came after: its files are extra arrays
        now["memory"]["options"].pop(option)
    # Keywords changed on purpose after (issue 21): a candidate needs min_users people, each record counting
    # its person for at most two words. What stays: the old keywords that pass come first.
    for old, new in zip(before["memory"]["clusters"], now["memory"]["clusters"], strict=True):
        kept = [w for w in old.pop("keywords") if w in new["keyword_people"]]
        assert kept and set(new.pop("keywords")[: len(kept)]) == set(kept), (old, new)  # ties now go alphabetically
        assert all(n >= 3 for n in new.pop("keyword_people").values())
    assert {k: now["memory"].get(k) for k in before["memory"]} == before["memory"]
    # Item terms changed on purpose after (issue 21): a term needs min_users of the item's people
    changed = {"items.npz:term_ids", "items.npz:term_offsets", "items.npz:term_vocabulary", "items.npz:term_weights"}
    assert {k: now["arrays"].get(k) for k in before["arrays"] if k not in changed} == {
        k: v for k, v in before["arrays"].items() if k not in changed
    }


def sampled_store(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> global_memory.GlobalMemory:
    """The population as a "large" store: clusters and keyword candidates from a fit sample of 15 of its 175
    records (drawn by position, as above 50,000 records), then an exact build with the local engine."""
    monkeypatch.setattr(stages, "FULL_KMEANS_MAX", 20)
    monkeypatch.setattr(stages, "FIT_SAMPLE", 15)
    ingest(fake_env, population_rows())
    code, _, err = run("build-global", "--seed", "0", "--clusters", "3")
    assert code == 0, err
    memory = global_memory.load(fake_env / "global")
    assert memory.records == 175 and not stages.sample_plan(memory.records, 0)[2]  # not the whole store
    return memory


def test_keyword_people_are_counted_over_every_record_not_the_fit_sample(
    fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyword's people are counted over every record, not only the position-drawn sample's, so given the
    clusters and candidates one record moves them by at most two (the release's sensitivity). Every record of
    a topic names its topic's words, so each cluster's best keyword is used by all of the cluster's people."""
    memory = sampled_store(fake_env, monkeypatch)
    # the 15 sampled records hold 3 of the 5 cooks, 3 of the 4 travellers and all 5 film people
    assert sorted(c.users for c in memory.clusters) == [4, 5, 5]
    for cluster in memory.clusters:
        assert max(cluster.keyword_people.values()) == cluster.users, cluster


def test_a_build_snapshots_the_store_and_leaves_nothing_behind(fake_env: Path, population: Path) -> None:
    assert run("ingest", str(population))[0] == 0
    code, out, _ = run("build-global", "--seed", "0")
    assert code == 0 and json.loads(out)["selection"]["engine"] == "local"
    assert sorted(p.name for p in fake_env.iterdir()) == ["global", "store", "store.lock"]


def test_build_options_for_the_engines_are_checked(fake_env: Path, population: Path) -> None:
    assert run("ingest", str(population))[0] == 0
    code, _, err = run("build-global", "--engine", "dask")
    assert code == 2 and "--engine" in err
    code, _, err = run("build-global", "--master", "local[2]")
    assert code == 2 and "--engine spark" in err
    code, _, err = run("build-global", "--engine", "spark", "--master", "spark://head:7077")
    assert code == 2 and "logo snapshot" in err
    code, _, err = run("build-global", "--snapshot", str(fake_env / "nowhere"))
    assert code == 4 and "no snapshot" in err


# ---------------------------------------------------------------------------------------------------- Spark


def assignments(memory: global_memory.GlobalMemory, snap: Snapshot) -> np.ndarray:
    return np.concatenate([memory.assign(b.vectors) for b in snap.batches(10_000)])


def match(local: np.ndarray, spark: np.ndarray, k: int) -> dict[int, int]:
    """Each Spark cluster -> the local cluster most of its records are in."""
    table = np.zeros((k, k), dtype=np.int64)
    np.add.at(table, (spark, local), 1)
    return {s: int(np.argmax(table[s])) for s in range(k)}


def answers(home: Path) -> list[str]:
    out = []
    for user, question in [
        ("film0", "What should I watch this weekend?"),
        ("newbie", "What should I cook for dinner?"),
        ("narrow", "Where should I travel next?"),
        ("cook1", "How would I rate Jaws?"),  # items they have not rated: memory's estimate, not their own
        ("trav2", "How would I rate risotto?"),
    ]:
        code, text, err = run("ask", "--user", user, question)
        assert code == 0, err
        out.append(text)
    return out


@pytest.mark.parametrize("private_topic", [False, True], ids=["population", "with-a-private-topic"])
def test_spark_and_the_local_engine_agree(spark: Any, fake_env: Path, tmp_path: Path, private_topic: bool) -> None:
    store = ingest(fake_env, population_rows(private_topic))
    write_snapshot(store, "fake:256", 256, tmp_path / "snap")
    snap = Snapshot(tmp_path / "snap")
    code, out, err = run("build-global", "--seed", "0", "--snapshot", str(tmp_path / "snap"))
    assert code == 0, err
    local = global_memory.load(fake_env / "global")
    local_answers = answers(fake_env)
    code, out, err = run("build-global", "--seed", "0", "--engine", "spark", "--snapshot", str(tmp_path / "snap"))
    assert code == 0, err
    assert json.loads(out)["selection"]["engine"] == "spark"
    remote = global_memory.load(fake_env / "global")

    assert len(remote.clusters) == len(local.clusters)  # the same k
    from sklearn.metrics import adjusted_rand_score

    mine, theirs = assignments(local, snap), assignments(remote, snap)
    assert adjusted_rand_score(mine, theirs) >= 0.9
    pairs = match(mine, theirs, len(local.clusters))
    assert sorted(c.id for c in local.clusters if c.private) == sorted(
        pairs[c.id] for c in remote.clusters if c.private
    )
    assert any(c.private for c in local.clusters) == private_topic
    assert local.items is not None and remote.items is not None
    assert remote.items.names == local.items.names
    # labels need min_users people in both engines: "fan" (three people) shows, "critic" (one) does not
    assert {c.id: c.labels for c in local.clusters} == {pairs[c.id]: c.labels for c in remote.clusters}
    assert any("fan" in c.labels for c in local.clusters) and not any("critic" in c.labels for c in local.clusters)
    a, b = local.items.snapshot(None, 3), remote.items.snapshot(None, 3)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.ratings, b.ratings)
    assert np.allclose(a.rating_mean, b.rating_mean, equal_nan=True, rtol=0, atol=1e-9)
    when = float(np.median(local.items.rating_ts))  # and as of a moment
    assert np.allclose(
        local.items.snapshot(when, 3).rating_mean, remote.items.snapshot(when, 3).rating_mean, equal_nan=True
    )
    assert {u: p.history for u, p in remote.users.items()} == {u: p.history for u, p in local.users.items()}
    assert {u: p.rating_mean for u, p in remote.users.items()} == {u: p.rating_mean for u, p in local.users.items()}
    assert remote.records == local.records and remote.segments == local.segments
    assert remote.rating_range == local.rating_range and remote.rating_step == local.rating_step
    assert answers(fake_env) == local_answers  # `logo ask` answers the same from either


def test_spark_reads_the_movielens_fixture_like_the_local_engine(spark: Any, fake_env: Path, tmp_path: Path) -> None:
    """Real ratings, half stars and timestamps (12 MovieLens users, the shipped slice)."""
    code, _, err = run("convert", "movielens", str(FIXTURES / "ml-latest-small"), "--out", str(tmp_path / "ml"))
    assert code == 0, err
    assert run("ingest", str(tmp_path / "ml" / "records.jsonl"))[0] == 0
    assert run("snapshot", str(tmp_path / "snap"))[0] == 0
    assert run("build-global", "--seed", "0", "--clusters", "6", "--snapshot", str(tmp_path / "snap"))[0] == 0
    local = global_memory.load(fake_env / "global")
    code, _, err = run(
        "build-global", "--seed", "0", "--clusters", "6", "--engine", "spark", "--snapshot", str(tmp_path / "snap")
    )
    assert code == 0, err
    remote = global_memory.load(fake_env / "global")
    assert local.items is not None and remote.items is not None and remote.items.names == local.items.names
    a, b = local.items.snapshot(None, 3), remote.items.snapshot(None, 3)
    assert np.array_equal(a.users, b.users) and np.allclose(a.rating_mean, b.rating_mean, equal_nan=True)
    assert remote.rating_step == local.rating_step == 0.5
    assert sum(c.size for c in remote.clusters) == sum(c.size for c in local.clusters) == local.records


def test_spark_counts_keyword_people_over_every_record_like_the_local_engine(
    spark: Any, fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = sampled_store(fake_env, monkeypatch)
    code, _, err = run("build-global", "--update", "--engine", "spark", "--master", "local[2]")
    assert code == 0, err
    remote = global_memory.load(fake_env / "global")
    assert [c.keyword_people for c in remote.clusters] == [c.keyword_people for c in local.clusters]


def test_spark_without_java_is_a_clear_error(fake_env: Path, population: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    import subprocess

    assert run("ingest", str(population))[0] == 0
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "PATH": "/usr/local/sbin:/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "logo_cli", "build-global", "--engine", "spark", "--master", "local[1]"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 6, done.stderr
    assert "Spark could not start" in done.stderr and "Java 17" in done.stderr


def test_spark_updates_a_memory_the_local_engine_built(spark: Any, fake_env: Path, tmp_path: Path) -> None:
    """--update keeps the clusters and community centres whichever engine built them."""
    ingest(fake_env, population_rows())
    assert run("build-global", "--seed", "0")[0] == 0
    before = global_memory.load(fake_env / "global")
    code, _, err = run("build-global", "--update", "--engine", "spark", "--master", "local[2]")
    assert code == 0, err
    after = global_memory.load(fake_env / "global")
    assert np.array_equal(after.centroids, before.centroids)
    assert np.array_equal(after.community_centroids, before.community_centroids)
    assert after.selection["update"] is True and after.selection["engine"] == "spark"
    assert [c.size for c in after.clusters] == [c.size for c in before.clusters]
    assert {u: p.community for u, p in after.users.items()} == {u: p.community for u, p in before.users.items()}


def test_spark_releases_the_private_statistics_the_local_engine_released(
    spark: Any, fake_env: Path, tmp_path: Path
) -> None:
    """Privacy parity: on the same clusters, Spark computes the same exact cells (what gets noise), and its
    release reads the local build's stored noisy cells, so every view is the same; the ledgers agree."""
    from logo_cli.global_memory import release, versions

    ingest(fake_env, population_rows())
    assert run("build-global", "--seed", "0", "--epsilon", "3")[0] == 0
    local_exact = release.exact_cells(versions.load_exact(fake_env / "global"), release.DEFAULT_PERIOD_DAYS * 86_400)
    local = global_memory.load(fake_env / "global")
    code, _, err = run("build-global", "--update", "--epsilon", "3", "--engine", "spark", "--master", "local[2]")
    assert code == 0, err
    spark_exact = release.exact_cells(versions.load_exact(fake_env / "global"), release.DEFAULT_PERIOD_DAYS * 86_400)
    remote = global_memory.load(fake_env / "global")
    assert local.release is not None and remote.release is not None
    grid = release._grid(local_exact)
    for name, cells in local_exact.items():
        assert cells.keys == spark_exact[name].keys, name
        assert np.array_equal(release._matrix(cells, grid), release._matrix(spark_exact[name], grid)), name
        if name != "communities":  # drawn afresh every build, by design
            ours, theirs = local.release.families[name], remote.release.families[name]
            closed = ours.periods != release.UNDATED
            assert np.array_equal(ours.noisy[:, closed], theirs.noisy[:, closed]), name
    when = float(np.max(local.items.user_ts)) + 400 * 86_400  # after every dated period closed
    a, b = local.as_of(when), remote.as_of(when)
    assert [c.size for c in a.clusters] == [c.size for c in b.clusters]
    assert [c.rating_mean for c in a.clusters] == [c.rating_mean for c in b.clusters]
    sa, sb = a.items.snapshot(when, 3), b.items.snapshot(when, 3)
    assert np.array_equal(sa.users, sb.users) and np.allclose(sa.rating_mean, sb.rating_mean, equal_nan=True)
    first, second = remote.release.ledger
    assert [(r["statistic"], r["epsilon"], r["scale"], r["cells"]) for r in first["releases"]] == [
        (r["statistic"], r["epsilon"], r["scale"], r["cells"]) for r in second["releases"]
    ]
