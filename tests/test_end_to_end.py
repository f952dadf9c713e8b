"""End to end on the real components: the packaged all-MiniLM-L6-v2, Chroma on disk, and the packaged
SmolLM2 GGUF run by llama.cpp, over sample_histories/, through the installed `logo` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .helpers import HISTORIES, SAMPLES, lines, logo

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("real") / "home"
    done = logo(home, "ingest", str(HISTORIES))
    assert done.returncode == 0, done.stderr
    summary = lines(done.stdout)[0]
    assert summary["added"] == summary["read"] > 0 and summary["invalid"] == 0
    assert summary["embedder"] == "sentence-transformers:all-MiniLM-L6-v2"
    # exact figures: these tests check what the data says; the demo's private build is tested at the end
    done = logo(home, "build-global", "--seed", "0")  # LOGO_EPSILON=inf (conftest), as every test here
    assert done.returncode == 0, done.stderr
    yield home


@pytest.fixture(scope="module")
def people() -> dict[str, dict]:
    return json.loads((SAMPLES / "users.json").read_text())


@pytest.fixture(scope="module")
def owner() -> dict[str, str]:
    """Record id -> the user who wrote it."""
    return {r["id"]: r["user"] for r in map(json.loads, HISTORIES.read_text().splitlines())}


@pytest.fixture(scope="module")
def answers(home: Path, people: dict[str, dict]) -> dict[str, dict]:
    """One batch run (models loaded once) over a question per kind of user."""
    questions = [json.loads(line) for line in (SAMPLES / "questions.jsonl").read_text().splitlines() if line.strip()]
    chosen: dict[str, dict] = {}
    for q in questions:
        kind = q["kind"] if q["user"] in people else "unknown"
        chosen.setdefault(kind, q)
    assert {"cold_start", "biased_off_profile", "regular", "unknown"} <= set(chosen)
    stdin = "".join(  # open answers: these tests are about the model and the context it gets
        json.dumps({"user": q["user"], "query": q["query"], "id": kind, "answer_type": "open"}) + "\n"
        for kind, q in chosen.items()
    )
    done = logo(home, "ask", "-", "--max-tokens", "48", input=stdin)
    assert done.returncode == 0, done.stderr
    return {r["id"]: r for r in lines(done.stdout)}


def test_reingest_adds_nothing(home: Path) -> None:
    done = logo(home, "ingest", str(HISTORIES))
    assert done.returncode == 0
    summary = lines(done.stdout)[0]
    assert summary["added"] == 0 and summary["duplicates"] == summary["read"]


def test_global_memory_found_the_population(home: Path, people: dict[str, dict]) -> None:
    from logo_cli import global_memory

    memory = global_memory.load(home / "global")
    assert 4 <= len(memory.clusters) <= 40
    assert set(memory.users) == set(people)
    assert memory.communities and all(c.top_clusters for c in memory.communities)
    assert all(c.keywords for c in memory.clusters)


def test_clusters_match_the_sample_areas(home: Path) -> None:
    from logo_cli import global_memory
    from logo_cli.config import default_embedder_path
    from logo_cli.embed import load_embedder
    from logo_cli.evaluate import cluster_agreement
    from logo_cli.local_memory.store import Store

    embedder = load_embedder(str(default_embedder_path()))
    store = Store(home / "store").open(embedder.id, embedder.dim, create=False)
    agreement = cluster_agreement(global_memory.load(home / "global"), store, "area")
    assert agreement.classes == 8
    assert agreement.nmi >= 0.6 and agreement.purity >= 0.65, agreement  # measured: NMI 0.67, purity 0.73


def test_biased_users_have_low_diversity(home: Path, people: dict[str, dict]) -> None:
    from logo_cli import global_memory

    memory = global_memory.load(home / "global")
    biased = sorted(memory.users[u].diversity for u, p in people.items() if p["kind"] == "biased")
    regular = sorted(memory.users[u].diversity for u, p in people.items() if p["kind"] == "regular")
    assert biased[len(biased) // 2] < regular[len(regular) // 2] / 2
    from logo_cli.rules import BIASED_MAX_DIVERSITY, BIASED_MIN_HISTORY

    flagged = {
        u
        for u, p in memory.users.items()
        if p.history >= BIASED_MIN_HISTORY.default and p.diversity <= BIASED_MAX_DIVERSITY.default
    }
    assert flagged == {u for u, p in people.items() if p["kind"] == "biased"}  # measured: the 7, no one else
    # the measure also ranks narrow users below regular ones (AUC), whatever their history's length
    auc = np.mean([[float(b < r) + 0.5 * float(b == r) for r in regular] for b in biased])
    assert auc >= 0.85, auc  # measured: 0.88


def test_answers_are_real_and_stamped(answers: dict[str, dict]) -> None:
    for result in answers.values():
        assert result["answer"].strip()
        assert "SmolLM2" in result["models"]["llm"]
        assert result["models"]["embedder"] == "sentence-transformers:all-MiniLM-L6-v2"
        assert 0 < result["tokens"]["prompt"] <= 600 and 0 < result["tokens"]["completion"] <= 49


@pytest.fixture(scope="module")
def typed(home: Path) -> dict[str, dict]:
    """The demo's questions, each answered by the type the rule gives it."""
    questions = {
        "rating": ("maya", "How would I rate Barbie on a scale from 1 to 5?"),
        "rated": ("maya", "How would I rate Dune: Part Two?"),  # she rated it 3.5
        "cold_start": ("ines", "What's an easy dinner I could cook tonight?"),
        "biased": ("hollis", "What should I cook for dinner tonight?"),
        "regular": ("maya", "Recommend three films for this weekend."),
        "choice": ("maya", "Which should I watch: A) Barbie B) Conclave"),
    }
    stdin = "".join(json.dumps({"user": u, "query": q, "id": key}) + "\n" for key, (u, q) in questions.items())
    done = logo(home, "ask", "-", input=stdin)
    assert done.returncode == 0, done.stderr
    return {r["id"]: r for r in lines(done.stdout)}


def test_a_rating_is_a_number_on_the_scale_that_says_where_it_comes_from(typed: dict[str, dict]) -> None:
    result = typed["rating"]
    assert result["answer_type"] == "rating" and result["rating"]["scale"] == [1.0, 5.0, 1.0]
    value = result["answer_value"]
    assert value in (1, 2, 3, 4, 5) and result["answer"].startswith(f"{value:g}/5: ")
    assert "ratings of Barbie average" in result["answer"]  # the item's population rating, by name
    assert abs(value - result["evidence"]["rating_estimate"]) <= 1.0
    assert "SmolLM2" in result["models"]["llm"]


def test_a_rating_the_user_gave_is_quoted_not_estimated(typed: dict[str, dict]) -> None:
    result = typed["rated"]
    assert result["answer"] == "3.5/5: you rated Dune: Part Two 3.5/5 on 2025-08-13."
    assert result["rating"]["head"] == "own" and result["models"]["llm"] is None  # no model read it


def test_recommendations_name_only_items_from_memory_the_user_does_not_have(home: Path, typed: dict[str, dict]) -> None:
    records = [json.loads(line) for line in HISTORIES.read_text().splitlines()]
    sharers: dict[str, set[str]] = {}
    for r in records:
        if r.get("item"):
            sharers.setdefault(r["item"], set()).add(r["user"])
    for key in ("cold_start", "biased", "regular"):
        result = typed[key]
        assert result["answer_type"] == "recommend", key
        names = result["answer_value"]
        assert names and [r["item"] for r in result["recommendations"]] == names
        mine = {r["item"] for r in records if r["user"] == result["user"] and r.get("item")}
        for name in names:
            assert len(sharers[name]) >= 3, f"{name}: not a shared item"  # public: min_users people
            assert name not in mine, f"{name}: the user already has it"
            assert name in result["answer"]
        assert result["models"]["llm"] is None  # no model: nothing it could invent
    assert len(typed["regular"]["answer_value"]) == 3  # "three films"
    assert typed["biased"]["flags"]["biased"] is True


def test_a_listed_choice_is_one_of_the_options_with_what_memory_knows(typed: dict[str, dict]) -> None:
    result = typed["choice"]
    assert result["answer_type"] == "choice" and result["answer_value"] in ("Barbie", "Conclave")
    assert result["answer"].startswith(f"{result['answer_value']}: ")  # the pick, then a reason from memory
    assert {c["option"] for c in result["choices"]} == {"Barbie", "Conclave"}
    for choice in result["choices"]:  # both films are items of global memory: matched, with memory's estimate
        assert choice["item"] == choice["option"] and choice["memory"]["estimate"] is not None
        assert set(choice["features"]) == {"model", "estimate", "together", "popular", "content", "stated"}
    assert sum(c["probability"] for c in result["choices"]) == pytest.approx(1.0, abs=1e-3)


def test_cold_start_context_holds_global_clusters(answers: dict[str, dict]) -> None:
    for kind in ("cold_start", "unknown"):
        result = answers[kind]
        assert result["flags"]["cold_start"] is True
        assert result["global"], f"{kind}: no global clusters in the context"
        assert result["weights"]["global"] > result["weights"]["local"]
        assert result["community"] is not None


def test_biased_user_off_profile_leans_on_global(answers: dict[str, dict]) -> None:
    result = answers["biased_off_profile"]
    assert result["flags"]["biased"] is True
    assert result["flags"]["off_profile"] is True
    assert result["weights"]["global"] > result["weights"]["local"]


def test_context_never_holds_another_users_records(home: Path, owner: dict[str, str], people: dict[str, dict]) -> None:
    records = [json.loads(line) for line in HISTORIES.read_text().splitlines()]
    users = sorted(people)[::3]
    stdin = "".join(
        json.dumps({"user": u, "query": q}) + "\n"
        for u in users
        for q in ("What should I do this weekend?", "Recommend me something new")
    )
    done = logo(home, "ask", "-", "--show-prompt", "--local-k", "8", "--max-tokens", "1", input=stdin)
    assert done.returncode == 0, done.stderr
    results = lines(done.stdout)
    assert len(results) == 2 * len(users)
    for result in results:
        assert {owner[item["id"]] for item in result["local"]} <= {result["user"]}
        prompt = "\n".join(m["content"] for m in result["prompt"])
        for record in records:
            text = record.get("text") or record["query"]
            if record["user"] != result["user"] and len(text) > 30:
                assert text[:60] not in prompt, (result["user"], record["id"])
    assert sum(bool(r["local"]) for r in results) >= len(results) // 2  # the check above had records to check


def test_bad_line_exit_3_names_the_line(home: Path, tmp_path: Path) -> None:
    good = HISTORIES.read_text().splitlines()[:5]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*good[:2], '{"user": "x", "text": "ok", "rating": "lots"}', *good[2:]]) + "\n")
    done = logo(home, "ingest", str(bad))
    assert done.returncode == 3
    assert f"{bad}:3: field `rating`" in done.stderr


def item_areas() -> dict[str, set[str]]:
    """Each item of the sample histories -> the areas of the records about it."""
    areas: dict[str, set[str]] = {}
    for r in map(json.loads, HISTORIES.read_text().splitlines()):
        if r.get("item"):
            areas.setdefault(r["item"], set()).add(r["meta"]["area"])
    return areas


def recommend_batch(questions: list[tuple[str, str, str]]) -> str:
    """`ask -` lines asking each (user, question) for a recommendation, with the expected area as its id."""
    return "".join(
        json.dumps({"user": user, "query": query, "id": area, "answer_type": "recommend"}) + "\n"
        for user, query, area in questions
    )


def test_a_recommendation_stays_on_the_question(home: Path) -> None:
    """The demo's questions: a dinner question lists dishes (no city a cook once ate in), a film question films.
    Each listed item's kind is the area of the sample records about it (Sungold tomato is a gardener's)."""
    areas = item_areas()
    stdin = recommend_batch(
        [
            ("ines", "What's an easy dinner I could cook tonight?", "cooking"),
            ("hollis", "What should I cook for dinner tonight?", "cooking"),
            ("maya", "What should I watch this weekend?", "films"),
        ]
    )
    done = logo(home, "ask", "-", input=stdin)
    assert done.returncode == 0, done.stderr
    for answer in lines(done.stdout):
        items = [r["item"] for r in answer["recommendations"]]
        assert len(items) >= 3, answer["answer"]
        kinds = [areas[item] for item in items]
        assert sum(k == {answer["id"]} for k in kinds) >= 3, answer["answer"]
        near = {"cooking": {"cooking", "gardening"}, "films": {"films"}}[answer["id"]]  # a tomato one grows: near
        assert all(k <= near for k in kinds), answer["answer"]


def private_demo_answers(home: Path, private: Path) -> dict[str, dict]:
    """A fresh private build of the sample store (the default budget, as `make demo` runs), then ines's dinner
    and maya's weekend question; the answers by their expected area. Each call draws new noise."""
    import shutil

    shutil.copytree(home / "store", private / "store")
    done = logo(private, "build-global", "--seed", "0", "--epsilon", "3")
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)[0]["privacy"]["epsilon"] == 3.0
    stdin = recommend_batch(
        [
            ("ines", "What's an easy dinner I could cook tonight?", "cooking"),
            ("maya", "What should I watch this weekend?", "films"),
        ]
    )
    done = logo(private, "ask", "-", input=stdin)
    assert done.returncode == 0, done.stderr
    answers = {answer["id"]: answer for answer in lines(done.stdout)}
    for answer in answers.values():
        assert answer["privacy"]["epsilon"] == 3.0
    return answers


def holds_a_film_or_says_none_fits(answer: dict, areas: dict[str, set[str]]) -> bool:
    if "recommendations" not in answer:
        # noise can read most films' 3-4 people as fewer than 3: no public film is near the question
        assert "no shared item in memory fits" in answer["note"] and answer["answer"], answer
        return True
    return any(areas[r["item"]] <= {"films"} for r in answer["recommendations"])


def test_the_demo_under_privacy_still_answers_on_the_question(home: Path, tmp_path: Path) -> None:
    """`make demo` builds with the default budget. Noise hides some items of a 48-person store (a count of 3-5
    people can read 2) and drops the community term that kept maya's "watch this weekend" list on films, so
    books and cities take places in it (`bench/privacy_demo.py`, 80 builds: about 3 films of 5 on average).
    What holds: a dinner list stays dishes, and both say the figures are private.

    A film list holds a film in all but about 1 build in 150 (one list seen of Kyoto, Couch to 5K, James,
    Amsterdam, Porto: the films' noisy counts all read below 3 people). OpenDP draws noise without a seed, so
    that rare build is a property of the guarantee, not a fault: a list without a film gets one fresh build,
    which must hold one. Two such builds in a row come about 1 run in 20,000; a change that lost films from
    the list would fail both."""
    areas = item_areas()
    answers = private_demo_answers(home, tmp_path / "first")
    dinner = [areas[r["item"]] for r in answers["cooking"]["recommendations"]]
    assert dinner and all(kind <= {"cooking", "gardening"} for kind in dinner), answers["cooking"]["answer"]
    films = answers["films"]
    if not holds_a_film_or_says_none_fits(films, areas):
        films = private_demo_answers(home, tmp_path / "second")["films"]
        assert holds_a_film_or_says_none_fits(films, areas), films["answer"]
