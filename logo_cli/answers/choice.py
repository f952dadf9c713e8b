"""Choice answers: the best of the options, by what memory knows about this user and each option together with
the model's reading of the prompt.

Each option is first matched to global memory's item table (`ItemTable.find`: case, punctuation, a trailing
year and "The X" against "X, The" do not matter). For every option the features are (each centred on the
options' mean, so only differences between options count):

    model     the model's mean log-likelihood per token of the option after the prompt (one evaluation of
              the prompt; options scored as a trie)
    estimate  memory's rating estimate for this user and the item (`evidence`: population rating, the user's
              offset, their ratings of the items the same people have), on the data's scale; matched only
    together  the collaborative score of the item from the user's liked items, over the options' best
    popular   log(1 + people who have the item), over the options' best
    content   similarity to the user's liked records
    stated    the user's stated preferences (`preferences`): similarity to what they said they like, minus
              similarity to what they said they avoid, over their statements' clauses

and the option's score is the weighted sum (the weights below: a conditional logit fitted on the selection
half of the MovieLens choice questions and, for `stated`, of PrefEval's, by bench/choice_select.py; see
docs/evaluation.md). A feature an option lacks (an unmatched option has no estimate) counts as the options'
mean. The answer is the option with the highest score; `probability` is the softmax of the scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evidence import UNCOUNTED_PEOPLE, ItemEvidence, people_reason

# the head: a conditional logit over the options (bench/choice_select.py)
WEIGHTS = {  # bench/choice_select.py on the selection halves (MovieLens choice half 0 + PrefEval half 0)
    "model": 0.062,
    "estimate": 0.944,
    "together": 0.788,
    "popular": 0.0,
    "content": 0.043,
    "stated": 0.772,
}
FEATURES = tuple(WEIGHTS)


@dataclass
class OptionScore:
    option: str
    model: float  # mean log-likelihood per token
    logprob: float  # total log-likelihood
    evidence: ItemEvidence | None = None  # what memory knows about the item it matched
    popular: float | None = None  # log(1 + people with a record of it)
    stated: float = 0.0
    liked_clause: str | None = None  # what the user said they like that the option is most like
    avoided_clause: str | None = None  # what the user said they avoid that the option is most like
    avoided_similarity: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    probability: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "option": self.option,
            "item": self.evidence.item if self.evidence is not None else None,
            "score": round(self.score, 4),
            "probability": round(self.probability, 4),
            "model_score": round(self.model, 4),
            "logprob": round(self.logprob, 4),
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }
        if self.evidence is not None:
            out["memory"] = self.evidence.to_json()
        if self.liked_clause is not None or self.avoided_clause is not None:
            out["stated"] = {"score": round(self.stated, 4), "like": self.liked_clause, "avoid": self.avoided_clause}
        return out


@dataclass
class ChoiceAnswer:
    option: str
    scores: list[dict[str, Any]]  # every option, as OptionScore.to_json
    reason: str
    options: list[OptionScore] = field(default_factory=list, repr=False)


def _centred(values: Sequence[float | None]) -> np.ndarray:
    known = [v for v in values if v is not None and np.isfinite(v)]
    if not known:
        return np.zeros(len(values))
    mean = float(np.mean(known))
    return np.array([0.0 if v is None or not np.isfinite(v) else v - mean for v in values])


def _over_best(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return x / top if top > 0 else np.zeros_like(x)


def features(options: Sequence[OptionScore]) -> np.ndarray:
    """options x FEATURES, each centred on the options' mean (see the module docstring)."""
    columns = {
        "model": _centred([o.model for o in options]),
        "estimate": _centred([o.evidence.estimate if o.evidence else None for o in options]),
        "together": _centred(list(_over_best([o.evidence.together if o.evidence else 0.0 for o in options]))),
        "popular": _centred(list(_over_best([o.popular or 0.0 for o in options]))),
        "content": _centred([o.evidence.content if o.evidence else None for o in options]),
        "stated": _centred([o.stated for o in options]),
    }
    return np.stack([columns[f] for f in FEATURES], axis=1)


def choice_answer(options: list[OptionScore], scale_high: float | None = None) -> ChoiceAnswer:
    """The option with the highest weighted score, and a reason from memory."""
    x = features(options)
    weights = np.array([WEIGHTS[f] for f in FEATURES])
    scores = x @ weights
    p = np.exp(scores - scores.max())
    p /= p.sum()
    for o, row, score, prob in zip(options, x, scores, p, strict=True):
        o.features = {f: float(v) for f, v in zip(FEATURES, row, strict=True)}
        o.score, o.probability = float(score), float(prob)
    best = int(np.argmax(scores))
    pick = options[best]
    return ChoiceAnswer(
        option=pick.option,
        scores=[o.to_json() for o in options],
        reason=choice_reason(pick, options, scale_high),
        options=options,
    )


def choice_reason(pick: OptionScore, options: Sequence[OptionScore], scale_high: float | None) -> str:
    """Where the pick comes from, from memory alone: the item's rating and the user's liked record it is like,
    or the user's own statement; else that it is the model's reading."""
    parts = []
    item = pick.evidence
    if item is not None:
        if item.quoted_mean is not None:
            high = f"/{scale_high:g}" if scale_high else ""
            parts.append(f"{item.quoted_mean:.1f}{high} from {item.ratings} ratings")
        elif item.raters and (people := people_reason(item.raters, item.raters_noise)) is not None:
            parts.append(people)
        elif item.raters and not item.because:
            parts.append(UNCOUNTED_PEOPLE)
        if item.because and item.because_rating is not None:
            parts.append(f"like {item.because}, which you rated {item.because_rating:g}")
        elif item.because and item.content > 0:
            parts.append(f"like {item.because}")
    if WEIGHTS["stated"] > 0 and pick.features.get("stated", 0.0) > 0:  # cited only where it counts
        if pick.liked_clause is not None:
            parts.append(f'it fits what you said: "{_short(pick.liked_clause)}"')
        else:
            worst = max(options, key=lambda o: o.avoided_similarity)
            if worst.avoided_clause is not None and worst is not pick:
                parts.append(f'the others are closer to what you avoid: "{_short(worst.avoided_clause)}"')
    if not parts:
        known = sum(o.evidence is not None for o in options)
        parts.append(
            "memory knows none of these options: this is the model's reading"
            if not known
            else "the model's reading, with what memory knows of the others"
        )
    return "; ".join(parts)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def choice_text(answer: ChoiceAnswer) -> str:
    return f"{answer.option}: {answer.reason}."
