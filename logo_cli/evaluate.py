"""Measures of how well logo's memories match known structure (the evaluation harness grows here)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .config import Settings
from .global_memory import GlobalMemory
from .mediator import MediatorOptions

if TYPE_CHECKING:
    from .ask import Asker
from .store import Store


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
RATING_VALUES = (1, 2, 3, 4, 5)
RATING_CANDIDATES = [f"Rating: {v}" for v in RATING_VALUES]


@dataclass
class EvalItem:
    id: str
    user: str
    query: str
    gold: float | str
    candidates: list[str] | None = None
    at: float | None = None

    @property
    def kind(self) -> str:
        if self.candidates:
            return "choice"
        return "number" if isinstance(self.gold, int | float) else "text"


def load_eval(path: str) -> list[EvalItem]:
    from .errors import BadRecord
    from .records import parse_time, parse_user, read_jsonl_objects

    items = []
    for line, obj in read_jsonl_objects(path):
        source = "<stdin>" if path == "-" else path
        if not isinstance(obj, dict):
            raise BadRecord(source, line, "expected a JSON object")
        try:
            user = parse_user(obj)
            query, gold = obj.get("query"), obj.get("gold")
            if not isinstance(query, str) or not query.strip():
                raise ValueError("missing or empty `query`")
            if isinstance(gold, bool) or not isinstance(gold, int | float | str):
                raise ValueError("`gold` must be a number or a string")
            candidates = obj.get("candidates")
            if candidates is not None and (
                not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates)
            ):
                raise ValueError("`candidates` must be a list of strings")
            if candidates is not None and gold not in candidates:
                raise ValueError("`gold` must be one of the `candidates`")
            at = parse_time(obj["at"]) if obj.get("at") is not None else None
        except ValueError as exc:
            raise BadRecord(source, line, str(exc)) from None
        items.append(EvalItem(str(obj.get("id", line)), user, query, gold, candidates, at))
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


def expected_rating(scores: Sequence[float]) -> float:
    """The model's expected rating from the log-likelihoods of "Rating: 1" ... "Rating: 5"."""
    return float((rating_distribution(scores) * np.asarray(RATING_VALUES)).sum())


def rating_distribution(scores: Sequence[float], prior: Sequence[float] | None = None) -> np.ndarray:
    """P(rating) from the candidates' log-likelihoods; with `prior`, contextually calibrated (Zhao et al.
    2021): divided by what the model gives a content-free question, which removes its own bias toward some
    ratings whatever the prompt says."""
    logits = np.asarray(scores, dtype=np.float64)
    if prior is not None:
        logits = logits - np.asarray(prior, dtype=np.float64)
    p = np.exp(logits - logits.max())
    return np.asarray(p / p.sum())


EMBED_BATCH = 64
RATING_HEADS = ("model", "calibrated", "anchored")
ANCHOR_SD = 1.0  # stars: how far from the mediator's estimate a rating may fall before it loses most weight


def rating_prediction(
    head: str, scores: Sequence[float], prior: Sequence[float] | None, estimate: float | None
) -> float:
    """The predicted rating by one of RATING_HEADS:

    - model: the model's expected rating;
    - calibrated: the same after contextual calibration;
    - anchored: the calibrated distribution times a Gaussian around the mediator's evidence estimate (a
      product of experts): the memory's estimate, reshaped by what the model reads in the prompt. Without
      an estimate (no memory, or no rated records) it is the calibrated head.
    """
    values = np.asarray(RATING_VALUES, dtype=np.float64)
    if head == "model":
        return expected_rating(scores)
    p = rating_distribution(scores, prior)
    if head == "anchored" and estimate is not None:
        p = p * np.exp(-((values - estimate) ** 2) / (2 * ANCHOR_SD**2))
        p /= p.sum()
    return float((p * values).sum())


@dataclass
class EvalRow:
    method: str
    bucket: str
    n: int
    metric: str
    value: float
    rmse: float | None = None
    evidence_mae: float | None = None  # the mediator's fused estimate alone, without the model
    mae_by_head: dict[str, float] | None = None  # numbers: the MAE of every rating head on the same scores
    prompt_tokens: float = 0.0


@dataclass
class EvalReport:
    rows: list[EvalRow]
    buckets: dict[str, int]
    items: int
    model: str
    embedder: str
    seconds: float
    predictions: list[dict[str, object]]
    rating_head: str = "anchored"
    scanned: int = 0  # questions looked at to fill the buckets


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


def choose_questions(
    judge: Asker, items: Sequence[EvalItem], *, per_bucket: int | None, seed: int, scan: int | None
) -> tuple[list[Chosen], Counter[str], int]:
    """The questions to run, each with its bucket as logo's mediator (`judge`) sees it at question time, the
    same for every method; and how many were looked at.

    With `per_bucket`, questions are looked at in seeded random order until every bucket is full or `scan`
    questions were looked at (default 40 per wanted question, at least 300; 0: all)."""
    from .ask import Question

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
        ctx, _, _ = judge.prepare(Question(item.user, item.query, item.id, item.at), vector)
        scanned += 1
        bucket = bucket_of(ctx.cold_start, ctx.biased, ctx.off_profile)
        if per_bucket is None or counts[bucket] < per_bucket:
            chosen.append(Chosen(item, bucket, vector))
            counts[bucket] += 1
        if per_bucket is not None and all(counts[b] >= per_bucket for b in BUCKETS):
            break
    return chosen, counts, scanned


def run_eval(
    settings: Settings,
    items: Sequence[EvalItem],
    methods: Sequence[str],
    *,
    base: MediatorOptions,
    per_bucket: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    rating_head: str = "anchored",
    scan: int | None = None,
) -> EvalReport:
    """Run the same questions through each memory mode with the same model, grouped by user bucket (questions
    chosen by `choose_questions`)."""
    from .ask import Asker, GenerationOptions, Question
    from .llm import Usage

    started = time.time()
    generation = GenerationOptions(max_tokens=64)
    askers = {m: Asker(settings, replace(base, memory=m), generation) for m in methods}  # type: ignore[arg-type]
    judge = askers.get("logo") or Asker(settings, replace(base, memory="logo"), generation)

    chosen, counts, scanned = choose_questions(judge, items, per_bucket=per_bucket, seed=seed, scan=scan)

    content_free: list[float] | None = None
    if any(c.item.kind == "number" for c in chosen):  # the model's prior over ratings, once per run
        blank = Asker(settings, replace(base, memory="none"), generation)
        _, messages, _ = blank.prepare(Question("", "How would this user rate N/A?"))
        content_free = [s.logprob for s in blank.generator.score(messages, RATING_CANDIDATES, Usage())]

    predictions: list[dict[str, object]] = []
    total = len(chosen) * len(methods)
    for done, (choice, method) in enumerate(((c, m) for c in chosen for m in methods), start=1):
        item, bucket, vector = choice.item, choice.bucket, choice.vector
        asker = askers[method]
        question = Question(item.user, item.query, item.id, item.at)
        row: dict[str, object] = {"id": item.id, "method": method, "bucket": bucket}
        if item.kind == "text":
            answer = asker.answer(question)
            row |= {
                "prediction": answer.answer,
                "score": rouge_l(answer.answer, str(item.gold)),
                "prompt_tokens": answer.usage.prompt_tokens,
            }
        else:
            ctx, messages, _ = asker.prepare(question, vector)
            usage = Usage()
            if item.kind == "number":
                logprobs = [s.logprob for s in asker.generator.score(messages, RATING_CANDIDATES, usage)]
                estimate = None
                if ctx.evidence and ctx.evidence.get("rating_estimate") is not None:
                    estimate = float(ctx.evidence["rating_estimate"])
                    row["evidence_error"] = estimate - float(item.gold)
                heads = {h: rating_prediction(h, logprobs, content_free, estimate) for h in RATING_HEADS}
                value = heads[rating_head]
                row |= {
                    "prediction": round(value, 3),
                    "gold": float(item.gold),
                    "error": value - float(item.gold),
                    "heads": {h: round(v, 3) for h, v in heads.items()},
                    "logprobs": [round(x, 4) for x in logprobs],
                    "estimate": estimate,
                }
            else:
                assert item.candidates is not None
                scores = asker.generator.score(messages, item.candidates, usage)
                pick = item.candidates[int(np.argmax([s.mean for s in scores]))]
                row |= {"prediction": pick, "score": float(pick == item.gold)}
            row["prompt_tokens"] = usage.prompt_tokens
        predictions.append(row)
        if progress:
            progress(done, total)

    rows = []
    for method in methods:
        for bucket in (*BUCKETS, "all"):
            mine = [p for p in predictions if p["method"] == method and (bucket == "all" or p["bucket"] == bucket)]
            if not mine:
                continue
            tokens = float(np.mean([float(p["prompt_tokens"]) for p in mine]))  # type: ignore[arg-type]
            if "error" in mine[0]:
                errors = np.array([float(p["error"]) for p in mine])  # type: ignore[arg-type]
                evidence = [float(p["evidence_error"]) for p in mine if "evidence_error" in p]  # type: ignore[arg-type]
                rows.append(
                    EvalRow(
                        method,
                        bucket,
                        len(mine),
                        "mae",
                        round(float(np.abs(errors).mean()), 4),
                        rmse=round(float(np.sqrt((errors**2).mean())), 4),
                        evidence_mae=round(float(np.abs(evidence).mean()), 4) if evidence else None,
                        mae_by_head={
                            h: round(float(np.mean([abs(p["heads"][h] - float(p["gold"])) for p in mine])), 4)  # type: ignore[index,arg-type]
                            for h in RATING_HEADS
                        },
                        prompt_tokens=round(tokens, 1),
                    )
                )
            else:
                metric = "accuracy" if items and items[0].kind == "choice" else "rougeL"
                value = float(np.mean([float(p["score"]) for p in mine]))  # type: ignore[arg-type]
                rows.append(EvalRow(method, bucket, len(mine), metric, round(value, 4), prompt_tokens=round(tokens, 1)))
    return EvalReport(
        rows=rows,
        buckets=dict(counts),
        items=len(chosen),
        model=judge.generator.id,
        embedder=judge.embedder.id,
        seconds=round(time.time() - started, 1),
        predictions=predictions,
        rating_head=rating_head,
        scanned=scanned,
    )


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
