"""Global memory: time views, privacy, atomic and incremental builds, the views (fake models, real Chroma)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from logo_cli import global_memory
from logo_cli.cli import app
from logo_cli.config import Settings
from logo_cli.embed import load_embedder
from logo_cli.global_memory.build import BuildOptions, build_global
from logo_cli.local_memory.store import Store

from .helpers import make_records, write_jsonl

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def built(fake_env: Path, population: Path) -> Path:
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3", "--seed", "0")[0] == 0
    return fake_env


def store_and_memory(home: Path) -> tuple[Store, global_memory.GlobalMemory]:
    embedder = load_embedder("fake")
    store = Store(home / "store").open(embedder.id, embedder.dim, create=False)
    return store, global_memory.load(home / "global")


def test_as_of_counts_only_earlier_records(built: Path) -> None:
    store, memory = store_and_memory(built)
    records, vectors = [], []
    for page in store.pages():
        records += page.records
        vectors.append(page.embeddings)
    assigned = memory.assign(np.concatenate(vectors))
    times = sorted(r.timestamp for r in records if r.timestamp is not None)
    for when in (times[0] - 1, times[len(times) // 3], times[2 * len(times) // 3], times[-1] + 1):
        view = memory.as_of(when)
        for cluster in view.clusters:
            mine = [r for r, c in zip(records, assigned, strict=True) if c == cluster.id and r.timestamp < when]
            assert cluster.size == len(mine)
            assert cluster.users == len({r.user for r in mine})
            assert cluster.private == (cluster.users < 3)
            raters = {r.user for r in mine if r.rating is not None}
            if len(raters) >= 3:
                expected = np.mean([r.rating for r in mine if r.rating is not None])
                assert cluster.rating_mean == pytest.approx(expected, abs=1e-3)
            else:
                assert cluster.rating_mean is None
            for item, users in cluster.top_items:
                assert users == len({r.user for r in mine if r.item == item}) >= 3
        assert all(c.examples == [] for c in view.clusters)  # texts carry no time: none in a view
        started = sum(edge < when for edge in memory.segments[:-1])
        assert all(len(c.trend) == started for c in view.clusters)  # no zero-filled future periods
    early = memory.as_of(times[0] - 1)
    assert all(c.size == 0 and c.private for c in early.clusters)
    late = memory.as_of(times[-1] + 1)
    assert [c.size for c in late.clusters] == [c.size for c in memory.clusters]
    assert [c.top_items for c in late.clusters] == [c.top_items for c in memory.clusters]


def test_item_table_holds_each_shared_items_ratings_as_of_any_time(built: Path, population: Path) -> None:
    _, memory = store_and_memory(built)
    records = [json.loads(line) for line in population.read_text().splitlines()]
    assert memory.items is not None
    raters = {item: {r["user"] for r in records if r["item"] == item} for item in {r["item"] for r in records}}
    assert set(memory.items.names) == {item for item, users in raters.items() if len(users) >= 3}
    store, _ = store_and_memory(built)
    sums: dict[str, np.ndarray] = {}
    for page in store.pages():
        for record, vector in zip(page.records, page.embeddings, strict=True):
            if record.item and record.rating is not None:
                sums[record.item] = sums.get(record.item, 0) + vector
    for name, vector in zip(memory.items.names, memory.items.vectors, strict=True):
        assert np.allclose(vector, sums[name] / np.linalg.norm(sums[name]), atol=1e-5)
    times = sorted(r["timestamp"] for r in records)
    for when in (times[0], times[len(times) // 2], times[-1] + 1):
        view = memory.as_of(when)
        for item in memory.items.names:
            before = [r for r in records if r["item"] == item and r["timestamp"] < when]
            expected = None
            if len({r["user"] for r in before}) >= 3:
                expected = (pytest.approx(np.mean([r["rating"] for r in before])), len(before))
            assert view.item_rating(item) == expected, (item, when)


def test_a_rating_the_user_gave_is_the_answer(built: Path) -> None:
    code, out, err = run("ask", "--user", "film0", "--json", "How would I rate Jaws?")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["answer"].startswith("5/5: you rated Jaws 5/5 on 2025-")
    assert answer["rating"]["head"] == "own" and answer["models"]["llm"] is None
    assert answer["evidence"]["own_rating"]["id"] == "film0-9"  # the latest of the two
    code, out, _ = run("ask", "--user", "film0", "--json", "How would I rate Jaws out of 10?")
    assert json.loads(out)["answer"].startswith("10/10: you rated Jaws 5/5")
    code, out, _ = run("ask", "--user", "film0", "--json", "--at", "2025-01-02", "How would I rate Jaws?")
    assert json.loads(out)["evidence"] is None or json.loads(out)["evidence"]["own_rating"] is None  # not yet


def test_memorys_estimate_moves_to_the_scale_the_question_states(built: Path) -> None:
    _, out, _ = run("ask", "--user", "cook0", "--json", "How would I rate Jaws?")
    fives = json.loads(out)["evidence"]["rating_estimate"]
    _, out, _ = run("ask", "--user", "cook0", "--json", "How would I rate Jaws out of 10?")
    tens = json.loads(out)["rating"]
    assert tens["scale"] == [1.0, 10.0, 1.0]
    assert tens["estimate"] == pytest.approx(1 + (fives - 1) * 9 / 4, abs=0.01)  # 4.5 of 5 is not 4.5 of 10


def test_memory_built_before_item_tables_still_answers(built: Path) -> None:
    folder = built / "global" / (built / "global" / "CURRENT").read_text().strip()
    (folder / "items.npz").unlink()
    assert global_memory.load(built / "global").items is None
    code, out, err = run("ask", "--user", "film0", "--json", "How would I rate Alien?")
    assert code == 0, err
    assert json.loads(out)["evidence"]["items"] == []


def test_ask_at_uses_statistics_from_before(built: Path) -> None:
    _, memory = store_and_memory(built)
    code, out, _ = run("ask", "--user", "cook1", "--json", "--memory", "global", "--global-k", "3", "recipe dinner")
    now = json.loads(out)["global"]
    code, out, _ = run(
        "ask", "--user", "cook1", "--json", "--memory", "global", "--at", "2025-02-10T00:00:00Z", "recipe dinner"
    )
    assert code == 0
    then = json.loads(out)["global"]
    assert then and now
    by_id = {g["cluster"]: g for g in now}
    for g in then:
        assert g["size"] <= memory.clusters[g["cluster"]].size
        if g["cluster"] in by_id:
            assert g["size"] < by_id[g["cluster"]]["size"]


def test_undated_records_are_left_out_of_as_of_views(fake_env: Path, tmp_path: Path) -> None:
    rows = make_records({"a": ("films", 4), "b": ("films", 4), "c": ("films", 4)})
    for row in rows[::2]:
        del row["timestamp"]
    assert run("ingest", str(write_jsonl(tmp_path / "r.jsonl", rows)))[0] == 0
    assert run("build-global", "--clusters", "1")[0] == 0
    memory = global_memory.load(fake_env / "global")
    assert memory.clusters[0].size == 12
    assert memory.as_of(4e9).clusters[0].size == 6


def test_crashed_build_leaves_previous_version(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = global_memory.load(built / "global")

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(global_memory.versions.np, "savez", crash)
        code, _, _ = run("build-global", "--clusters", "4")
    assert code != 0
    assert list((built / "global").glob(".tmp-*")), "the half-written version stays aside"
    after = global_memory.load(built / "global")
    assert after.version == before.version and len(after.clusters) == 3
    assert run("ask", "--user", "cook1", "--json", "dinner?")[0] == 0
    code, out, err = run("build-global", "--clusters", "4")
    assert code == 0, err
    assert json.loads(out)["clusters"] == 4
    assert not list((built / "global").glob(".tmp-*"))


def test_killed_builds_never_break_global_memory(built: Path) -> None:
    env = {**os.environ}
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "logo_cli", "build-global", "--clusters", str(rng.randint(2, 5))],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        memory = global_memory.load(built / "global")  # always a complete version
        assert memory.centroids.shape[0] == len(memory.clusters)
    assert run("build-global", "--clusters", "3")[0] == 0


def test_update_keeps_clusters_and_advises_rebuild(built: Path, tmp_path: Path) -> None:
    before = global_memory.load(built / "global")
    more = make_records({f"late{i}": ("travel", 10) for i in range(8)}, start=1_760_000_000)
    assert run("ingest", str(write_jsonl(tmp_path / "more.jsonl", more)))[0] == 0
    code, out, err = run("build-global", "--update")
    assert code == 0, err
    summary = json.loads(out)
    after = global_memory.load(built / "global")
    assert np.array_equal(after.centroids, before.centroids)
    assert after.records == before.records + 80 and "late0" in after.users
    assert summary["drift"]["new_records_share"] == pytest.approx(80 / 255, abs=1e-3)
    assert summary["drift"]["rebuild_advised"] is True and "re-cluster" in err
    assert run("build-global", "--update", "--clusters", "3")[0] == 2


def test_update_without_previous_build_is_not_found(fake_env: Path, population: Path) -> None:
    run("ingest", str(population))
    code, _, err = run("build-global", "--update")
    assert code == 4 and "build-global" in err


def test_global_lines_one_cluster_and_plot(built: Path, tmp_path: Path) -> None:
    code, out, _ = run("global")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == [0, 1, 2]
    assert all({"keywords", "users", "top_items", "trend", "trend_word", "community"} <= set(r) for r in rows)
    code, out, _ = run("global", "--cluster", "1")
    assert code == 0 and json.loads(out)["id"] == 1
    assert run("global", "--cluster", "9")[0] == 4
    png = tmp_path / "map.png"
    code, _, _ = run("global", "--plot", str(png))
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_global_plot_checks_its_path_and_says_the_file_it_wrote(built: Path, tmp_path: Path) -> None:
    code, _, err = run("global", "--plot", str(tmp_path / "nowhere" / "map.png"))
    assert code == 2 and f"there is no folder {tmp_path / 'nowhere'}" in err
    code, _, err = run("global", "--plot", str(tmp_path / "map.txt"))
    assert code == 2 and "matplotlib cannot write .txt files" in err and ".png" in err
    (tmp_path / "out.d").mkdir()
    for folder in (tmp_path / "out.d", Path(".")):  # a folder is no file to plot into (`.` raised ValueError)
        code, _, err = run("global", "--plot", str(folder))
        assert code == 2 and "is a folder" in err
    code, _, err = run("global", "--plot", str(tmp_path / "map"))  # no suffix: matplotlib adds .png
    assert code == 0 and f"wrote {tmp_path / 'map.png'}" in err and (tmp_path / "map.png").is_file()


def test_profile(built: Path) -> None:
    code, out, _ = run("profile", "--user", "narrow")
    view = json.loads(out)
    assert code == 0 and view["history"] == 30 and view["biased"] is True and view["diversity"] < 0.35
    assert view["dominant"] and view["community"] is not None
    code, out, _ = run("profile", "--user", "narrow", "--at", "2025-02-20T00:00:00Z")
    then = json.loads(out)
    assert code == 0 and 0 < then["history"] < 30
    ratings = [1 + i % 5 for i in range(then["history"])]  # the user's own mean as of then (it read null)
    assert then["rating_mean"] == pytest.approx(sum(ratings) / len(ratings), abs=1e-3)
    code, out, _ = run("profile", "--user", "narrow", "--biased-max-diversity", "0.0", "--biased-min-history", "50")
    assert json.loads(out)["biased"] is False
    assert run("profile", "--user", "nobody")[0] == 4


def test_seed_gives_same_build(fake_env: Path, population: Path) -> None:
    settings = Settings(home=fake_env)
    embedder = load_embedder("fake")
    store = Store(settings.store_dir)
    from logo_cli.local_memory.ingest import ingest

    ingest([str(population)], store, embedder)
    a = build_global(store, embedder.id, embedder.dim, settings.global_dir, BuildOptions(seed=3))
    b = build_global(store, embedder.id, embedder.dim, settings.global_dir, BuildOptions(seed=3))
    assert np.allclose(a.centroids, b.centroids)
    assert {u: p.distribution for u, p in a.users.items()} == {u: p.distribution for u, p in b.users.items()}


def test_describe_writes_cached_descriptions(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("build-global", "--clusters", "3", "--describe")
    assert code == 0, err
    memory = global_memory.load(built / "global")
    described = [c for c in memory.clusters if not c.private]
    assert described and all(c.description and c.keywords[0] in c.description for c in described)
    cache = json.loads((built / "descriptions.json").read_text())
    assert len(cache) == len(described)

    from logo_cli.llm import FakeGenerator

    def no_model(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the cache should have answered")

    with monkeypatch.context() as patch:
        patch.setattr(FakeGenerator, "stream", no_model)
        code, _, err = run("build-global", "--clusters", "3", "--describe")
    assert code == 0, err
    again = global_memory.load(built / "global")
    assert [c.description for c in again.clusters] == [c.description for c in memory.clusters]
