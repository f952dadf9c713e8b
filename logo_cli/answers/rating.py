"""Rating answers: the scale (stated by the question, else the data's), the heads that read a number off the
model's likelihood of each value, and the sentence that says where the number comes from."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evidence import quoted_mean
from ..modes import Memory

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
        steps = math.floor((min(max(value, self.low), self.high) - self.low) / self.step + 0.5)  # halves up
        return round(self.low + steps * self.step, 4)

    def to_json(self) -> list[float]:
        return [self.low, self.high, self.step]


_NUMBER = r"(\d+(?:\.\d+)?)"
_SCALE_RANGE = re.compile(  # a range with a scale word right beside it, before or after
    rf"(?:\b(?:on\s+an?|scale\s+(?:of|from)|rate\s+\w+(?:\s+\w+){{0,4}}?\s+from|from)\s+{_NUMBER}\s*(?:-|–|to)\s*{_NUMBER}"
    rf"(?=\s*(?:scale|stars?|points?)?\b))|(?:{_NUMBER}\s*(?:-|–|to)\s*{_NUMBER}\s*(?:-\s*)?(?:point\s+)?"
    r"(?:scale|stars?|points?)\b)",
    re.IGNORECASE,
)
_OUT_OF = re.compile(r"\bout\s+of\s+(\d+(?:\.\d+)?)|(?<![\d.])/\s*(5|10|100)\b", re.IGNORECASE)
_HALF = re.compile(r"\bhalf[- ]stars?\b|\bhalves\b", re.IGNORECASE)


def scale_from_question(query: str) -> RatingScale | None:
    """The scale a question states: `on a 0.5-5 scale`, `from 1 to 10`, `out of 10`, `/5`; half stars when
    the low end has a fraction or the question says so."""
    out_of = None
    for match in _SCALE_RANGE.finditer(query):
        found = [g for g in match.groups() if g is not None]
        low, high = float(found[0]), float(found[1])
        if not (0 <= low < high <= 100):
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
    """The question's scale, else the data's (what global memory saw, from 1 unless ratings went lower: nobody
    happened to give 1 star is no reason for a scale to start at 1.5), else 1-5 whole stars."""
    stated = scale_from_question(query)
    if stated is not None:
        return stated
    if rating_range is not None:
        low, high = min(float(rating_range[0]), 1.0), float(rating_range[1])
        step = rating_step or 1.0
        if high > low and (high - low) / step <= 20:
            return RatingScale(low, high, step)
    return RatingScale()


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
    if head == "model" or (head == "anchored" and estimate is None):
        # without memory's estimate, calibration alone blows up values the content-free prompt finds rare (on
        # half stars, `0.5/5`): on the MovieLens selection run `none` fell from 2.16 MAE to 1.14 this way
        return rating_distribution(scores)
    if head == "anchored" and estimate is not None:  # in log space: a far estimate must not underflow to 0
        values = np.asarray(scale.values, dtype=np.float64)
        sd = ANCHOR_SD * (scale.high - scale.low) / 4.0
        anchor = -((values - estimate) ** 2) / (2 * sd**2)
        return rating_distribution(list(np.asarray(scores, dtype=np.float64) + anchor), prior)
    return rating_distribution(scores, prior)


def rescale(value: float, source: RatingScale, target: RatingScale) -> float:
    """A value on one scale read on another (memory's estimate is on the data's scale, the question may state
    its own: 4.5 of 0.5-5 is 9 of 1-10)."""
    if (source.low, source.high) == (target.low, target.high) or source.high <= source.low:
        return value
    share = (value - source.low) / (source.high - source.low)
    return target.low + share * (target.high - target.low)


def median_value(p: np.ndarray, scale: RatingScale) -> float:
    """The value at which the distribution reaches half its mass: the number with the least expected absolute
    error if the distribution is right (chosen over the rounded mean on a MovieLens selection run)."""
    values = scale.values
    return float(values[min(int(np.searchsorted(np.cumsum(p), 0.5)), len(values) - 1)])


def expected_value(p: np.ndarray, scale: RatingScale) -> float:
    return float((p * np.asarray(scale.values, dtype=np.float64)).sum())


@dataclass
class RatingAnswer:
    value: float  # on the scale: what the text says (the head's median)
    expected: float  # the head's expected value
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
        value=median_value(p, scale),
        expected=expected,
        distribution={f"{v:g}": round(float(x), 4) for v, x in zip(scale.values, p, strict=True)},
        scale=scale,
        head=head,
        estimate=estimate,
        heads=heads,
        scores=[round(float(x), 4) for x in scores],
        prior=[round(float(x), 4) for x in prior] if prior is not None else None,
    )


def given_rating(value: float, scale: RatingScale) -> RatingAnswer:
    """The answer when the user already rated what the question names: their rating, on the question's scale,
    with no model reading (head `own`)."""
    return RatingAnswer(
        value=value,
        expected=value,
        distribution={f"{v:g}": float(v == value) for v in scale.values},
        scale=scale,
        head="own",
        estimate=value,
        heads={h: value for h in RATING_HEADS},
    )


def own_rating_reason(own: dict[str, Any], scale: RatingScale) -> str:
    """`you rated Parasite 2/5 on 2025-01-10`: where a given rating comes from (`own`: the record, as JSON; the
    `scale` its rating was given on)."""
    when = f" on {str(own['timestamp'])[:10]}" if own.get("timestamp") else ""
    return f"you rated {own.get('item')} {float(own['rating']):g}/{scale.high:g}{when}"


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
    if not Memory(memory).reads_any:
        return "no memory was used: this is the model's own reading of the question"
    if not evidence or evidence.get("rating_estimate") is None:
        return "memory holds no ratings like this: this is the model's own reading of the question"
    parts = []
    items = evidence.get("items") or []
    items = [i for i in items if quoted_mean(i.get("rating_mean"), i.get("rating_mean_noise")) is not None]
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
