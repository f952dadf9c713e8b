"""Converters from public datasets to logo records and evaluation sets, so anyone can reproduce the figures.

`movielens(DIR)`: ml-latest-small style CSVs -> one record per rating (title, genres, rating, timestamp, the
user's tags on the film) and two eval sets. Per user, ratings are split chronologically: the first 80% are
the user's history, the last 20% are held out. `eval.jsonl`: each held-out rating becomes a question "How
would this user rate TITLE (GENRES)?" with the true rating as gold and the rating's time as `at`.
`recommend.jsonl`: per user with held-out films rated >= LIKED, "Recommend 10 films for me to watch next."
(gold: those films) and one genre question, for the genre of their held-out liked films that their history
holds least of (gold: those films of it): the case where a narrow history says least. Both are asked at the
time of the first held-out rating. `choice.jsonl`: per user, "Which of these films would I enjoy most?" with
one held-out film they rated >= LIKED against 1-4 others (options shuffled, titles as a person writes them:
"The Matrix (1999)"): `variant: seen`, held-out films they rated <= DISLIKED; `variant: unseen`, films they
never rated that at least UNSEEN_RATERS people had rated in the records before the question, against a liked
film as widely rated. A seeded sample of users is made cold-start by keeping only their first 1-3 records as
history.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from .errors import BadRecord, NotFound, UsageError


@dataclass
class ConvertSummary:
    records: int
    questions: int
    users: int
    cold_start_users: int
    records_file: str
    eval_file: str
    recommend_questions: int = 0
    recommend_file: str | None = None
    choice_questions: int = 0
    choice_file: str | None = None


CSV_HINT = "Fix the line and run the conversion again (nothing was written)."


def _csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows with their line numbers. A header without one of `columns`, or a row with fewer fields than
    the header, is a BadRecord naming the line."""
    if not path.is_file():
        raise NotFound(f"{path}: no such file.", "Point at the folder that holds ratings.csv and movies.csv.")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            reason = f"no column {', '.join(missing)}: the header must name {', '.join(columns)}"
            raise BadRecord(str(path), 1, reason, CSV_HINT)
        for row in reader:
            if any(row[c] is None for c in columns):  # DictReader's filler for a short row
                raise BadRecord(str(path), reader.line_num, f"fewer fields than the header's {len(columns)}", CSV_HINT)
            yield reader.line_num, row


def _number(path: Path, line: int, row: dict[str, str], column: str, kind: type[int] | type[float]) -> Any:
    """A field as a number (a float must be finite), else a BadRecord naming the line."""
    try:
        value = kind(row[column])
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    what = "a whole number" if kind is int else "a number"
    raise BadRecord(str(path), line, f"{column} {row[column]!r} is not {what}", CSV_HINT)


MOVIES = ("movieId", "title", "genres")  # the columns each file needs (ml-latest-small's headers name more)
TAGS = ("userId", "movieId", "tag")
RATINGS = ("userId", "movieId", "rating", "timestamp")
LIKED = 4.0  # a held-out film rated at least this is one the user liked: the gold of recommend questions
DISLIKED = 2.0  # a held-out film rated at most this is one they did not: a `seen` choice question's other options
UNSEEN_RATERS = 10  # an `unseen` choice question's other options: films this many people had rated before it
CHOICE_QUERY = "Which of these films would I enjoy most?"
RECOMMEND_COUNT = 10
SKIP_GENRES = frozenset({"(no genres listed)", "IMAX"})


def recommend_questions(
    user: str, history: list[tuple[int, str, float]], held_out: list[tuple[int, str, float]], movies: dict[str, Any]
) -> list[dict[str, Any]]:
    """A user's recommend questions: one for any film, one for the genre of their held-out liked films that
    their history holds least of (ties: the genre with more liked films, then by name)."""
    liked = [(ts, m) for ts, m, r in held_out if r >= LIKED and m in movies]
    if not liked:
        return []
    at = held_out[0][0]
    titles = list(dict.fromkeys(movies[m][0] for _, m in liked))
    base = {"user": f"ml{user}", "at": at, "answer_type": "recommend"}
    out = [
        {
            **base,
            "id": f"ml{user}-rec-any",
            "query": f"Recommend {RECOMMEND_COUNT} films for me to watch next.",
            "gold": titles,
            "variant": "any",
        }
    ]
    seen: dict[str, int] = defaultdict(int)
    for _, movie, _ in history:
        for genre in movies.get(movie, ("", ""))[1].split("|"):
            seen[genre] += 1
    by_genre: dict[str, list[str]] = defaultdict(list)
    for _, movie in liked:
        for genre in movies[movie][1].split("|"):
            if genre not in SKIP_GENRES and movies[movie][0] not in by_genre[genre]:
                by_genre[genre].append(movies[movie][0])
    if by_genre:
        genre = min(by_genre, key=lambda g: (seen[g] / max(len(history), 1), -len(by_genre[g]), g))
        out.append(
            {
                **base,
                "id": f"ml{user}-rec-genre",
                "query": f"Recommend {RECOMMEND_COUNT} {genre.lower()} films for me.",
                "gold": by_genre[genre],
                "variant": "genre",
                "genre": genre,
                "genre_share_in_history": round(seen[genre] / max(len(history), 1), 4),
            }
        )
    return out


def as_written(title: str) -> str:
    """A MovieLens title as a person writes it: "Matrix, The (1999)" -> "The Matrix (1999)"."""
    match = re.match(r"^(.*), (The|A|An) \((\d{4})\)$", title)
    return f"{match.group(2)} {match.group(1)} ({match.group(3)})" if match else title


def choice_questions(
    user: str,
    held_out: list[tuple[int, str, float]],
    rated_ever: set[str],
    raters_before: Callable[[str, int], int],
    candidates: list[str],
    movies: dict[str, Any],
    rng: random.Random,
    unseen_raters: int = UNSEEN_RATERS,
) -> list[dict[str, Any]]:
    """A user's choice questions (see the module docstring), asked at the time of their first held-out rating."""
    liked = [m for _, m, r in held_out if r >= LIKED and m in movies]
    if not liked:
        return []
    at = held_out[0][0]
    disliked = [m for _, m, r in held_out if r <= DISLIKED and m in movies]
    unseen = [m for m in candidates if m not in rated_ever and raters_before(m, at) >= unseen_raters]
    # the unseen variant's gold is drawn among films as widely rated as its other options: were it not, the gold
    # would be the one option not drawn among popular films, and preferring the least popular option would win
    known = [m for m in liked if raters_before(m, at) >= unseen_raters]
    out = []
    for variant, pool, golds in (("seen", disliked, liked), ("unseen", unseen, known)):
        if not pool or not golds:
            continue
        gold = rng.choice(golds)
        others = rng.sample(pool, min(len(pool), rng.randint(1, 4)))
        options = [as_written(movies[m][0]) for m in [gold, *others]]
        rng.shuffle(options)
        out.append(
            {
                "id": f"ml{user}-choice-{variant}",
                "user": f"ml{user}",
                "query": CHOICE_QUERY,
                "candidates": options,
                "gold": as_written(movies[gold][0]),
                "at": at,
                "answer_type": "choice",
                "variant": variant,
            }
        )
    return out


def movie_text(title: str, genres: str, tags: list[str]) -> str:
    text = f"{title} ({genres.replace('|', ', ')})"
    return f"{text}. Tags: {', '.join(tags)}" if tags else text


def movielens(
    folder: Path,
    out: Path,
    *,
    holdout: float = 0.2,
    cold_share: float = 0.1,
    seed: int = 0,
    max_users: int | None = None,
    unseen_raters: int = UNSEEN_RATERS,
) -> ConvertSummary:
    if not 0 < holdout < 1:
        raise UsageError("--holdout must be between 0 and 1.")
    if not 0 <= cold_share <= 1:
        raise UsageError("--cold-share must be between 0 and 1.")
    movies = {row["movieId"]: (row["title"], row["genres"]) for _, row in _csv(folder / "movies.csv", MOVIES)}
    tags: dict[tuple[str, str], list[str]] = defaultdict(list)
    if (folder / "tags.csv").is_file():
        for _, row in _csv(folder / "tags.csv", TAGS):
            tags[(row["userId"], row["movieId"])].append(row["tag"])
    by_user: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    ratings_csv = folder / "ratings.csv"
    for line, row in _csv(ratings_csv, RATINGS):
        _number(ratings_csv, line, row, "userId", int)  # users and films are ordered by their ids as numbers
        _number(ratings_csv, line, row, "movieId", int)
        ts = int(_number(ratings_csv, line, row, "timestamp", float))
        by_user[row["userId"]].append((ts, row["movieId"], _number(ratings_csv, line, row, "rating", float)))

    users = sorted(by_user, key=int)
    if max_users is not None:
        users = users[:max_users]
    rng = random.Random(seed)
    cold = set(rng.sample(users, round(len(users) * cold_share)))
    out.mkdir(parents=True, exist_ok=True)
    records_file, eval_file, recommend_file = out / "records.jsonl", out / "eval.jsonl", out / "recommend.jsonl"
    choice_file = out / "choice.jsonl"
    histories: dict[str, list[tuple[int, str, float]]] = {}
    for user in users:
        ratings = sorted(by_user[user])
        split = max(1, round(len(ratings) * (1 - holdout)))
        histories[user] = ratings[: rng.randint(1, 3)] if user in cold else ratings[:split]
    in_memory: dict[str, list[int]] = defaultdict(list)  # film -> when its ratings in the records were given
    for history in histories.values():
        for ts, movie, _ in history:
            in_memory[movie].append(ts)
    for times in in_memory.values():
        times.sort()
    shared = sorted((m for m in in_memory if m in movies and len(in_memory[m]) >= unseen_raters), key=int)

    def raters_before(movie: str, at: int) -> int:
        return bisect.bisect_left(in_memory.get(movie, []), at)

    picker = random.Random(seed + 1)  # choice questions draw from their own stream: the other files stay as they were
    n_records = n_questions = n_recommend = n_choice = 0
    with (
        records_file.open("wb") as rec,
        eval_file.open("wb") as ev,
        recommend_file.open("wb") as recommend,
        choice_file.open("wb") as choice,
    ):
        for user in users:
            ratings = sorted(by_user[user])
            split = max(1, round(len(ratings) * (1 - holdout)))
            history = histories[user]
            for ts, movie, rating in history:
                title, genres = movies.get(movie, (f"movie {movie}", "(no genres listed)"))
                record: dict[str, Any] = {
                    "user": f"ml{user}",
                    "id": f"ml{user}-{movie}",
                    "text": movie_text(title, genres, tags.get((user, movie), [])),
                    "item": title,
                    "rating": rating,
                    "timestamp": ts,
                    "meta": {"genres": genres, "genre": genres.split("|")[0]},
                }
                rec.write(orjson.dumps(record) + b"\n")
                n_records += 1
            for ts, movie, rating in ratings[split:]:
                title, genres = movies.get(movie, (f"movie {movie}", "(no genres listed)"))
                question = {
                    "id": f"ml{user}-{movie}",
                    "user": f"ml{user}",
                    "query": f"How would this user rate {title} ({genres.replace('|', ', ')}) on a 0.5-5 scale?",
                    "gold": rating,
                    "at": ts,
                    "item": title,
                    "genre": genres.split("|")[0],
                    "cold_start_simulated": user in cold,
                }
                ev.write(orjson.dumps(question) + b"\n")
                n_questions += 1
            for question in recommend_questions(user, history, ratings[split:], movies):
                recommend.write(orjson.dumps({**question, "cold_start_simulated": user in cold}) + b"\n")
                n_recommend += 1
            rated_ever = {m for _, m, _ in ratings}
            for question in choice_questions(
                user, ratings[split:], rated_ever, raters_before, shared, movies, picker, unseen_raters
            ):
                choice.write(orjson.dumps({**question, "cold_start_simulated": user in cold}) + b"\n")
                n_choice += 1
    return ConvertSummary(
        records=n_records,
        questions=n_questions,
        users=len(users),
        cold_start_users=len(cold),
        records_file=str(records_file),
        eval_file=str(eval_file),
        recommend_questions=n_recommend,
        recommend_file=str(recommend_file),
        choice_questions=n_choice,
        choice_file=str(choice_file),
    )


def prefeval(folder: Path, out: Path, *, seed: int = 0, max_per_topic: int | None = None) -> ConvertSummary:
    """PrefEval MCQ -> one user per item whose history is the stated preference; the question becomes an
    eval line with its 4 options shuffled by `seed` (the source lists the correct option first)."""
    files = sorted((folder / "mcq_options").glob("*.json"))
    if not files:
        raise NotFound(f"{folder}/mcq_options: no PrefEval MCQ files.", "Point at the PrefEval benchmark folder.")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    records_file, eval_file = out / "records.jsonl", out / "eval.jsonl"
    n = 0
    with records_file.open("wb") as rec, eval_file.open("wb") as ev:
        for file in files:
            topic = file.stem
            items = orjson.loads(file.read_bytes())
            for i, item in enumerate(items[:max_per_topic] if max_per_topic else items):
                user = f"pe-{topic}-{i:03d}"
                rec.write(
                    orjson.dumps(
                        {"user": user, "id": f"{user}-pref", "text": item["preference"], "meta": {"topic": topic}}
                    )
                    + b"\n"
                )
                options = list(item["classification_task_options"])
                gold = options[0]
                rng.shuffle(options)
                ev.write(
                    orjson.dumps(
                        {
                            "id": user,
                            "user": user,
                            "query": item["question"],
                            "candidates": options,
                            "gold": gold,
                            "topic": topic,
                        }
                    )
                    + b"\n"
                )
                n += 1
    return ConvertSummary(
        records=n, questions=n, users=n, cold_start_users=0, records_file=str(records_file), eval_file=str(eval_file)
    )


def summary_json(summary: ConvertSummary) -> dict[str, Any]:
    return asdict(summary)
