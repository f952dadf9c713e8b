"""Measuring logo: how well global memory's clusters match known classes, and the evaluation harness, which
asks every question exactly as `logo ask` does and scores the answer it prints (a rating's number, the
chosen option, the recommended items, the text) against gold, by user bucket and memory mode, beside plain
non-LLM recommenders on the same store."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .answers import DEFAULT_COUNT, DEFAULT_HEAD, RATING_HEADS, AnswerType, requested_count
from .ask import Question
from .baselines import REFERENCES
from .config import Settings
from .global_memory import GlobalMemory
from .local_memory.store import Store
from .mediator import MediatorOptions
from .modes import Memory

if TYPE_CHECKING:
    from .ask import Answer, Asker
    from .baselines import Interactions


@dataclass
class Agreement:
    nmi: float  # normalized mutual information between clusters and the known classes
    purity: float  # share of records whose cluster's majority class is their own
    clusters: int
    classes: int
    records: int


def cluster_agreement(memory: GlobalMemory, store: Store, meta_key: str) -> Agreement:
    """Compare the clusters with a known class stored in each record's `meta[meta_key]`."""
    from sklearn.metrics import normalized_mutual_info_score

    truth: list[str] = []
    assigned: list[np.ndarray] = []
    for page in store.pages():
        keep = [i for i, r in enumerate(page.records) if meta_key in r.meta]
        truth += [str(page.records[i].meta[meta_key]) for i in keep]
        assigned.append(memory.assign(page.embeddings[keep]) if keep else np.zeros(0, dtype=np.int64))
    labels = np.concatenate(assigned) if assigned else np.zeros(0, dtype=np.int64)
    if not truth:
        return Agreement(0.0, 0.0, len(memory.clusters), 0, 0)
    truth_arr = np.asarray(truth)
    majority = sum(Counter(truth_arr[labels == c]).most_common(1)[0][1] for c in np.unique(labels))
    return Agreement(
        nmi=round(float(normalized_mutual_info_score(truth_arr, labels)), 4),
        purity=round(majority / len(truth), 4),
        clusters=len(memory.clusters),
        classes=len(set(truth)),
        records=len(truth),
    )


# ------------------------------------------------------------------------------------------ the harness

BUCKETS = ("cold_start", "biased_off_profile", "biased_on_profile", "regular")


@dataclass
class EvalItem:
    id: str
    user: str
    query: str
    gold: float | str | list[str]
    candidates: list[str] | None = None
    at: float | None = None
    count: int | None = None  # recommend questions: how many items are scored (default: what the question asks)
    meta: dict[str, str] = field(default_factory=dict)  # `item`, `variant`, `genre`: for references and splits

    @property
    def kind(self) -> str:
        if self.candidates:
            return "choice"
        if isinstance(self.gold, list):
            return "list"
        return "number" if isinstance(self.gold, int | float) else "text"

    @property
    def answer_type(self) -> AnswerType:
        """The type the gold implies, forced as `ask --answer-type` would: eval scores that answer."""
        return {
            "choice": AnswerType.CHOICE,
            "list": AnswerType.RECOMMEND,
            "number": AnswerType.RATING,
            "text": AnswerType.OPEN,
        }[self.kind]


def load_eval(path: str) -> list[EvalItem]:
    """The eval set: question lines (`questions.py`) that carry a `gold`; the line number is the default id."""
    from .questions import read_questions

    items = []
    for line, q in read_questions(path, gold=True):
        assert q.gold is not None
        items.append(EvalItem(q.id or str(line), q.user, q.query, q.gold, q.candidates, q.at, q.count, q.meta))
    return items


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lowercase word tokens (longest common subsequence)."""
    a, b = prediction.lower().split(), reference.lower().split()
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def ranking_metrics(items: Sequence[str], gold: Sequence[str], k: int) -> dict[str, float]:
    """Hit rate, recall and NDCG at k of a ranked list against the set of gold items (binary relevance)."""
    wanted = set(gold)
    top = list(items)[:k]
    hits = [1.0 if item in wanted else 0.0 for item in top]
    dcg = float(sum(h / np.log2(i + 2) for i, h in enumerate(hits)))
    ideal = float(sum(1.0 / np.log2(i + 2) for i in range(min(k, len(wanted)))))
    return {
        "hit": float(any(hits)),
        "recall": sum(hits) / len(wanted) if wanted else 0.0,
        "ndcg": dcg / ideal if ideal else 0.0,
    }


LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def number_in_text(text: str) -> float | None:
    """The number a rating answer's text starts with (what a person reads first)."""
    match = LEADING_NUMBER.match(text)
    return float(match.group(1)) if match else None


EMBED_BATCH = 64


@dataclass
class Prediction:
    """One answer `ask` gave to one question under one method (or a reference recommender), scored."""

    id: str
    method: str
    bucket: str
    variant: str | None = None
    prompt_tokens: int = 0
    answer_type: str | None = None
    prediction: float | str | list[str] | None = None
    # rating answers: the printed number against gold, and (component figures) what it was read from
    gold: float | None = None
    error: float | None = None
    text_matches_value: bool | None = None
    heads: dict[str, float] | None = None
    estimate: float | None = None
    evidence_error: float | None = None
    expected: float | None = None
    distribution: dict[str, float] | None = None
    logprobs: list[float] | None = None  # with `prior`, every head can be recomputed from the predictions
    prior: list[float] | None = None
    scale: list[float] | None = None
    # choice and open answers
    score: float | None = None
    options: list[dict[str, Any]] | None = None  # choice: every option's features (bench/choice_select.py fits on them)
    # recommendations: ranking metrics at k, and what the answer's text and memory say of its items
    k: int | None = None
    hit: float | None = None
    recall: float | None = None
    ndcg: float | None = None
    text_names_items: bool | None = None
    grounding: dict[str, int] | None = None
    genre_precision: float | None = None  # genre questions: the share of listed items of the genre asked

    @property
    def kind(self) -> str:
        """What the row is scored as: number (MAE), list (HR/NDCG at k) or score (accuracy, ROUGE-L)."""
        if self.gold is not None:
            return "number"
        return "list" if self.hit is not None else "score"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class EvalRow:
    method: str
    bucket: str
    n: int
    metric: str
    value: float
    rmse: float | None = None
    evidence_mae: float | None = None  # component: the mediator's fused estimate alone, without the model
    mae_by_head: dict[str, float] | None = None  # component: every rating head's MAE on the same scores
    prompt_tokens: float = 0.0
    extra: dict[str, float] | None = None  # recommend: recall@k, ndcg@k; grounding counts


@dataclass
class EvalReport:
    rows: list[EvalRow]
    buckets: dict[str, int]
    items: int
    model: str
    embedder: str
    seconds: float
    predictions: list[Prediction]
    rating_head: str = DEFAULT_HEAD
    scanned: int = 0  # questions looked at to fill the buckets
    checks: dict[str, int] = field(default_factory=dict)  # what ask's answers must satisfy, counted


def bucket_of(cold_start: bool, biased: bool, off_profile: bool) -> str:
    if cold_start:
        return "cold_start"
    if biased:
        return "biased_off_profile" if off_profile else "biased_on_profile"
    return "regular"


@dataclass
class Chosen:
    item: EvalItem
    bucket: str
    vector: np.ndarray  # the question's embedding, shared by every method


def _question(item: EvalItem) -> Question:
    return Question(
        item.user, item.query, item.id, item.at, item.candidates, answer_type=item.answer_type, count=item.count
    )


def choose_questions(
    judge: Asker, items: Sequence[EvalItem], *, per_bucket: int | None, seed: int, scan: int | None
) -> tuple[list[Chosen], Counter[str], int]:
    """The questions to run, each with its bucket as logo's mediator (`judge`) sees it at question time, the
    same for every method; and how many were looked at.

    With `per_bucket`, questions are looked at in seeded random order until every bucket is full or `scan`
    questions were looked at (default 40 per wanted question, at least 300; 0: all)."""
    order = list(items)
    random.Random(seed).shuffle(order)
    chosen: list[Chosen] = []
    counts: Counter[str] = Counter()
    scanned = 0
    scan_limit = None if per_bucket is None else max(300, 40 * per_bucket)  # rare buckets may stay short
    if scan is not None and per_bucket is not None:  # without --per-bucket every question is run
        scan_limit = scan or None
    vectors: dict[int, np.ndarray] = {}  # embedded in batches: one at a time dominated the scan's profile
    for position, item in enumerate(order):
        if scan_limit is not None and scanned >= scan_limit:
            break
        if position % EMBED_BATCH == 0:
            batch = order[position : position + EMBED_BATCH]
            vectors = dict(enumerate(judge.embedder.embed([q.query for q in batch]), start=position))
        vector = vectors[position]
        question = _question(item)
        question.answer_type = AnswerType.OPEN  # the bucket needs the mediator only, not the answer's reads
        ctx = judge.prepare(question, vector, prompt=False).context
        scanned += 1
        bucket = bucket_of(ctx.cold_start, ctx.biased, ctx.off_profile)
        if per_bucket is None or counts[bucket] < per_bucket:
            chosen.append(Chosen(item, bucket, vector))
            counts[bucket] += 1
        if per_bucket is not None and all(counts[b] >= per_bucket for b in BUCKETS):
            break
    return chosen, counts, scanned


def score_answer(item: EvalItem, answer: Answer, base: Prediction, k: int | None = None) -> Prediction:
    """The answer ask would print, scored against the gold: its value, and for ratings the heads' figures."""
    row = replace(base, answer_type=answer.answer_type.value, prompt_tokens=answer.usage.prompt_tokens)
    if item.kind == "number":
        gold = float(item.gold)  # type: ignore[arg-type]
        rating = answer.rating
        row.gold = gold
        if rating is None:  # cannot happen with the type forced; scored as missing
            return row
        shown = number_in_text(answer.answer)
        row.prediction, row.error = rating.value, rating.value - gold
        row.text_matches_value = shown is not None and abs(shown - rating.value) < 1e-9
        row.heads = {h: round(v, 3) for h, v in rating.heads.items()}
        row.estimate, row.expected, row.distribution = rating.estimate, round(rating.expected, 3), rating.distribution
        row.logprobs, row.prior, row.scale = rating.scores, rating.prior, rating.scale.to_json()
        if rating.estimate is not None:
            row.evidence_error = rating.estimate - gold
    elif item.kind == "choice":
        row.prediction, row.score = answer.value, float(answer.value == item.gold)
        row.text_matches_value = answer.answer.startswith(f"{answer.value}:")
        if answer.choice is not None:
            row.options = [
                {
                    "option": o.option,
                    "gold": o.option == item.gold,
                    "features": o.features,
                    "matched": o.evidence is not None,
                }
                for o in answer.choice.options
            ]
    elif item.kind == "list":
        named = list(answer.value) if answer.recommendations is not None else []
        row.k = k or item.count or requested_count(item.query) or DEFAULT_COUNT
        row.prediction = named
        _set_ranking(row, named, list(item.gold))  # type: ignore[arg-type]
        row.text_names_items = all(name in answer.answer for name in named)
    else:
        row.prediction, row.score = answer.answer, rouge_l(answer.answer, str(item.gold))
    return row


def _set_ranking(row: Prediction, named: list[str], gold: list[str]) -> None:
    assert row.k is not None
    metrics = ranking_metrics(named, gold, row.k)
    row.hit, row.recall, row.ndcg = metrics["hit"], metrics["recall"], metrics["ndcg"]


def _grounding(asker: Asker, item: EvalItem, answer: Answer) -> dict[str, int]:
    """Recommend answers: how many named items are not public items of memory, and how many the user has."""
    if answer.recommendations is None:
        return {"named": 0, "not_in_memory": 0, "already_had": 0}
    catalog = asker.catalog
    table = catalog.items if catalog is not None else None
    view = catalog.as_of(item.at) if catalog is not None and item.at is not None else catalog
    public = table.snapshot(view.as_of_time, view.min_users).public if table is not None and view is not None else None
    store = asker.store or asker._history_store()
    had: set[str] = set()
    if store is not None:
        had = {r.item for r in store.user_history(item.user, item.at)[0] if r.item}
    named = [r.item for r in answer.recommendations]
    missing = sum(
        1 for name in named if table is None or public is None or name not in table.rows or not public[table.rows[name]]
    )
    return {"named": len(named), "not_in_memory": missing, "already_had": sum(1 for n in named if n in had)}


def run_eval(
    settings: Settings,
    items: Sequence[EvalItem],
    methods: Sequence[str],
    *,
    base: MediatorOptions,
    per_bucket: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    scan: int | None = None,
    references: Sequence[str] = REFERENCES,
    k: int | None = None,
) -> EvalReport:
    """Ask the same questions through each memory mode with the same model, exactly as `logo ask` answers
    them (`Asker.answer`), and score what it answers, grouped by user bucket (questions chosen by
    `choose_questions`). The plain `references` (`baselines`) answer the same questions as rows of the same
    table: recommenders for list questions, choosers for choice questions, user+item bias for ratings."""
    from .ask import Asker, GenerationOptions
    from .baselines import CHOOSERS, RATERS, RECOMMENDERS, Interactions

    started = time.time()
    generation = GenerationOptions(max_tokens=64)
    askers = {m: Asker(settings, replace(base, memory=Memory(m)), generation) for m in methods}
    judge = askers.get(Memory.LOGO) or Asker(settings, replace(base, memory=Memory.LOGO), generation)

    chosen, counts, scanned = choose_questions(judge, items, per_bucket=per_bucket, seed=seed, scan=scan)
    applicable = {"list": RECOMMENDERS, "choice": CHOOSERS, "number": RATERS, "text": ()}
    kinds = {c.item.kind for c in chosen}
    refs = [r for r in references if any(r in applicable[k] for k in kinds)]
    interactions = None
    if refs and judge.store is not None:
        interactions = Interactions.from_store(judge.store)
    min_users = judge.memory.min_users if judge.memory is not None else 1

    predictions: list[Prediction] = []
    checks: Counter[str] = Counter()
    total = sum(len(methods) + sum(r in applicable[c.item.kind] for r in refs) for c in chosen)
    done = 0
    for choice in chosen:
        item = choice.item
        variant = item.meta.get("variant")
        for method in methods:
            asker = askers[method]
            answer = asker.answer(_question(item), vector=choice.vector)
            row = score_answer(item, answer, Prediction(item.id, method, choice.bucket, variant), k)
            if item.kind == "number":
                checks["ratings"] += 1
                checks["rating_text_mismatches"] += int(not row.text_matches_value)
            if item.kind == "choice":
                checks["choices"] += 1
                checks["choice_text_mismatches"] += int(not row.text_matches_value)
            if item.kind == "list":
                row.grounding = _grounding(asker, item, answer)
                for key, value in row.grounding.items():
                    checks[f"recommended_{key}"] += value
                checks["recommend_text_mismatches"] += int(not row.text_names_items)
                named = row.prediction if isinstance(row.prediction, list) else []
                row.genre_precision = _genre_precision(interactions, item, named)
            predictions.append(row)
            done += 1
            if progress:
                progress(done, total)
        if interactions is None:
            continue
        for name in refs:
            if name not in applicable[item.kind]:
                continue
            predictions.append(
                _reference(interactions, name, item, Prediction(item.id, name, choice.bucket, variant), k, min_users)
            )
            done += 1
            if progress:
                progress(done, total)

    return EvalReport(
        rows=_rows(predictions, [*methods, *refs]),
        buckets=dict(counts),
        items=len(chosen),
        model=judge.generator.id,
        embedder=judge.embedder.id,
        seconds=round(time.time() - started, 1),
        predictions=predictions,
        rating_head=DEFAULT_HEAD,
        scanned=scanned,
        checks=dict(checks),
    )


def _reference(
    data: Interactions, name: str, item: EvalItem, row: Prediction, k: int | None, min_users: int
) -> Prediction:
    """One plain reference's answer to one question, scored like logo's."""
    from .baselines import bias_rating, choose, item_knn, popularity

    if item.kind == "list":
        size = k or item.count or requested_count(item.query) or DEFAULT_COUNT
        rank = popularity if name == "popularity" else item_knn
        genre = item.meta.get("genre")
        named = rank(data, item.user, item.at, size, min_users, genre)
        row.prediction, row.k = named, size
        _set_ranking(row, named, list(item.gold))  # type: ignore[arg-type]
        row.genre_precision = _genre_precision(data, item, named)
    elif item.kind == "choice":
        options = item.candidates or []
        if name == "chance":
            row.prediction, row.score = None, 1.0 / max(len(options), 1)
        else:
            row.prediction = choose(data, name, item.user, item.at, options)
            row.score = float(row.prediction == item.gold)
        row.answer_type = "choice"
    elif item.kind == "number":
        gold = float(item.gold)  # type: ignore[arg-type]
        value = bias_rating(data, item.user, item.meta.get("item"), item.at)
        row.gold = gold
        if value is not None:
            row.prediction, row.error = round(value, 4), value - gold
    return row


def _genre_precision(data: Interactions | None, item: EvalItem, named: list[str]) -> float | None:
    """The share of the listed items that are of the genre a genre question asks for (None: not one)."""
    genre = item.meta.get("genre")
    if data is None or genre is None or not named:
        return None
    codes = {name: code for code, name in enumerate(data.item_names)}
    return sum(genre in data.genres[codes[n]] for n in named if n in codes) / len(named)


def _rows(predictions: Sequence[Prediction], methods: Sequence[str]) -> list[EvalRow]:
    """One row per (method, bucket, kind of gold), and an `all` bucket."""
    rows = []
    for method in methods:
        for bucket in (*BUCKETS, "all"):
            mine = [p for p in predictions if p.method == method and (bucket == "all" or p.bucket == bucket)]
            for kind in ("number", "list", "score"):
                group = [p for p in mine if p.kind == kind]
                if group:
                    rows.append(_row(method, bucket, kind, group))
    return rows


def _row(method: str, bucket: str, kind: str, group: list[Prediction]) -> EvalRow:
    tokens = round(float(np.mean([p.prompt_tokens for p in group])), 1)
    if kind == "number":
        scored = [p for p in group if p.error is not None]
        errors = np.array([p.error for p in scored], dtype=np.float64) if scored else np.zeros(1)
        evidence = [p.evidence_error for p in scored if p.evidence_error is not None]
        with_heads = [p for p in scored if p.heads]
        by_head = {
            h: round(float(np.mean([abs((p.heads or {})[h] - (p.gold or 0.0)) for p in with_heads])), 4)
            for h in RATING_HEADS
            if with_heads
        }
        return EvalRow(
            method,
            bucket,
            len(group),
            "mae",
            round(float(np.abs(errors).mean()), 4),
            rmse=round(float(np.sqrt((errors**2).mean())), 4),
            evidence_mae=round(float(np.abs(evidence).mean()), 4) if evidence else None,
            mae_by_head=by_head if with_heads else None,
            prompt_tokens=tokens,
        )
    if kind == "list":
        size = group[0].k
        return EvalRow(
            method,
            bucket,
            len(group),
            f"hr@{size}",
            round(float(np.mean([p.hit or 0.0 for p in group])), 4),
            prompt_tokens=tokens,
            extra={
                f"recall@{size}": round(float(np.mean([p.recall or 0.0 for p in group])), 4),
                f"ndcg@{size}": round(float(np.mean([p.ndcg or 0.0 for p in group])), 4),
                **_genre_extra(group),
            },
        )
    metric = "accuracy" if group[0].answer_type == "choice" else "rougeL"
    value = float(np.mean([p.score or 0.0 for p in group]))
    return EvalRow(method, bucket, len(group), metric, round(value, 4), prompt_tokens=tokens)


def _genre_extra(group: list[Prediction]) -> dict[str, float]:
    genre = [p.genre_precision for p in group if p.genre_precision is not None]
    return {"genre_precision": round(float(np.mean(genre)), 4), "genre_questions": len(genre)} if genre else {}


def plot_report(report: EvalReport, path: str) -> None:
    """Bars: one group per bucket, one bar per method (lower is better for MAE)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r.method for r in report.rows))
    buckets = [b for b in (*BUCKETS, "all") if any(r.bucket == b for r in report.rows)]
    metric = report.rows[0].metric if report.rows else ""
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        values = [next((r.value for r in report.rows if r.method == method and r.bucket == b), 0.0) for b in buckets]
        bars = ax.bar(np.arange(len(buckets)) + i * width, values, width, label=method)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(buckets)) + width * (len(methods) - 1) / 2)
    ax.set_xticklabels([f"{b}\n(n={report.buckets.get(b, report.items)})" for b in buckets], fontsize=8)
    better = "lower is better" if metric == "mae" else "higher is better"
    ax.set_ylabel(f"{metric} ({better})")
    ax.set_title(f"logo eval: {report.items} questions, {report.model}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
