"""Choice answers: the option the model finds most likely, with every option's score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


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
