"""Global memory on real data nobody here wrote: a MovieLens slice, real embedder and Chroma."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from logo_cli import global_memory
from logo_cli.config import Settings
from logo_cli.convert import as_written, movielens
from logo_cli.embed import load_embedder
from logo_cli.evaluate import cluster_agreement
from logo_cli.local_memory.store import Store

from .helpers import FIXTURES, full_data, logo, run

pytestmark = pytest.mark.real
MOVIELENS = FIXTURES / "ml-latest-small"  # 12 real users' ratings; the full set is under LOGO_EVAL_DATA


@pytest.fixture(scope="module")
def slice_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("ml")
    converted = movielens(MOVIELENS, root / "data", max_users=12, cold_share=0.2, seed=1)
    assert converted.records > 500 and converted.questions > 100 and converted.cold_start_users == 2
    home = root / "home"
    done = logo(home, "ingest", converted.records_file)
    assert done.returncode == 0, done.stderr
    done = logo(home, "build-global", "--seed", "0", "--min-users", "2")
    assert done.returncode == 0, done.stderr
    yield home, Path(converted.eval_file)


def test_convert_splits_each_user_chronologically(tmp_path: Path) -> None:
    out = movielens(MOVIELENS, tmp_path, max_users=5, cold_share=0.0)
    records = [json.loads(line) for line in Path(out.records_file).read_text().splitlines()]
    questions = [json.loads(line) for line in Path(out.eval_file).read_text().splitlines()]
    for user in {r["user"] for r in records}:
        last_history = max(r["timestamp"] for r in records if r["user"] == user)
        held_out = [q for q in questions if q["user"] == user]
        assert held_out and all(q["at"] >= last_history for q in held_out)
        assert all(0.5 <= q["gold"] <= 5 and "How would this user rate" in q["query"] for q in held_out)
    assert {r["id"] for r in records}.isdisjoint({q["id"] for q in questions})


def test_clusters_follow_genres(slice_home: tuple[Path, Path]) -> None:
    home, _ = slice_home
    settings = Settings(home=home)
    embedder = load_embedder(settings.embedder_spec())
    store = Store(settings.store_dir).open(embedder.id, embedder.dim, create=False)
    memory = global_memory.load(settings.global_dir)
    agreement = cluster_agreement(memory, store, "genre")
    # measured on this slice: NMI 0.29, purity 0.52 over 15 genres (chance NMI is near 0)
    assert agreement.nmi >= 0.15, agreement
    assert agreement.purity >= 0.35, agreement


def test_at_uses_only_the_past(slice_home: tuple[Path, Path]) -> None:
    home, eval_file = slice_home
    questions = [json.loads(line) for line in eval_file.read_text().splitlines()]
    # the latest question of a user with full history: MovieLens users often rate many films in one second,
    # and records at the question's own time do not count as before it
    question = max((q for q in questions if not q["cold_start_simulated"]), key=lambda q: q["at"])
    done = logo(
        home,
        "ask",
        "--user",
        question["user"],
        "--json",
        "--max-tokens",
        "8",
        "--at",
        str(question["at"]),
        question["query"],
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["local"] and all(item["timestamp"] < result["at"] for item in result["local"])
    memory = global_memory.load(home / "global").as_of(question["at"])
    for used in result["global"]:
        cluster = memory.clusters[used["cluster"]]
        assert (used["size"], used["users"], used["rating_mean"]) == (cluster.size, cluster.users, cluster.rating_mean)


def test_a_rating_question_finds_its_films_population_rating(slice_home: tuple[Path, Path]) -> None:
    """The real embedder matches "How would this user rate TITLE (GENRES)?" to TITLE's records, and the
    population's rating of it counts only ratings from before --at."""
    home, eval_file = slice_home
    questions = [json.loads(line) for line in eval_file.read_text().splitlines()]
    memory = global_memory.load(home / "global")
    question = next(
        q for q in questions if memory.as_of(q["at"]).item_rating(q["item"]) is not None and q["cold_start_simulated"]
    )
    mean, ratings = memory.as_of(question["at"]).item_rating(question["item"])  # type: ignore[misc]
    done = logo(home, "ask", "-u", question["user"], "--json", "--max-tokens", "4", "--at", str(question["at"]),
                question["query"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    evidence = json.loads(done.stdout)["evidence"]
    top = evidence["items"][0]
    assert (top["item"], top["ratings"], top["rating_mean"]) == (question["item"], ratings, round(mean, 3))
    assert top["similarity"] >= 0.5


def test_eval_harness_on_a_slice(slice_home: tuple[Path, Path], tmp_path: Path) -> None:
    """The harness end to end with the real model on a few questions (full runs live in README/bench)."""
    home, eval_file = slice_home
    done = logo(
        home,
        "eval",
        str(eval_file),
        "--per-bucket",
        "3",
        "--methods",
        "none,local,logo",
        "--json",
        "--seed",
        "0",
        "--plot",
        str(tmp_path / "eval.png"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["items"] >= 4 and "cold_start" in report["buckets"]
    rows = {(r["method"], r["bucket"]): r for r in report["rows"]}
    for method in ("none", "local", "logo"):
        overall = rows[(method, "all")]
        assert overall["metric"] == "mae" and 0 <= overall["value"] <= 4.5 and overall["rmse"] >= overall["value"]
    assert rows[("logo", "all")]["evidence_mae"] is not None
    assert rows[("none", "all")]["prompt_tokens"] < rows[("logo", "all")]["prompt_tokens"]
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"


def test_convert_reports_bad_ratings_as_file_and_line(tmp_path: Path) -> None:
    data, out = tmp_path / "ml", tmp_path / "out"
    data.mkdir()
    (data / "movies.csv").write_text("movieId,title,genres\n1,Heat (1995),Action\n")
    ratings = data / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,1,abc,200\n")
    code, _, err = run("convert", "movielens", str(data), "--out", str(out))
    assert code == 3 and f"{ratings}:3: rating 'abc' is not a number" in err, err
    ratings.write_text("user,movie,rating,timestamp\n1,1,4.0,100\n")
    code, _, err = run("convert", "movielens", str(data), "--out", str(out))
    assert code == 3 and f"{ratings}:1: no column userId, movieId" in err
    assert "the header must name userId, movieId, rating, timestamp" in err
    assert not out.exists()


def test_convert_writes_recommend_questions_from_held_out_liked_films(tmp_path: Path) -> None:
    out = movielens(MOVIELENS, tmp_path, cold_share=0.0)
    assert out.recommend_file is not None and out.recommend_questions > 0
    records = [json.loads(line) for line in Path(out.records_file).read_text().splitlines()]
    questions = [json.loads(line) for line in Path(out.recommend_file).read_text().splitlines()]
    ratings = [json.loads(line) for line in Path(out.eval_file).read_text().splitlines()]
    for q in questions:
        held_out = [r for r in ratings if r["user"] == q["user"]]
        liked = {r["item"] for r in held_out if r["gold"] >= 4}
        assert q["answer_type"] == "recommend" and set(q["gold"]) <= liked and q["gold"]
        assert q["at"] == min(r["at"] for r in held_out)
        history = {r["item"] for r in records if r["user"] == q["user"]}
        assert not history & set(q["gold"]), "a user's history never holds their gold"
        if q["variant"] == "genre":
            assert q["query"] == f"Recommend 10 {q['genre'].lower()} films for me."
        else:
            assert set(q["gold"]) == liked and q["query"] == "Recommend 10 films for me to watch next."


def test_convert_writes_choice_questions_a_person_could_answer(tmp_path: Path) -> None:
    """One held-out film the user liked against films they disliked (seen) or never rated (unseen), titles as
    people write them, the gold among the options, asked when the held-out part starts."""
    out = movielens(MOVIELENS, tmp_path, cold_share=0.0, unseen_raters=3)  # 12 users: few films have 10 raters
    assert out.choice_file is not None and out.choice_questions > 0
    questions = [json.loads(line) for line in Path(out.choice_file).read_text().splitlines()]
    ratings = [json.loads(line) for line in Path(out.eval_file).read_text().splitlines()]
    records = [json.loads(line) for line in Path(out.records_file).read_text().splitlines()]
    titles = {r["item"] for r in [*records, *ratings]}
    assert {q["variant"] for q in questions} == {"seen", "unseen"}
    for q in questions:
        held_out = {r["item"]: r["gold"] for r in ratings if r["user"] == q["user"]}
        assert q["answer_type"] == "choice" and q["gold"] in q["candidates"] and 2 <= len(q["candidates"]) <= 5
        assert q["at"] == min(r["at"] for r in ratings if r["user"] == q["user"])
        assert not any(c.endswith(", The") or ", The (" in c for c in q["candidates"])  # "The Matrix (1999)"
        as_stored = {c: next(t for t in titles if as_written(t) == c) for c in q["candidates"]}
        assert held_out[as_stored[q["gold"]]] >= 4
        others = [as_stored[c] for c in q["candidates"] if c != q["gold"]]
        if q["variant"] == "seen":
            assert all(held_out[o] <= 2 for o in others)
        else:
            mine = {r["item"] for r in records if r["user"] == q["user"]} | set(held_out)
            assert not mine & set(others)


def test_recommend_eval_on_a_slice(slice_home: tuple[Path, Path], tmp_path: Path) -> None:
    """Recommend questions through `logo eval` with the real embedder and store: every named item is public in
    memory and none is the user's own; logo's rows stand beside popularity and item-kNN."""
    home, eval_file = slice_home
    recommend = eval_file.parent / "recommend.jsonl"
    done = logo(home, "eval", str(recommend), "--methods", "local,logo", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {(r["method"], r["bucket"]): r for r in report["rows"]}
    assert {m for m, _ in rows} == {"local", "logo", "popularity", "item-knn"}
    genre = [r for (m, b), r in rows.items() if b == "all" and "genre_precision" in (r["extra"] or {})]
    assert genre and all(0 <= r["extra"]["genre_precision"] <= 1 for r in genre)
    assert rows[("logo", "all")]["metric"] == "hr@10" and "ndcg@10" in rows[("logo", "all")]["extra"]
    checks = report["checks"]
    assert checks["recommended_named"] > 0
    assert checks["recommended_not_in_memory"] == 0 and checks["recommended_already_had"] == 0
    assert checks["recommend_text_mismatches"] == 0


def test_convert_the_full_movielens(tmp_path: Path) -> None:
    out = movielens(full_data("ml-latest-small"), tmp_path, seed=0)
    assert (out.users, out.records, out.questions, out.cold_start_users) == (671, 72533, 20003, 67)
    assert out.recommend_questions == 1312 and out.choice_questions == 960
