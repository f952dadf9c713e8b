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


# English stop words (the 318 of scikit-learn's ENGLISH_STOP_WORDS, from the Glasgow IR group's list), kept
# here so a question's terms need no scikit-learn import (2.5 s in a one-shot `logo ask`)
_STOP = """a about above across after afterwards again against all almost alone along already also although always am
among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back
be became because become becomes becoming been before beforehand behind being below beside besides between
beyond bill both bottom but by call can cannot cant co con could couldnt cry de describe detail do done down
due during each eg eight either eleven else elsewhere empty enough etc even ever every everyone everything
everywhere except few fifteen fifty fill find fire first five for former formerly forty found four from front
full further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself
him himself his how however hundred i ie if in inc indeed interest into is it its itself keep last latter
latterly least less ltd made many may me meanwhile might mill mine more moreover most mostly move much must my
myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of
off often on once one only onto or other others otherwise our ours ourselves out over own part per perhaps
please put rather re same see seem seemed seeming seems serious several she should show side since sincere six
sixty so some somehow someone something sometime sometimes somewhere still such system take ten than that the
their them themselves then thence there thereafter thereby therefore therein thereupon these they thick thin
third this those though three through throughout thru thus to together too top toward towards twelve twenty
two un under until up upon us very via was we well were what whatever when whence whenever where whereafter
whereas whereby wherein whereupon wherever whether which while whither who whoever whole whom whose why will
with within without would yet you your yours yourself yourselves"""


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    return frozenset(_STOP.split()) | frozenset(_GENERIC.split())


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
