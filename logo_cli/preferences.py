"""Preferences a person states in words ("I avoid X and prefer Y"), read by rules: which records state one,
and each clause of it as liked (+1) or disliked (-1), so an option like X counts against it and one like Y
for it. A whole statement's embedding cannot say which way it points: on PrefEval, the option most similar to
the stated preference was the one that violates it (most statements there say what people avoid).

A clause takes the polarity of its first cue word; a clause without one keeps the previous clause's (in
"I avoid loud bars, crowded clubs" both parts are disliked).
"""

from __future__ import annotations

import re

PREFERENCE = re.compile(  # a record that states a preference, not one that reports what happened
    r"\b(prefer|lov(?:e[sd]?|ing)\b|hate|avoid|allerg|can't stand|cannot stand|don't like|do not like|favou?rite|"
    r"vegetarian|vegan|dislike|aversion|rather not|stay away|steer clear|not a fan|enjoy)",
    re.IGNORECASE,
)
DISLIKE = re.compile(
    r"\b(hate[sd]?|avoid\w*|allerg\w*|can'?t stand|cannot stand|don'?t (?:like|enjoy|want|care for)|"
    r"do not (?:like|enjoy|want|care for)|dislike\w*|not a fan|aversion|averse|stay away|steer clear|"
    r"intoleran\w*|rather not|prefer not|uncomfortable|tired of|sick of|bored (?:by|of|with)|no longer|"
    r"detest\w*|loathe\w*|can'?t (?:eat|have|tolerate|bear)|won'?t)\b",
    re.IGNORECASE,
)
LIKE = re.compile(
    r"\b(prefer\w*|love[sd]?|loving|like[sd]?|enjoy\w*|favou?rite|fan of|adore\w*|passionate|appreciate\w*|"
    r"interested in|into|keen on|looking for|want)\b",
    re.IGNORECASE,
)
_CLAUSES = re.compile(
    r"\s*(?:;|,?\s+but\s+|,?\s+and\s+(?=i\b|prefer|favou?r|love|enjoy|like|would)|,?\s+while\s+|,?\s+whereas\s+|"
    r"[.!?]\s+)\s*",
    re.IGNORECASE,
)


def states_preference(text: str) -> bool:
    return PREFERENCE.search(text) is not None


def clauses(text: str) -> list[tuple[str, int]]:
    """The statement's clauses, each with +1 (liked) or -1 (disliked)."""
    out: list[tuple[str, int]] = []
    sign = 1
    for part in _CLAUSES.split(text):
        if not part.strip():
            continue
        dislike, like = DISLIKE.search(part), LIKE.search(part)
        if dislike and (not like or dislike.start() <= like.start()):
            sign = -1
        elif like:
            sign = 1
        out.append((part.strip(), sign))
    return out


def polarity(text: str) -> int:
    """+1 when the statement's first cue is a like (or it has none), -1 when it is a dislike."""
    found = clauses(text)
    return found[0][1] if found else 1
