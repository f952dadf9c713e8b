"""The evaluation harness: metrics, input validation, buckets, and a run through every memory mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from logo_cli.cli import app
from logo_cli.errors import BadRecord
from logo_cli.evaluate import bucket_of, load_eval, number_in_text, ranking_metrics, rouge_l
from logo_cli.mediator import build_profile
from logo_cli.records import Record

from .helpers import FIXTURES, full_data, write_jsonl

runner = CliRunner()


def test_ranking_metrics() -> None:
    assert ranking_metrics(["a", "b", "c"], ["c", "z"], 3) == pytest.approx(
        {"hit": 1.0, "recall": 0.5, "ndcg": (1 / np.log2(4)) / (1 + 1 / np.log2(3))}
    )
    assert ranking_metrics(["a", "b"], ["z"], 2) == {"hit": 0.0, "recall": 0.0, "ndcg": 0.0}
    assert ranking_metrics(["z", "a"], ["z"], 1)["ndcg"] == 1.0
    assert number_in_text("3.5/5: because") == 3.5 and number_in_text("maybe 4") is None


def test_rouge_l() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("a b c d", "a x c y") == pytest.approx(0.5)


def test_buckets() -> None:
    assert bucket_of(True, True, True) == "cold_start"
    assert bucket_of(False, True, True) == "biased_off_profile"
    assert bucket_of(False, True, False) == "biased_on_profile"
    assert bucket_of(False, False, True) == "regular"


def test_load_eval_validates(tmp_path: Path) -> None:
    good = write_jsonl(
        tmp_path / "e.jsonl",
        [
            {"user": "a", "query": "rate X?", "gold": 4, "at": "2025-01-01"},
            {"user": "a", "query": "which?", "gold": "b", "candidates": ["a", "b"]},
            {"user": "a", "query": "say", "gold": "words"},
        ],
    )
    items = load_eval(str(good))
    assert [i.kind for i in items] == ["number", "choice", "text"]
    bad = write_jsonl(tmp_path / "b.jsonl", [{"user": "a", "query": "q", "gold": "z", "candidates": ["a", "b"]}])
    with pytest.raises(BadRecord, match=":1: `gold` must be one of") as caught:
        load_eval(str(bad))
    assert caught.value.hint == "Fix the line and run again: nothing was scored."  # eval reads all lines first


def test_profile_is_built_from_the_users_own_records() -> None:
    history = [
        Record("u", "Loved it", "1", item="Heat", rating=5, timestamp=3),
        Record("u", "Dull", "2", item="Cats", rating=1, timestamp=2),
        Record("u", "I am vegetarian and avoid mushrooms", "3", timestamp=1),
        Record("u", "meh", "4", item="Up", rating=3, timestamp=4, label="family"),
    ]
    lines = build_profile(history, ["film", "crime"])
    assert lines[0] == "usual topics: film, crime"
    assert "likes: Heat (5/5)" in lines and "dislikes: Cats (1/5)" in lines
    assert "said: I am vegetarian and avoid mushrooms" in lines
    assert "labels: family ×1" in lines
    assert not any("said" in line for line in build_profile(history, [], shown={"1", "3"}))


def test_eval_runs_every_method_by_bucket(fake_env: Path, population: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["ingest", str(population)]).exit_code == 0
    assert runner.invoke(app, ["build-global", "--clusters", "3"]).exit_code == 0
    questions = [
        {"id": "n", "user": "newbie", "query": "How would this user rate lasagna?", "gold": 4, "at": 1_740_000_000},
        {"id": "b", "user": "narrow", "query": "How would this user rate a beach hotel trip?", "gold": 2},
        {"id": "r", "user": "cook1", "query": "How would this user rate risotto?", "gold": 5},
        {
            "id": "c",
            "user": "cook1",
            "query": "Which dinner?",
            "gold": "garlic basil recipe",
            "candidates": ["garlic basil recipe", "jet engine manual"],
        },
    ]
    numeric = write_jsonl(tmp_path / "n.jsonl", questions[:3])
    result = runner.invoke(app, ["eval", str(numeric), "--json", "--predictions", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["items"] == 3 and report["buckets"] == {"cold_start": 1, "biased_off_profile": 1, "regular": 1}
    methods = {r["method"] for r in report["rows"]}
    assert methods == {"none", "local", "global", "logo", "user-item-bias"}  # the plain reference as a row
    assert all(r["metric"] == "mae" and r["value"] >= 0 for r in report["rows"])
    logo_all = next(r for r in report["rows"] if r["method"] == "logo" and r["bucket"] == "all")
    assert logo_all["evidence_mae"] is not None
    assert set(logo_all["mae_by_head"]) == {"model", "calibrated", "anchored"}
    assert report["checks"] == {"ratings": 12, "rating_text_mismatches": 0}  # the text says the scored number
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(predictions) == 15
    answers = [p for p in predictions if p["method"] != "user-item-bias"]
    assert all(p["answer_type"] == "rating" and p["prediction"] in (1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5) for p in answers)
    assert runner.invoke(app, ["eval", str(numeric), "--references", "magic"]).exit_code == 2

    choice = write_jsonl(tmp_path / "c.jsonl", questions[3:])
    result = runner.invoke(app, ["eval", str(choice), "--json", "--methods", "none,local"])
    rows = json.loads(result.stdout)["rows"]
    accuracy = {r["method"]: r["value"] for r in rows if r["bucket"] == "all"}
    assert accuracy["local"] == 1.0  # the user's garlic-and-basil history points at the right option
    assert accuracy["chance"] == 0.5 and {"item-mean", "popularity", "item-knn"} <= set(accuracy)


def test_eval_scores_recommendations_beside_plain_recommenders(
    fake_env: Path, population: Path, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["ingest", str(population)]).exit_code == 0
    assert runner.invoke(app, ["build-global", "--clusters", "3"]).exit_code == 0
    questions = [
        {"id": "f", "user": "film0", "query": "Recommend 2 films from the cinema", "gold": ["Heat", "Jaws"]},
        {"id": "n", "user": "newbie", "query": "Suggest a recipe for dinner", "gold": ["ramen"], "count": 3},
    ]
    path = write_jsonl(tmp_path / "r.jsonl", questions)
    result = runner.invoke(app, ["eval", str(path), "--json", "--predictions", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {(r["method"], r["bucket"]): r for r in report["rows"]}
    assert {m for m, _ in rows} == {"none", "local", "global", "logo", "popularity", "item-knn"}
    assert rows[("logo", "all")]["metric"] == "hr@2" or rows[("logo", "all")]["n"] == 2
    assert set(rows[("logo", "all")]["extra"]) >= {"recall@2", "ndcg@2"} or "recall@3" in rows[("logo", "all")]["extra"]
    checks = report["checks"]
    assert checks["recommended_not_in_memory"] == 0 and checks["recommended_already_had"] == 0
    assert checks["recommended_named"] > 0 and checks["recommend_text_mismatches"] == 0
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    newbie = next(p for p in predictions if p["id"] == "n" and p["method"] == "logo")
    assert newbie["k"] == 3 and len(newbie["prediction"]) <= 3
    film = next(p for p in predictions if p["id"] == "f" and p["method"] == "logo")
    assert film["k"] == 2 and not {"Alien", "Heat", "Psycho", "Vertigo", "Jaws"} & set(film["prediction"])


def test_eval_rejects_unknown_methods(fake_env: Path, tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "e.jsonl", [{"user": "a", "query": "q", "gold": 1}])
    result = runner.invoke(app, ["eval", str(f), "--methods", "none,magic"])
    assert result.exit_code == 2


def test_eval_checks_its_output_paths_before_evaluating(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad --plot or --predictions path would otherwise fail only after the whole evaluation ran."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation ran")

    monkeypatch.setattr("logo_cli.evaluate.run_eval", never)
    f = write_jsonl(tmp_path / "e.jsonl", [{"user": "a", "query": "q", "gold": 1}])
    for flag, name in (("--plot", "x.png"), ("--predictions", "p.jsonl"), ("--plot", "x.txt")):
        result = runner.invoke(app, ["eval", str(f), flag, str(tmp_path / "nowhere" / name)])
        assert result.exit_code == 2 and f"{flag} {tmp_path / 'nowhere' / name}:" in result.stderr, result.stderr


def test_convert_prefeval_shuffles_options(tmp_path: Path) -> None:
    folder = FIXTURES / "prefeval"
    result = runner.invoke(app, ["convert", "prefeval", str(folder), "--out", str(tmp_path), "--max-per-topic", "5"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["questions"] == 100
    questions = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert all(q["gold"] in q["candidates"] and len(q["candidates"]) == 4 for q in questions)
    first = sum(q["candidates"][0] == q["gold"] for q in questions)
    assert first < 50, "options must be shuffled: the source lists the correct one first"
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {r["user"] for r in records} == {q["user"] for q in questions}


def test_convert_the_full_prefeval(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", "prefeval", str(full_data("prefeval")), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["questions"] == 1000  # 20 topics x 50
