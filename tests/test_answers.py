"""Answer types: the rule that picks one, rating scales and heads, options, counts, loops, and the recommender
on a hand-made global memory."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from logo_cli.answers import (
    RATING_HEADS,
    AnswerType,
    RatingScale,
    detect,
    expected_value,
    head_distribution,
    looping,
    options_in,
    rating_answer,
    rating_reason,
    rating_text,
    requested_count,
    scale_for,
    scale_from_question,
)
from logo_cli.answers.recommend import RecommendInput, recommend, recommendation_text
from logo_cli.evidence import UserEvidence
from logo_cli.global_memory import Cluster, Community, GlobalMemory, ItemTable
from logo_cli.modes import Memory
from logo_cli.records import Record

from .helpers import make_memory


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How would I rate Dune: Part Two on a scale from 1 to 5?", AnswerType.RATING),
        ("Give Brat a score out of 10", AnswerType.RATING),
        ("Recommend three films for tonight.", AnswerType.RECOMMEND),
        ("What should I watch this weekend?", AnswerType.RECOMMEND),
        ("Where should I go for a long weekend in spring?", AnswerType.RECOMMEND),
        ("Any album suggestions for my commute?", AnswerType.RECOMMEND),
        ("What's an easy dinner I could cook tonight?", AnswerType.RECOMMEND),
        ("Which should I pick: A) Heat B) Alien C) Jaws", AnswerType.CHOICE),
        ("How should I start exercising with a bad knee?", AnswerType.OPEN),
        ("Is it a good idea to learn Rust?", AnswerType.OPEN),
        ("Tell me about pirate films", AnswerType.OPEN),
        ("Why is the sky blue?", AnswerType.OPEN),
    ],
)
def test_the_answer_type_rule(question: str, kind: AnswerType) -> None:
    assert detect(question) == kind


def test_candidates_make_a_choice_whatever_the_question_says() -> None:
    assert detect("How would I rate these?", ["a", "b"]) == AnswerType.CHOICE


def test_options_listed_in_the_question() -> None:
    assert options_in("Which one: A) Heat B) Alien C) Jaws?") == ["Heat", "Alien", "Jaws"]
    assert options_in("Pick one. 1. pasta 2. ramen 3. curry") == ["pasta", "ramen", "curry"]
    assert options_in("The options are: tea, coffee or water.") == ["tea", "coffee", "water"]
    assert options_in("What should I cook tonight?") is None


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("Recommend three films for tonight.", 3),
        ("Top 10 albums?", 10),
        ("Give me a few ideas for dinner", 3),
        ("I have three free days in Amsterdam. Where should I go?", None),
        ("Suggest a quick dinner for two, nothing fancy.", None),
        ("What should I watch this weekend?", None),
        ("Recommend 500 books", 50),
    ],
)
def test_requested_count(question: str, count: int | None) -> None:
    assert requested_count(question) == count


def test_the_scale_comes_from_the_question_then_the_data() -> None:
    assert scale_from_question("How would this user rate Heat on a 0.5-5 scale?") == RatingScale(0.5, 5.0, 0.5)
    assert scale_from_question("Rate it from 1 to 10") == RatingScale(1.0, 10.0, 1.0)
    assert scale_from_question("Score it out of 10, half stars allowed") == RatingScale(0.5, 10.0, 0.5)
    assert scale_from_question("How would I rate Dune: Part Two?") is None
    assert scale_for("How would I rate Dune?", (0.5, 5.0), 0.5) == RatingScale(0.5, 5.0, 0.5)  # MovieLens
    assert scale_for("How would I rate Dune?", None, None) == RatingScale(1.0, 5.0, 1.0)
    assert scale_for("How would I rate Dune?", (1.5, 5.0), 0.5) == RatingScale(1.0, 5.0, 0.5)  # nobody gave 1
    assert RatingScale(0.5, 5.0, 0.5).values == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert RatingScale(1, 5, 1).candidates()[0] == "Rating: 1/5"  # the slash ends the number: 3 is not 3.5


def test_heads() -> None:
    scale = RatingScale()
    flat = [0.0] * 5
    assert expected_value(head_distribution("model", flat, None, None, scale), scale) == pytest.approx(3.0)
    bias = [0.0, -1.0, 1.0, 4.0, 0.0]  # what the model says to a content-free question
    signal = [-3.0, -1.0, 0.0, -1.0, -3.0]  # what the prompt adds: centred on 3
    scores = [b + s for b, s in zip(bias, signal, strict=True)]
    assert expected_value(head_distribution("model", scores, None, None, scale), scale) > 3.5
    assert expected_value(head_distribution("calibrated", scores, bias, None, scale), scale) == pytest.approx(3.0)
    low, high = (expected_value(head_distribution("anchored", flat, flat, e, scale), scale) for e in (1.5, 4.5))
    assert low < 2.3 and high > 3.7
    confident = [-9.0, -9.0, -9.0, -9.0, 0.0]  # the prompt makes the model sure of 5
    assert expected_value(head_distribution("anchored", confident, flat, 2.0, scale), scale) > 3.5
    assert set(RATING_HEADS) == {"model", "calibrated", "anchored"}


def test_a_rating_answer_is_on_the_scale_and_its_text_starts_with_it() -> None:
    scale = RatingScale(0.5, 5.0, 0.5)
    flat = [0.0] * len(scale.values)
    answer = rating_answer(flat, flat, 3.9, scale)
    assert answer.value in scale.values
    mass = [answer.distribution[f"{v:g}"] for v in scale.values]
    below = sum(m for v, m in zip(scale.values, mass, strict=True) if v < answer.value)
    assert below < 0.5 <= below + answer.distribution[f"{answer.value:g}"] + 1e-3  # the median
    assert abs(answer.value - 3.9) < 0.6 and answer.head == "anchored"
    assert sum(answer.distribution.values()) == pytest.approx(1.0, abs=1e-3)
    evidence = {
        "rating_estimate": 3.9,
        "population_rating": 4.3,
        "user_offset": -0.4,
        "offset_records": 6,
        "items": [{"item": "Dune: Part Two", "ratings": 4, "rating_mean": 4.5}],
    }
    text = rating_text(answer, rating_reason(evidence, "logo", scale))
    assert text.startswith(f"{answer.value:g}/5: 4 ratings of Dune: Part Two average 4.5")
    assert "a little below others (6 of your ratings)" in text
    assert "model's own reading" in rating_reason(None, "none", scale)
    assert "no similar ratings yet" in rating_reason({"rating_estimate": 4.0, "population_rating": 4.0}, "logo", scale)


def test_loops_are_found_where_they_start() -> None:
    assert looping("A short answer. With two sentences.") is None
    text = "Try the ramen. It is good. Try the ramen. It is good."
    cut = looping(text)
    assert cut is not None and text[:cut].strip() == "Try the ramen. It is good."
    words = "the film is great the film is great the film is great and more"
    cut = looping(words)
    assert cut is not None and words[:cut].count("the film is great") == 2


# ------------------------------------------------------------------------------------------ the recommender

E = np.eye(4, dtype=np.float32)  # 0 films, 1 dinners, 2 trips, 3 generic requests


def _cluster(cid: int, keywords: list[str]) -> Cluster:
    return Cluster(cid, 10, 5, keywords, [], None, 0, {}, [], [], False)


def catalog() -> GlobalMemory:
    """Five films and two dinners. Each item's people are listed with their first time and community."""

    def near(axis: int, tilt: float) -> np.ndarray:
        v = E[axis] + tilt * E[3]
        return v / np.linalg.norm(v)

    names = ["Heat", "Alien", "Jaws", "Psycho", "Obscure", "Ramen", "Curry"]
    vectors = np.stack(
        [near(0, 0.1), near(0, 0.2), near(0, 0.1), near(0, 0.3), near(0, 0.1), near(1, 0.1), near(1, 0.2)]
    )
    people = [  # (user index, time, community) per item
        [(0, 1, 0), (1, 2, 0), (2, 3, 1), (3, 4, 1), (4, 5, 1), (5, 6, 1)],  # Heat: 6 people
        [(0, 1, 0), (6, 2, 0), (7, 3, 0), (8, 9, 0)],  # Alien: 4, popular with community 0
        [(2, 1, 1), (3, 2, 1), (4, 3, 1)],  # Jaws: 3
        [(1, 1, 0), (5, 2, 1), (9, 8, 1)],  # Psycho: 3, the third only at t=8
        [(1, 1, 0), (2, 1, 1)],  # Obscure: 2 people: private
        [(0, 1, 0), (1, 2, 0), (2, 3, 1), (3, 4, 1)],  # Ramen
        [(4, 1, 1), (5, 2, 1), (6, 3, 0)],  # Curry
    ]
    offsets = np.cumsum([0] + [len(p) for p in people])
    flat = [x for p in people for x in p]
    table = ItemTable(
        names=names,
        vectors=vectors.astype(np.float32),
        rating_ts=np.array([1.0, 2.0, 3.0]),  # Heat: three ratings
        rating_cum=np.array([4.0, 9.0, 13.0]),
        offsets=np.array([0, 3, 3, 3, 3, 3, 3, 3]),
        rater_ts=np.array([1.0, 2.0, 3.0]),
        rater_offsets=np.array([0, 3, 3, 3, 3, 3, 3, 3]),
        user_ts=np.array([float(t) for _, t, _ in flat]),
        user_offsets=offsets,
        user_community=np.array([c for _, _, c in flat], dtype=np.int32),
        user_index=np.array([u for u, _, _ in flat], dtype=np.int32),
    )
    return make_memory(
        options={"min_users": 3},
        records=40,
        clusters=[_cluster(0, ["film"]), _cluster(1, ["dinner"]), _cluster(2, ["trip"]), _cluster(3, ["misc"])],
        communities=[Community(0, 5, [(0, 0.8)]), Community(1, 5, [(1, 0.6)])],
        rating_range=(1.0, 5.0),
        centroids=E.copy(),
        community_centroids=np.array([[0.8, 0.2, 0, 0], [0.4, 0.6, 0, 0]], dtype=np.float32),
        items=table,
    )


def ask(
    memory: GlobalMemory,
    question: np.ndarray,
    history: list[Record] = (),  # type: ignore[assignment]
    mode: str = "logo",
    w_local: float = 0.0,
    community: int | None = None,
    count: int = 5,
) -> list[str]:
    vectors = (
        np.stack([memory.items.vectors[memory.items.rows[r.item]] for r in history]) if history else np.zeros((0, 4))
    )  # type: ignore[union-attr,index]
    population = memory if Memory(mode).reads_global else None
    evidence = UserEvidence(population, memory, list(history), vectors.astype(np.float32), Memory(mode), community)
    request = RecommendInput(question, evidence, w_local, 1 - w_local)
    return [r.item for r in recommend(memory, request, count)]


def test_only_public_items_the_user_does_not_have_on_the_questions_topic() -> None:
    memory = catalog()
    films = ask(memory, E[0])
    assert "Obscure" not in films  # two people: private
    assert set(films) <= {"Heat", "Alien", "Jaws", "Psycho"}  # a film question names no dinner
    assert films[0] == "Heat"  # the most shared
    mine = [Record("u", "loved it", "1", item="Heat", rating=5.0)]
    assert "Heat" not in ask(memory, E[0], mine, w_local=0.5)  # never what the user already has
    assert set(ask(memory, E[1])) == {"Ramen", "Curry"}


def test_time_and_community_move_the_ranking() -> None:
    memory = catalog()
    assert "Psycho" not in ask(replace(memory, as_of_time=5.0), E[0])  # its third person came at t=8
    by_community = ask(memory, E[0], community=0, count=2)
    assert by_community == ["Heat", "Alien"]  # Alien: four people, all of community 0
    assert ask(memory, E[0], community=1, count=2) == ["Heat", "Jaws"]


def test_what_the_user_liked_pulls_in_what_the_same_people_have() -> None:
    memory = catalog()
    fan = [Record("u", "great", "1", item="Jaws", rating=5.0), Record("u", "meh", "2", item="Ramen", rating=2.0)]
    picks = ask(memory, E[0], fan, w_local=0.9, count=2)
    assert picks[0] == "Heat"  # everyone who has Jaws also has Heat
    assert "Jaws" not in picks


def test_memory_modes_rank_the_same_candidates() -> None:
    memory = catalog()
    fan = [Record("u", "great", "1", item="Jaws", rating=5.0)]
    for mode in ("none", "local", "global", "logo"):
        picks = ask(memory, E[0], fan, mode=mode, w_local=0.5)
        assert picks and set(picks) <= {"Heat", "Alien", "Psycho"}, mode


def test_no_item_fits_an_unrelated_question() -> None:
    assert ask(catalog(), E[2]) == []  # trips: memory holds none, so the answer falls back to open text


def test_the_text_names_each_item_with_reasons_from_memory() -> None:
    memory = catalog()
    evidence = UserEvidence(memory, memory, [], np.zeros((0, 4), np.float32), Memory.LOGO, 0)
    request = RecommendInput(E[0], evidence, 0.0, 1.0)
    recs = recommend(memory, request, 2)
    text = recommendation_text(recs, 5.0)
    assert text.splitlines()[0] == "1. Heat: 4.3/5 from 3 ratings; popular with people like you"
    assert text.splitlines()[1].startswith("2. Alien: 4 people have it in their history")
    assert recs[0].to_json()["raters"] == 6 and "popular" in recs[0].sources
    alone = recommendation_text(recs, 5.0, population=False).splitlines()  # --memory local/none
    assert alone[0] == "1. Heat: close to what you asked"  # no other people's ratings in its reasons


def test_memorys_estimate_is_read_on_the_questions_scale() -> None:
    from logo_cli.answers import rescale

    movielens, tens = RatingScale(0.5, 5.0, 0.5), RatingScale(1.0, 10.0, 1.0)
    assert rescale(4.5, movielens, tens) == pytest.approx(1 + (4.0 / 4.5) * 9)
    flat = [0.0] * len(tens.values)
    answer = rating_answer(flat, flat, rescale(4.5, movielens, tens), tens)
    assert answer.value >= 8  # not 5/10: the estimate moved with the scale
    far = rating_answer(flat, flat, 400.0, tens)  # an estimate far off the scale does not underflow to NaN
    assert far.value == 10 and not any(np.isnan(v) for v in far.distribution.values())


@pytest.mark.parametrize(
    ("question", "scale"),
    [
        ("How would I rate Toy Story 2 and 3 out of 5?", RatingScale(1.0, 5.0, 1.0)),
        ("How would I rate the 9/11 documentary?", None),
        ("Would I like a 24/7 diner? Rate it", None),
        ("How would I rate Alien 3 from 1 to 5?", RatingScale(1.0, 5.0, 1.0)),
        ("Give it 1-10 stars", RatingScale(1.0, 10.0, 1.0)),
    ],
)
def test_numbers_in_titles_are_not_scales(question: str, scale: RatingScale | None) -> None:
    assert scale_from_question(question) == scale


class _Scripted:
    """A generator that streams a fixed text in small pieces."""

    id = "scripted"
    n_ctx = 2048

    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, messages: object, **_: object) -> object:
        for i in range(0, len(self.text), 3):
            yield self.text[i : i + 3]


@pytest.mark.parametrize(
    "text",
    [
        "  Try the lentil soup with lemon, it is easy. Try the lentil soup with lemon, it is easy. Try it.",
        "The film is great. I mean the film is great and the film is great and the film is great again.",
        "A plain answer without any loop at all",
    ],
)
def test_what_streams_is_the_answer(text: str) -> None:
    from logo_cli.ask import Asker, GenerationOptions
    from logo_cli.llm import Usage

    asker = Asker.__new__(Asker)
    asker._generator = _Scripted(text)  # type: ignore[assignment]
    asker.generation = GenerationOptions()
    shown: list[str] = []
    answer = asker._generate([], Usage(), shown.append)
    assert "".join(shown) == answer == asker._generate([], Usage(), None)
    assert answer and not answer[0].isspace() and looping(answer) is None


def test_a_choice_weighs_memory_against_the_model_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from logo_cli.answers import choice as chooser
    from logo_cli.evidence import ItemEvidence

    heat = ItemEvidence("Heat", 0, 4.2, 4.3, 212, 230, 0.1, 0.0, 4.4, because="Ronin", because_rating=5.0, content=0.5)
    cats = ItemEvidence("Cats", 1, 2.0, 2.1, 50, 60, 0.1, 0.0, 2.1)

    def options() -> list[chooser.OptionScore]:
        return [
            chooser.OptionScore("Cats", -1.0, -3.0, cats),
            chooser.OptionScore("Heat", -1.5, -4.5, heat),
            chooser.OptionScore("Something new", -0.5, -2.0),  # memory does not know it
        ]

    weights = dict.fromkeys(chooser.FEATURES, 0.0)
    monkeypatch.setattr(chooser, "WEIGHTS", weights | {"model": 1.0})
    assert chooser.choice_answer(options(), 5.0).option == "Something new"  # the model alone
    monkeypatch.setattr(chooser, "WEIGHTS", weights | {"model": 1.0, "estimate": 2.0})
    answer = chooser.choice_answer(options(), 5.0)
    assert answer.option == "Heat"  # memory's estimate (4.4 against 2.1) outweighs the model's lean
    assert chooser.choice_text(answer) == "Heat: 4.3/5 from 212 ratings; like Ronin, which you rated 5."
    unknown = [chooser.OptionScore("X", -1.0, -1.0), chooser.OptionScore("Y", -2.0, -2.0)]
    assert chooser.choice_answer(unknown).reason == "memory knows none of these options: this is the model's reading"
    assert [s["item"] for s in answer.scores] == ["Cats", "Heat", None]


def test_a_mean_that_privacy_noise_could_move_by_half_a_star_is_not_quoted() -> None:
    from logo_cli.answers.recommend import _quoted_mean
    from logo_cli.evidence import QUOTED_MEAN_NOISE
    from logo_cli.global_memory import ItemSnapshot

    snap = ItemSnapshot(
        users=np.array([7, 40, 3]),
        public=np.array([True, True, True]),
        ratings=np.array([7, 40, 2]),
        rating_mean=np.array([1.5, 3.6, np.nan]),
        mean_noise=np.array([1.13**2, 0.2**2, 0.1]),
    )
    assert _quoted_mean(snap, 0) is None  # the sample histories' Barbie under privacy
    assert _quoted_mean(snap, 1) == pytest.approx(3.6) and QUOTED_MEAN_NOISE > 0.2
    assert _quoted_mean(snap, 2) is None  # private: too few raters
    assert _quoted_mean(replace(snap, mean_noise=None), 0) == pytest.approx(1.5)  # exact figures are quoted


def test_people_are_counted_in_a_reason_only_where_noise_could_not_move_the_count_by_a_quarter() -> None:
    memory = catalog()
    evidence = UserEvidence(memory, memory, [], np.zeros((0, 4), np.float32), Memory.LOGO, 0)
    recs = recommend(memory, RecommendInput(E[0], evidence, 0.0, 1.0), 2)
    alien = replace(recs[1], raters_noise=9.4, because=None, sources=["question"])  # Mexico City read 36 for 4
    assert recommendation_text([alien], 5.0) == "1. Alien: in other people's histories"
    assert recommendation_text([replace(alien, because="Heat")], 5.0) == "1. Alien: like Heat"
    assert recommendation_text([replace(alien, raters_noise=0.5)], 5.0).startswith("1. Alien: 4 people have it")
    assert recommendation_text([replace(alien, raters=38)], 5.0) == "1. Alien: in other people's histories"  # +3.6 sd
    assert alien.to_json()["raters_noise"] == 9.4


def test_a_rating_reason_quotes_the_population_where_an_items_mean_is_noisy() -> None:
    scale = RatingScale(0.5, 5.0, 0.5)
    item = {"item": "Barbie", "ratings": 7, "rating_mean": 1.5}
    evidence = {"rating_estimate": 3.4, "population_rating": 3.6, "items": [item | {"rating_mean_noise": 1.13}]}
    reason = rating_reason(evidence, "logo", scale)
    assert "Barbie" not in reason and "people rate things like this 3.6 on average" in reason
    steady = evidence | {"items": [item | {"rating_mean_noise": 0.2}]}
    assert "7 ratings of Barbie average 1.5" in rating_reason(steady, "logo", scale)


def test_the_longest_title_a_question_names() -> None:
    table = catalog().items
    assert table is not None
    assert table.longest_title_in("How would I rate Heat?") == len("heat")
    assert table.longest_title_in("How would I rate the heat of this curry?") == len("curry")  # words, not meaning
    assert table.longest_title_in("How would I rate Heating?") == 0
