"""Open answers: generated text, cut where a repetition loop starts (small models loop on a phrase)."""

from __future__ import annotations

import re

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
