"""Every default and range of a question's options, written once.

The command line's options (`ask`, `ask -`, `eval`, `profile`, `ingest`), the typed request model that reads
a question line or a server request (`request.py`), `MediatorOptions` and `GenerationOptions` all take their
defaults and bounds from here, so `logo ask`, `logo ask -`, `logo eval` and `logo serve` accept exactly the
same values and refuse the same ones with the same words.

Pure standard library: `logo --help` reads this module (typer needs the defaults to show them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .modes import MEMORY_MODES


@dataclass(frozen=True)
class Rule:
    """One option: its default, its bounds (inclusive) or its choices, and what it means."""

    default: Any
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    kind: type = int

    def expects(self) -> str:
        """What a valid value is, in words: `an integer from 0 to 50`, `one of rag, profile, profile+rag`."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        noun = {int: "an integer", float: "a number", bool: "true or false", str: "text"}[self.kind]
        if self.ge is not None and self.le is not None:
            return f"{noun} from {_num(self.ge)} to {_num(self.le)}"
        if self.ge is not None:
            return f"{noun} of at least {_num(self.ge)}"
        if self.le is not None:
            return f"{noun} of at most {_num(self.le)}"
        return noun


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


LOCAL_MODES: tuple[str, ...] = ("rag", "profile", "profile+rag")

# ----- which memory, and how much of it
MEMORY = Rule("logo", choices=MEMORY_MODES, kind=str, help="Memory sources: logo (both), local, global or none.")
LOCAL = Rule(
    "rag",
    choices=LOCAL_MODES,
    kind=str,
    help="How local memory enters the prompt: rag (retrieved records), profile (a rule-built profile), or "
    "profile+rag (both).",
)
LOCAL_K = Rule(4, 0, 50, help="Most of the user's records in the prompt.")
GLOBAL_K = Rule(3, 0, 20, help="Most population clusters in the prompt.")
# ----- who is cold-start or biased
MOST_RECORDS = 10**9  # a bound on record counts a threshold may name: past 2^63 a count was a 500 in `logo serve`
COLD_START_MAX = Rule(3, 0, MOST_RECORDS, help="Users with at most this many records are cold-start.")
BIASED_MIN_HISTORY = Rule(20, 1, MOST_RECORDS, help="Biased users have at least this many records...")
BIASED_MAX_DIVERSITY = Rule(
    0.7,  # of relative_diversity; flags ~7% of MovieLens users (selection half)
    0.0,
    1.0,
    kind=float,
    help="...and at most this diversity (entropy over clusters against a random history of the same length).",
)
# ----- the answer
MAX_TOKENS = Rule(160, 1, 4096, help="Longest open answer, in tokens.")  # `logo serve` may cap it lower
TEMPERATURE = Rule(0.0, 0.0, 2.0, kind=float, help="0 gives reproducible answers.")
SEED = Rule(0, 0, 2**31 - 1, help="Sampling seed.")
MAX_COUNT = 50
COUNT = Rule(None, 1, MAX_COUNT, help="Items to recommend.")
QUERY_MAX_CHARS = 4000  # about 1,000 tokens: twice the prompt budget, half the model's context
ID_MAX_CHARS = 200
CANDIDATES_MAX = 50
# ----- ingest
BATCH_SIZE = Rule(2048, 1, 100_000, help="Records embedded and written per batch.")

ASK_OPTIONS: dict[str, Rule] = {  # a question's options, by the name a request or a question line uses
    "memory": MEMORY,
    "local": LOCAL,
    "local_k": LOCAL_K,
    "global_k": GLOBAL_K,
    "cold_start_max": COLD_START_MAX,
    "biased_min_history": BIASED_MIN_HISTORY,
    "biased_max_diversity": BIASED_MAX_DIVERSITY,
    "max_tokens": MAX_TOKENS,
    "temperature": TEMPERATURE,
    "seed": SEED,
}

# ----- building global memory (logo build-global): the differential privacy of population figures
EPSILON = Rule(
    3.0,
    help="Differential privacy budget: the most the statistics everyone sees reveal about one record "
    "(a rating). Smaller protects more and adds more noise. 'inf': exact statistics, research only.",
    kind=float,
)
_HALF_A_YEAR = 182.0
PERIOD_DAYS = Rule(
    _HALF_A_YEAR,
    1,
    3653,  # ten years: a longer period would hardly ever close, and `--at` would see nothing
    help="Length of the periods statistics are released in: `--at` sees the periods ended by then. "
    f"Default: the store's last release's, else {_HALF_A_YEAR:g} (half a year).",
    kind=float,
)
