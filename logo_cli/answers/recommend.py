"""Recommendations from memory: which shared items to suggest for one question, ranked by a score that the
mediator's weights drive. Pure: no I/O, no model.

Candidates are the items of global memory's item table that are public at the question's time (at least
min_users people have records of them: the same privacy rule as clusters), minus every item in the user's
own history. Items come from memory only, never from the model's imagination. Every memory mode ranks the
same candidates; they differ in what drives the ranking. What memory knows about the user and each item
(popularity, the collaborative score, likeness to the user's liked records) comes from `evidence`, the one
place rating, choice and recommend answers read it.

Terms of item i, each 0..1:
    topic_i     how well it fits the question: its similarity to the question and its cluster's, less their
                similarity to a request that names nothing (GENERIC_REQUEST), relative to the best item
                (TOPIC_SPREAD below it counts 0); averaged with the weight of the question's words among the
                words of the item's own records (tf-idf; `drama` finds films tagged Drama, `pasta` in "isn't
                pasta" rules items out). Items TOPIC_CUT below the best, in a cluster CLUSTER_CUT below the
                question's best cluster (CLUSTER_CUT_UNNAMED when none of the question's words is among the
                item's own words), or without the question's words when memory holds LEXICAL_DEPTH x
                count (and at least LEXICAL_MIN_ITEMS) items with them, are never listed: a dinner question
                gets no city, and a request memory holds too few fitting items for gets a shorter list (the
                answer's note says so). An item's own name is not among its words ("Star Wars" is no war film).
    popular_i, recent_i, community_i   how many people have it: everyone, the RECENT_DAYS before the
                question (under privacy: the last released period), the user's community (not released
                under privacy: 0) (`evidence`, log scale over the most shared item)
    together_i  how strongly the user's liked items point at it in global memory's collaborative neighbours
                (item-item cosine over who has what, fitted with `implicit`; `evidence`), over the best
    content_i   its similarity to the user's liked records (`evidence`), over the best
and
    population_i = (popular_i + RECENT_SHARE recent_i + COMMUNITY_SHARE community_i) / (1 + RECENT_SHARE
                   + COMMUNITY_SHARE)
    personal_i   = CONTENT_SHARE content_i + (1 - CONTENT_SHARE) together_i    (content_i alone in `local`,
                   which reads no other user)
    score_i      = (1 - TOPIC_WEIGHT + TOPIC_WEIGHT topic_i) (POPULATION_WEIGHT w_global population_i +
                   w_local personal_i)
with (w_local, w_global) the mediator's weights: a cold-start user leans on the population and their
community, a biased user's off-profile question on the population within the question's topic, a regular
user on what people with their tastes have. `--memory local` ranks by personal_i alone, `global` by
population_i, `none` by topic_i. Constants were chosen on half of the MovieLens users (bench/
recommend_select.py); docs/evaluation.md reports the other half.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evidence import UNCOUNTED_PEOPLE, UserEvidence, people_reason, quoted_mean
from ..global_memory import GlobalMemory, ItemSnapshot, ItemTable
from ..modes import Memory
from ..records import Record
from ..terms import terms

GENERIC_REQUEST = "Can you recommend something for me?"  # what every recommend question asks, whatever its topic
TOPIC_SPREAD = 0.25  # all-MiniLM cosine, after the generic request's share is taken out
TOPIC_WEIGHT = 0.3
TOPIC_CUT = 0.3
CLUSTER_CUT = 0.25  # an item whose cluster is this far below the question's best cluster is another kind of thing
CLUSTER_CUT_UNNAMED = 0.15  # ...and this far, when none of the question's words is among the item's own words
LEXICAL_WEIGHT = 1.0
LEXICAL_MIN_SHARE = 0.01  # a question word counts when at least this share of the items' records use it
LEXICAL_DEPTH = 1.0  # share of the count asked for that items with the question's words must reach to be the only ones
LEXICAL_MIN_ITEMS = 3
RECENT_SHARE = 0.5
RECENT_DAYS = 180.0
COMMUNITY_SHARE = 1.0
CONTENT_SHARE = 0.2
POPULATION_WEIGHT = 1.0
MIN_TOPIC_MATCH = 0.25  # below this similarity no item fits the question: the answer falls back to open text
NEGATED = re.compile(
    r"\b(?:not|isn't|isnt|aren't|no|without|except|other than|anything but|nothing)\s+(?:a |an |the |any |more )?"
    r"([a-z][\w-]+)",
    re.IGNORECASE,
)


@dataclass
class Recommendation:
    item: str
    score: float
    sources: list[str]  # why it is here: question, popular, community, liked
    rating_mean: float | None  # None while fewer than min_users people had rated it, or while too noisy
    raters: int  # people with a record of it, as of the question's time
    ratings: int
    cluster: int
    topic: str  # its cluster's keywords
    because: str | None = None  # the user's own liked record most like it, when the personal term counts
    terms: dict[str, float] = field(default_factory=dict)
    raters_noise: float | None = None  # the standard deviation privacy noise adds to `raters` (None: exact)

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "score": round(self.score, 4),
            "sources": self.sources,
            "rating_mean": None if self.rating_mean is None else round(self.rating_mean, 2),
            "raters": self.raters,
            "raters_noise": None if self.raters_noise is None else round(self.raters_noise, 1),
            "ratings": self.ratings,
            "cluster": self.cluster,
            "topic": self.topic,
            "because": self.because,
            "terms": {k: round(v, 3) for k, v in self.terms.items()},
        }


@dataclass
class RecommendInput:
    """What the ranker needs about the user and the question (the mediator decided the rest)."""

    question_vector: np.ndarray
    evidence: UserEvidence  # what memory knows about the user and the items, as of the question
    w_local: float
    w_global: float
    query: str = ""
    generic_vector: np.ndarray | None = None  # the embedding of GENERIC_REQUEST

    @property
    def memory_mode(self) -> Memory:
        return self.evidence.mode


def recommend(memory: GlobalMemory, request: RecommendInput, count: int) -> list[Recommendation]:
    """The `count` best items for the question by the score in the module docstring, best first."""
    table, evidence = memory.items, request.evidence
    snap = evidence.snapshot
    if table is None or snap is None or count <= 0 or not len(table.names):
        return []
    rows = _candidates(table, snap, evidence.history)
    if not len(rows):
        return []
    vectors = table.vectors[rows]
    similarity = vectors @ request.question_vector.astype(vectors.dtype)
    if float(similarity.max()) < MIN_TOPIC_MATCH:
        return []
    clusters = memory.assign(vectors)
    topic, on_topic = _topic(memory, table, request, rows, vectors, clusters, count)
    population = _population(evidence.popularity(rows, RECENT_DAYS))
    mode = request.memory_mode
    content, best_record = evidence.content(vectors)
    together = _scaled(evidence.together(rows))
    content = _scaled(content)
    share = CONTENT_SHARE if mode.reads_global else 1.0  # `local` reads no other user: no `together`
    personal = share * content + (1.0 - share) * together

    blend = mode == Memory.LOGO  # the other modes read one memory at full weight, or none
    w_local = request.w_local if blend else float(mode.reads_local)
    w_global = request.w_global if blend else float(mode.reads_global)
    body = POPULATION_WEIGHT * w_global * population["all"] + w_local * personal
    if not mode.reads_any:
        body = np.ones(len(rows))
    score = (1.0 - TOPIC_WEIGHT + TOPIC_WEIGHT * topic) * body
    score += 1e-6 * (similarity - similarity.min())  # ties: the closer match to the question
    score[~on_topic] = 0.0

    out = []
    for j in np.argsort(-score, kind="stable")[:count]:
        if score[j] <= 0:
            break
        row = int(rows[j])
        sources = ["question"] if topic[j] >= 0.5 else []
        if w_global > 0:
            sources += [name for name in ("popular", "community") if population[name][j] >= 0.5]
        because = None
        if w_local > 0 and best_record[j] >= 0 and personal[j] >= 0.5:
            sources.append("liked")
            record = evidence.history[int(best_record[j])]
            because = record.item or record.text[:60]
        cluster = memory.clusters[int(clusters[j])]
        parts = {"topic": topic[j], **{k: v[j] for k, v in population.items() if k != "all"}}
        parts |= {"together": together[j], "content": content[j]}
        out.append(
            Recommendation(
                item=table.names[row],
                score=float(score[j]),
                sources=sources,
                rating_mean=_quoted_mean(snap, row),
                raters=int(snap.users[row]),
                raters_noise=snap.users_noise_sd(row),
                ratings=int(snap.ratings[row]),
                cluster=cluster.id,
                topic=", ".join(cluster.keywords[:3]) if not cluster.private else "",
                because=because,
                terms={k: float(v) for k, v in parts.items()},
            )
        )
    return out


def _quoted_mean(snap: ItemSnapshot, row: int) -> float | None:
    """The item's mean rating as a reason to give (`evidence.quoted_mean`)."""
    return quoted_mean(float(snap.rating_mean[row]), snap.mean_noise_sd(row))


def _candidates(table: ItemTable, snap: ItemSnapshot, history: Sequence[Record]) -> np.ndarray:
    """Rows of the public items the user has no record of."""
    allowed = snap.public.copy()
    for name in {r.item for r in history if r.item}:
        row = table.rows.get(name)
        if row is not None:
            allowed[row] = False
    return np.flatnonzero(allowed)


def _topic(
    memory: GlobalMemory,
    table: ItemTable,
    request: RecommendInput,
    rows: np.ndarray,
    vectors: np.ndarray,
    clusters: np.ndarray,
    count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """topic_i, and which candidates stay (see the module docstring)."""
    q = request.question_vector.astype(vectors.dtype)
    similarity = vectors @ q
    cluster_similarity = (memory.centroids @ q)[clusters]
    if request.generic_vector is not None:  # what the question asks beyond "recommend me something"
        g = request.generic_vector.astype(vectors.dtype)
        similarity = similarity - vectors @ g
        cluster_similarity = cluster_similarity - (memory.centroids @ g)[clusters]
    cluster_fit = cluster_similarity - cluster_similarity.max()
    fit = 0.5 * (similarity - similarity.max()) + 0.5 * cluster_fit
    topic = np.clip(1.0 + fit / TOPIC_SPREAD, 0.0, 1.0)
    wanted, unwanted = _lexical(table, request.query)
    lexical = wanted[rows]
    # a Western may sit in the drama cluster, but a city the question's words do not describe is no dinner
    cut = np.where(lexical > 0, CLUSTER_CUT, CLUSTER_CUT_UNNAMED)
    on_topic = (fit >= -TOPIC_CUT) & (cluster_fit >= -cut) & ~(unwanted[rows] > 0)
    if lexical.max() > 0:  # the question names what items' own records say: those items come first...
        topic = (topic + LEXICAL_WEIGHT * lexical / lexical.max()) / (1.0 + LEXICAL_WEIGHT)
        if int((on_topic & (lexical > 0)).sum()) >= max(LEXICAL_MIN_ITEMS, LEXICAL_DEPTH * count):
            on_topic &= lexical > 0  # ...and when memory holds enough of them, only they qualify
    return topic, on_topic


def _lexical(table: ItemTable, query: str) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the tf-idf weight of the question's words among its records' words, and of the words the
    question rules out (`isn't pasta`, `no horror`). A word counts only when at least LEXICAL_MIN_SHARE of the
    items use it: a word on a handful of items is a stray tag, not the topic the question asks for."""
    negated = {t for m in NEGATED.finditer(query) for t in terms(m.group(1))}
    floor = max(2, LEXICAL_MIN_SHARE * len(table.names))
    wanted = [
        word
        for word in dict.fromkeys(terms(NEGATED.sub(" ", query)))
        if word not in negated and int((table.term_match([word]) > 0).sum()) >= floor
    ]
    return table.term_match(wanted), table.term_match(sorted(negated))


def _population(popularity: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    shares = popularity["popular"] + RECENT_SHARE * popularity["recent"] + COMMUNITY_SHARE * popularity["community"]
    blend = shares / (1.0 + RECENT_SHARE + COMMUNITY_SHARE)
    return {"all": blend, **popularity}


def _scaled(x: np.ndarray) -> np.ndarray:
    lo, hi = (float(np.min(x)), float(np.max(x))) if len(x) else (0.0, 0.0)
    out: np.ndarray = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return out


def recommendation_text(
    recommendations: Sequence[Recommendation], scale_high: float | None, *, population: bool = True
) -> str:
    """One line per item, each reason from memory: its rating and raters, the user's own liked record it is
    like, or that people like them have it. Without `population` (`--memory local` or `none`, which read no
    other user), no reason cites other people: only the user's own record, or the question."""
    lines = []
    for i, rec in enumerate(recommendations, start=1):
        reasons = []
        if population:
            if rec.rating_mean is not None:
                high = f"/{scale_high:g}" if scale_high else ""
                reasons.append(f"{rec.rating_mean:.1f}{high} from {rec.ratings} ratings")
            elif (people := people_reason(rec.raters, rec.raters_noise)) is not None:
                reasons.append(people)
            elif not rec.because and "community" not in rec.sources:
                reasons.append(UNCOUNTED_PEOPLE)
        if rec.because:
            reasons.append(f"like {rec.because}")
        elif population and "community" in rec.sources:
            reasons.append("popular with people like you")
        elif not population:
            reasons.append("close to what you asked")
        lines.append(f"{i}. {rec.item}: {'; '.join(reasons)}")
    return "\n".join(lines)
