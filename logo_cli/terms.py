"""Words as terms: the lexical side of matching a question to items (`watch` finds the films people
`watched`, `drama` the films tagged Drama), where a small embedder blurs what a question names.

A term is a lowercase word of three letters or more, not a stop word, with a light suffix strip (`watched`,
`watching`, `watches` -> `watch`; `films` -> `film`), the same for questions and records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_WORD = re.compile(r"[a-z][a-z'-]+")
# words any request or record may use, whatever it is about: they name no topic
_GENERIC = """recommend recommendation suggest suggestion idea ideas something anything thing things good great
best nice new next tonight today weekend week should could would want like love need please tell give make
got get really just also maybe still much many more most some any every lot time year years day days first last
one two three four five ten try tried little bit easy quick simple fun me my mine you your we our people"""


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | frozenset(_GENERIC.split())


def stem(word: str) -> str:
    word = word.strip("'-")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # "planned" -> "plan"
            return word
    if word.endswith("es") and len(word) > 4 and word[-3] in "sxzh":
        return word[:-2]  # "watches" -> "watch", "dishes" -> "dish"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The terms of a text, in order, repeats kept."""
    stops = stop_words()
    out = []
    for word in _WORD.findall(text.lower()):
        if len(word) < 3 or word in stops:
            continue
        term = stem(word)
        if len(term) >= 3 and term not in stops:
            out.append(term)
    return out


def distinct_terms(texts: Iterable[str]) -> set[str]:
    return {t for text in texts for t in terms(text)}
