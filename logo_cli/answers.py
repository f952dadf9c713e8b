"""Answer types: what kind of answer a question wants, and how each kind is read off memory and the model.

A 135M model cannot be trusted to invent facts; it can choose among, order and phrase facts that memory
hands it. So `logo ask` gives each question a type, by this rule (first match wins; `--answer-type` or a
batch line's `answer_type` forces one):

1. **choice**: the batch line carries `candidates` (or `options`), or the question lists its options
   (`A) ... B) ...`, `1. ... 2. ...` or `options: x, y, z`). The answer is the option the model finds most
   likely (mean log-likelihood per token), with every option's score.
2. **rating**: the question asks for a rating, score or stars (`rate`, `rating`, `stars`, `score`,
   `out of N`, `/5`). The answer is a number on the question's scale (`on a 0.5-5 scale`, `out of 10`,
   `from 1 to 5`), else the data's (the ratings global memory saw: MovieLens has half stars), else 1-5. It
   is read off the model's likelihood of each value by the `anchored` head (below), then a sentence says
   where it comes from.
3. **recommend**: the question asks for suggestions (`recommend`, `suggest`, `ideas`, `what should I
   watch/cook/read/...`). The items come from memory only (see `recommend.py`); a count in the question
   (`three films`, `10 books`) is honoured, default 5.
4. **open**: everything else: generated text, kept short, cut at the first repetition loop.

Rating heads, from the log-likelihoods of `Rating: v/HI` for each value v of the scale:
- model: the model's distribution as it is;
- calibrated: divided by the model's distribution for a content-free question (contextual calibration,
  Zhao et al. 2021), which removes its own leaning toward some values whatever the prompt says;
- anchored (default): the calibrated distribution times a Gaussian around the mediator's estimate (sd
  ANCHOR_SD stars on a 5-star range): memory's estimate, reshaped by what the model reads in the prompt.
  Without an estimate it is the calibrated head.
The answer is the head's expected value rounded to the scale's step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from .modes import Memory


class AnswerType(StrEnum):
    AUTO = "auto"
    RATING = "rating"
    CHOICE = "choice"
    RECOMMEND = "recommend"
    OPEN = "open"


ANSWER_TYPES = tuple(t.value for t in AnswerType)

RATING_WORDS = re.compile(
    r"\b(rate|rates|rated|rating|ratings|stars?|score)\b|/\s*(5|10|100)\b|\bout of \d+", re.IGNORECASE
)
_ACQUIRE = (
    r"(watch|cook|make|read|visit|see|listen|play|try|plant|grow|eat|bake|buy|get|use|go|start|pick|learn|do|"
    r"stream|check\s+out)"
)
RECOMMEND_WORDS = re.compile(
    r"\b(recommend\w*|suggest\w*|ideas|idea\s+for)\b|"
    rf"\b(what|which)\b(\s+[\w']+){{0,3}}?\s+(should|could|can|shall|might)\s+(\w+\s+){{0,3}}?{_ACQUIRE}\b|"
    rf"\bwhere\s+(should|could|can)\s+(i|we)\s+(go|travel|stay|eat)\b|"
    rf"\bwhat('s|\s+is)\s+(an?\s+)?(easy|good|quick|nice|simple|fun|great)\b|"
    r"\bany\s+(good\s+|great\s+|new\s+)?[\w-]+(\s+[\w-]+)?\s+(for|to|from|i|you)\b",
    re.IGNORECASE,
)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a couple of": 2, "a few": 3, "a dozen": 12,
}  # fmt: skip
NOT_COUNTED = frozenset(
    {
        "minute",
        "minutes",
        "hour",
        "hours",
        "day",
        "days",
        "night",
        "nights",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "people",
        "person",
        "us",
        "times",
        "stars",
        "star",
        "euros",
        "dollars",
        "pounds",
        "kids",
        "children",
        "adults",
        "miles",
        "km",
        "kilometres",
        "kilometers",
    }
)  # what a number in a question counts when it is not how many items to suggest
DEFAULT_COUNT = 5
MAX_COUNT = 50
ENUMERATED = re.compile(r"(?:^|\s|\n)(?:\(?([A-Ha-h]|[1-9])[).:])\s+(.+?)(?=(?:\s|\n)\(?(?:[A-Ha-h]|[1-9])[).:]\s|$)")
OPTIONS_LIST = re.compile(r"\b(?:options|choices)\s*(?:are\s*:?|:)\s*(.+?)(?:[.?!]\s*$|$)", re.IGNORECASE)

ANCHOR_SD = 1.0  # stars on a 5-star range: how far from memory's estimate a rating may fall and still weigh
RATING_HEADS = ("model", "calibrated", "anchored")
DEFAULT_HEAD = "anchored"


@dataclass(frozen=True)
class RatingScale:
    low: float = 1.0
    high: float = 5.0
    step: float = 1.0

    @property
    def values(self) -> list[float]:
        n = round((self.high - self.low) / self.step)
        return [round(self.low + i * self.step, 4) for i in range(n + 1)]

    def candidates(self) -> list[str]:
        """What the model is scored on: the value, then `/HIGH`, so `3` cannot also stand for the start of
        `3.5` (a continuation's likelihood would otherwise include every longer one)."""
        return [f"Rating: {v:g}/{self.high:g}" for v in self.values]

    def snap(self, value: float) -> float:
        steps = round((min(max(value, self.low), self.high) - self.low) / self.step)
        return round(self.low + steps * self.step, 4)

    def to_json(self) -> list[float]:
        return [self.low, self.high, self.step]


_SCALE_RANGE = re.compile(
    r"(?:on\s+a\s+|from\s+|scale\s+(?:of\s+)?|between\s+)?(\d+(?:\.\d+)?)\s*(?:-|–|to|and)\s*(\d+(?:\.\d+)?)"
    r"(?:\s*(?:scale|stars?|points?))?",
    re.IGNORECASE,
)
_OUT_OF = re.compile(r"\bout\s+of\s+(\d+(?:\.\d+)?)|/\s*(\d+)\b", re.IGNORECASE)
_HALF = re.compile(r"\bhalf[- ]stars?\b|\bhalves\b", re.IGNORECASE)


def scale_from_question(query: str) -> RatingScale | None:
    """The scale a question states: `on a 0.5-5 scale`, `from 1 to 10`, `out of 10`, `/5`; half stars when
    the low end has a fraction or the question says so."""
    for match in _SCALE_RANGE.finditer(query):
        low, high = float(match.group(1)), float(match.group(2))
        context = query[max(0, match.start() - 30) : match.end() + 12].lower()
        if not (0 <= low < high <= 100) or not re.search(r"scale|star|from|between|rate|rating|score", context):
            continue
        step = 0.5 if (low % 1 or _HALF.search(query)) else 1.0
        return RatingScale(low, high, step)
    out_of = _OUT_OF.search(query)
    if out_of:
        high = float(out_of.group(1) or out_of.group(2))
        if 1 < high <= 100:
            low = 0.5 if _HALF.search(query) else 1.0
            return RatingScale(low, high, 0.5 if _HALF.search(query) else 1.0)
    return None


def scale_for(query: str, rating_range: Sequence[float] | None, rating_step: float | None) -> RatingScale:
    """The question's scale, else the data's (what global memory saw), else 1-5 whole stars."""
    stated = scale_from_question(query)
    if stated is not None:
        return stated
    if rating_range is not None:
        low, high = float(rating_range[0]), float(rating_range[1])
        step = rating_step or 1.0
        if high > low and (high - low) / step <= 20:
            return RatingScale(low, high, step)
    return RatingScale()


def options_in(query: str) -> list[str] | None:
    """Options the question lists itself: `A) x B) y`, `1. x 2. y` (each at least two), or `options: x, y`."""
    found = [m.group(2).strip(" ,;?!.") for m in ENUMERATED.finditer(query)]
    if len(found) >= 2:
        return found
    listed = OPTIONS_LIST.search(query)
    if listed:
        parts = [p.strip(" .") for p in re.split(r",|;|\bor\b", listed.group(1)) if p.strip(" .")]
        if len(parts) >= 2:
            return parts
    return None


def asks_rating(query: str) -> bool:
    return RATING_WORDS.search(query) is not None  # whole words: "pirate" and "accurate" ask for no rating


def asks_recommendation(query: str) -> bool:
    return RECOMMEND_WORDS.search(query) is not None


def requested_count(query: str) -> int | None:
    """How many items the question asks for (`three films`, `top 10`, `a few ideas`), if it says: a number
    followed by a word, unless one of the next three words says it counts something else (`three free days`,
    `for two people`)."""
    words = re.findall(r"[a-z0-9']+", query.lower())
    text = " ".join(words)
    for phrase in ("a couple of", "a few", "a dozen"):
        text = text.replace(phrase, phrase.replace(" ", "_"))
    words = text.split()
    for i, word in enumerate(words):
        key = word.replace("_", " ")
        if not (word.isdigit() or key in NUMBER_WORDS) or i + 1 >= len(words):
            continue
        if i > 0 and words[i - 1] in ("for", "in", "at", "of", "than", "over", "under", "about"):
            continue  # "dinner for two", "in 3 days", "at 7", "one of ..."
        if any(w in NOT_COUNTED for w in words[i + 1 : i + 4]) or words[i + 1] in ("of", "or", "and", "to"):
            continue
        n = int(word) if word.isdigit() else NUMBER_WORDS[key]
        return max(1, min(n, MAX_COUNT))
    return None


def detect(query: str, candidates: Sequence[str] | None = None) -> AnswerType:
    """The answer type by the rule in the module docstring."""
    if candidates or options_in(query):
        return AnswerType.CHOICE
    if asks_rating(query):
        return AnswerType.RATING
    if asks_recommendation(query):
        return AnswerType.RECOMMEND
    return AnswerType.OPEN


# ------------------------------------------------------------------------------------------------- ratings


def rating_distribution(scores: Sequence[float], prior: Sequence[float] | None = None) -> np.ndarray:
    """P(value) from the candidates' log-likelihoods; with `prior`, contextually calibrated."""
    logits = np.asarray(scores, dtype=np.float64)
    if prior is not None:
        logits = logits - np.asarray(prior, dtype=np.float64)
    p = np.exp(logits - logits.max())
    return np.asarray(p / p.sum())


def head_distribution(
    head: str,
    scores: Sequence[float],
    prior: Sequence[float] | None,
    estimate: float | None,
    scale: RatingScale,
) -> np.ndarray:
    """P(value) over the scale's values by one of RATING_HEADS (see the module docstring)."""
    if head == "model":
        return rating_distribution(scores)
    p = rating_distribution(scores, prior)
    if head == "anchored" and estimate is not None:
        values = np.asarray(scale.values, dtype=np.float64)
        sd = ANCHOR_SD * (scale.high - scale.low) / 4.0
        p = p * np.exp(-((values - estimate) ** 2) / (2 * sd**2))
        p /= p.sum()
    return p


def expected_value(p: np.ndarray, scale: RatingScale) -> float:
    return float((p * np.asarray(scale.values, dtype=np.float64)).sum())


@dataclass
class RatingAnswer:
    value: float  # on the scale: what the text says
    expected: float  # the head's expected value before rounding
    distribution: dict[str, float]
    scale: RatingScale
    head: str
    estimate: float | None  # the mediator's estimate the anchored head leaned on
    heads: dict[str, float]  # every head's expected value on the same scores (for eval's comparisons)
    scores: list[float] = field(default_factory=list)  # the model's log-likelihood of each value
    prior: list[float] | None = None  # the same for the content-free question

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale.to_json(),
            "head": self.head,
            "expected": round(self.expected, 3),
            "estimate": self.estimate,
            "distribution": self.distribution,
            "heads": {h: round(v, 3) for h, v in self.heads.items()},
        }


def rating_answer(
    scores: Sequence[float],
    prior: Sequence[float] | None,
    estimate: float | None,
    scale: RatingScale,
    head: str = DEFAULT_HEAD,
) -> RatingAnswer:
    heads = {h: expected_value(head_distribution(h, scores, prior, estimate, scale), scale) for h in RATING_HEADS}
    p = head_distribution(head, scores, prior, estimate, scale)
    expected = expected_value(p, scale)
    return RatingAnswer(
        value=scale.snap(expected),
        expected=expected,
        distribution={f"{v:g}": round(float(x), 4) for v, x in zip(scale.values, p, strict=True)},
        scale=scale,
        head=head,
        estimate=estimate,
        heads=heads,
        scores=[round(float(x), 4) for x in scores],
        prior=[round(float(x), 4) for x in prior] if prior is not None else None,
    )


def _degree(offset: float, scale: RatingScale) -> str:
    size = abs(offset) / ((scale.high - scale.low) / 4.0)  # in stars of a 5-star range
    side = "above" if offset > 0 else "below"
    if size < 0.15:
        return "about as others do"
    if size < 0.6:
        return f"a little {side} others"
    return f"well {side} others"


def rating_reason(evidence: dict[str, Any] | None, memory: str, scale: RatingScale) -> str:
    """Where the number comes from, in one sentence, from the mediator's evidence alone."""
    if not Memory(memory).reads_any or not evidence or evidence.get("rating_estimate") is None:
        return "no memory was used: this is the model's own reading of the question"
    parts = []
    items = evidence.get("items") or []
    if items:
        top = items[0]
        parts.append(f"{top['ratings']} ratings of {top['item']} average {top['rating_mean']:.1f}")
    elif evidence.get("population_rating") is not None:
        parts.append(f"people rate things like this {evidence['population_rating']:.1f} on average")
    offset, n = evidence.get("user_offset"), int(evidence.get("offset_records") or 0)
    if offset is not None and n:
        parts.append(f"you rate similar things {_degree(float(offset), scale)} ({n} of your ratings)")
    elif evidence.get("user_rating") is not None:
        parts.append(f"you gave similar things {evidence['user_rating']:.1f}")
    elif Memory(memory).reads_global:
        parts.append("you have no similar ratings yet")
    return ", and ".join(parts) if parts else "from memory's estimate"


def rating_text(answer: RatingAnswer, reason: str) -> str:
    return f"{answer.value:g}/{answer.scale.high:g}: {reason}."


# ------------------------------------------------------------------------------------------------- choices


@dataclass
class ChoiceAnswer:
    option: str
    scores: list[dict[str, Any]]  # every option: its mean and total log-likelihood


def choice_answer(options: Sequence[str], means: Sequence[float], totals: Sequence[float]) -> ChoiceAnswer:
    best = int(np.argmax(means))
    return ChoiceAnswer(
        option=options[best],
        scores=[
            {"option": o, "score": round(float(m), 4), "logprob": round(float(t), 4)}
            for o, m, t in zip(options, means, totals, strict=True)
        ],
    )


# ---------------------------------------------------------------------------------------------- open text

LOOP_NGRAM = 4  # a run of this many words...
LOOP_REPEATS = 3  # ...seen this many times is a loop


def looping(text: str) -> int | None:
    """Where a repetition loop starts in `text` (a sentence said twice, or a 4-word run said three times), so
    the answer can stop there; None while there is none."""
    sentences = [m for m in re.finditer(r"[^.!?\n]+[.!?\n]", text)]
    seen: set[str] = set()
    for match in sentences:
        key = " ".join(match.group(0).lower().split())
        if len(key.split()) >= 3 and key in seen:
            return match.start()
        seen.add(key)
    words = list(re.finditer(r"\S+", text))
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - LOOP_NGRAM + 1):
        gram = tuple(w.group(0).lower() for w in words[i : i + LOOP_NGRAM])
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] == LOOP_REPEATS:
            return words[i].start()
    return None
