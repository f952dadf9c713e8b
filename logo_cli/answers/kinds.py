"""Which kind of answer a question wants: the rule, with the patterns it reads (see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from ..rules import MAX_COUNT as MAX_COUNT  # the range of `count` is one of the rules


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
ENUMERATED = re.compile(r"(?:^|\s|\n)(?:\(?([A-Ha-h]|[1-9])[).:])\s+(.+?)(?=(?:\s|\n)\(?(?:[A-Ha-h]|[1-9])[).:]\s|$)")
OPTIONS_LIST = re.compile(r"\b(?:options|choices)\s*(?:are\s*:?|:)\s*(.+?)(?:[.?!]\s*$|$)", re.IGNORECASE)


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
