"""The differentially private release of population statistics (OpenDP), over time.

What everyone's answers read about the population (item and cluster counts, rating means, trends, label
counts, community sizes) comes from here, not from the exact arrays the build keeps for the operator.

- **Unit**: one record (a rating, and the item and cluster it counts in). `--epsilon E` bounds what all the
  releases that contain one record say about it: its privacy loss is at most E (see `SHARES`).
- **Periods**: records fall into fixed calendar periods of `period_days` (counted from 1970, the same for
  every build and store); undated records into one more, "undated", which only the latest view reads.
- **Cells**: each statistic (a `Family`) is a table of cells, one per key (an item, a cluster...) and
  period, holding the exact value and its noisy release. Every cell of the grid is released, zeros too:
  skipping a zero would tell that nobody was there.
- **Never redrawn**: a build releases a cell once: with noise on its exact value when it is new, or noise on
  the change since its last release while its period is still open (the one a build happens in, and
  "undated"). A closed period's cells, once released, are final: the next build, `--update`, `--at` and the
  other engine all read the same stored noisy numbers. A rating enters exactly one noisy increment.
- **Views** are sums of released cells: `--at T` reads the periods that ended at or before T; the latest view
  reads them all. Item cells count by the chance they hold anyone (`denoise`, with priors kept here per
  period). Thresholds (min_users) apply to the noisy counts. Both are post-processing: no budget.
- **Ledger**: every build appends what it released, with which epsilon, noise scale and sensitivity.

Noise comes from OpenDP's discrete Laplace mechanism on integer cells (rating sums count rating steps,
centred on the middle of the scale). OpenDP's samplers take no seed on purpose (a seed that reproduces the
noise removes it), so the stored releases are what makes the numbers reproducible.

A flat sum of per-period increments adds noise as sqrt(periods); a b-ary tree as log(periods)^1.5. A view at a
moment reads less noise from flat increments up to about 60 periods, 30 years at the default half year
(docs/privacy.md shows the measurement), so increments are flat, and a build past ADVISED_PERIODS says so.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import rules
from .denoise import Priors, fit, presence, scales

DEFAULT_EPSILON = float(rules.EPSILON.default)  # per record
DEFAULT_PERIOD_DAYS = float(rules.PERIOD_DAYS.default)
UNDATED = np.iinfo(np.int64).max  # the period key of undated records
TOTAL = UNDATED  # families without time (labels, communities) have this one, always open, column
DAY = 86_400.0
DRAW_CHUNK = 50_000  # cells drawn per OpenDP call (parts run on threads)
UNDATED_SIGMAS = 2.0  # the latest view counts the undated period where it is this far above its noise
# Beyond this many periods OpenDP's b-ary tree (b = 4) gives a less noisy view than flat increments (0.88 of
# their error at 100 periods, 0.43 at 1000: bench/privacy_noise.py). logo has no tree: a build says so.
ADVISED_PERIODS = 100

# The share of epsilon each statistic gets. One record counts in one cell of each, so its loss is their sum:
# epsilon. The item rating sum gets the most (it is what a difference attack reads); clusters are large, so
# their figures bear noise well.
SHARES: dict[str, float] = {
    "item_rating_sum": 1 / 4,
    "item_ratings": 1 / 6,
    "item_users": 1 / 6,
    "cluster_records": 1 / 24,
    "cluster_users": 1 / 12,
    "cluster_rated": 1 / 12,
    "cluster_rating_sum": 1 / 12,
    "cluster_labels": 1 / 24,
    "cluster_keywords": 1 / 24,
    "communities": 1 / 24,
}
# A person counts in the period of their first record of the item (or in the cluster): a record earlier than
# that moves them to its period, one cell down and one up (found by a helper auditing the ledger).
PEOPLE_SENSITIVITY = 2
PEOPLE_FAMILIES = ("item_users", "cluster_users")
# Counts of records: a cell of them falls only when records leave it. (A sum falls when low ratings come in; a
# people count when an earlier record moves its person to another period.)
FALL_ONLY_WHEN_RECORDS_LEAVE = ("item_ratings", "cluster_records", "cluster_rated", "cluster_labels")
CLUSTER_FAMILIES = ("cluster_records", "cluster_users", "cluster_rated", "cluster_rating_sum", "cluster_labels")
# Drawn afresh every build (their old records pay again, in the ledger): a record can move its user to another
# community; the keyword candidates, and so the words a record counts for, change with the texts.
REDRAWN = ("communities", "cluster_keywords")
WITHOUT_TIME = ("cluster_labels", "cluster_keywords", "communities")
ITEM_FAMILIES = ("item_users", "item_ratings", "item_rating_sum")
# Item figures are read through `denoise`: each cell weighed by the chance its count's cell holds anyone.
WEIGHED_BY = {"item_users": "item_users", "item_ratings": "item_ratings", "item_rating_sum": "item_ratings"}


@dataclass
class Family:
    """One released statistic: cells keyed by (key, period), exact and noisy, K x P int64."""

    name: str
    keys: list[str]
    periods: np.ndarray  # int64, sorted; UNDATED (or TOTAL) last
    exact: np.ndarray
    noisy: np.ndarray
    variance: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per period: its noise's variance
    weights: np.ndarray | None = None  # K x P: how much each cell counts in a view (`denoise`); None: whole
    drawn: np.ndarray | None = None  # K x P, retired keys only: which cells were drawn (None: all of them)
    final: np.ndarray | None = None  # K x P, retired keys only: which were closed when last drawn (never again)
    _cum: np.ndarray | None = field(default=None, repr=False)
    _latest: np.ndarray | None = field(default=None, repr=False)

    @property
    def cells(self) -> np.ndarray:
        """What views sum: the noisy cells, weighed where the family is read through `denoise`."""
        return self.noisy if self.weights is None else self.noisy * self.weights

    def _latest_totals(self) -> np.ndarray:
        # Only a time-indexed family with dated periods thresholds its undated one: families without time
        # (labels, communities) and a store with no dated record have nothing else to count. A weighed
        # family's undated cells are weighed like the others.
        timed = len(self.periods) > 1 and self.periods[-1] == UNDATED and len(self.variance) == len(self.periods)
        if not timed or self.weights is not None:
            return self.at(len(self.periods))
        undated = self.noisy[:, -1].astype(np.float64)
        kept = np.where(undated > UNDATED_SIGMAS * math.sqrt(self.variance[-1]), undated, 0.0)
        out: np.ndarray = self.at(len(self.periods) - 1) + kept
        return out

    def noise_variance(self, columns: int | None) -> float | np.ndarray:
        """The variance of the noise in a key's total over the first `columns` periods (all when None): one
        figure for every key, or each key's where cells are weighed (a cell weighed w keeps w of its noise's
        variance, about)."""
        upto = len(self.periods) if columns is None else max(columns, 0)
        if self.weights is None:
            return float(self.variance[:upto].sum())
        out: np.ndarray = (self.weights[:, :upto] * self.variance[:upto]).sum(axis=1)
        return out

    @property
    def cumulative(self) -> np.ndarray:
        if self._cum is None:
            cells = self.cells
            self._cum = np.cumsum(cells, axis=1, dtype=np.float64) if cells.size else cells * 1.0
        return self._cum

    def at(self, columns: int | None) -> np.ndarray:
        """Each key's noisy total over the first `columns` periods, as floats. All of them when None: then the
        undated period counts only where it stands out of its noise (UNDATED_SIGMAS standard deviations), so a
        store with no undated record does not pay that period's noise in every figure (post-processing)."""
        if not len(self.keys):
            return np.zeros(0)
        if columns is None:
            if self._latest is None:
                self._latest = self._latest_totals()
            return self._latest
        if columns <= 0:
            return np.zeros(len(self.keys))
        out: np.ndarray = self.cumulative[:, columns - 1]
        return out


@dataclass
class Release:
    """Every family of one global-memory version, with the settings they were drawn under and the ledger."""

    epsilon: float
    period_days: float
    step: float  # rating step the sums count in (0.5 for half stars)
    center: int  # rating sums are of (rating / step - center)
    sensitivity: int  # the most one rating moves a rating sum, in steps
    built_at: float
    families: dict[str, Family]
    ledger: list[dict[str, Any]]
    centroids_digest: str  # the clusters the cluster families count in; another clustering starts afresh
    low: float = 1.0  # the rating scale means are clipped to
    high: float = 5.0
    priors: dict[str, Priors] = field(default_factory=dict)  # count families' priors (`denoise`)
    # Keys released before that left the table (an item below min_users after a `forget`): no view reads them,
    # but a build where they come back continues their cells instead of drawing their closed periods again.
    retired: dict[str, Family] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, by in WEIGHED_BY.items():
            family, count, priors = self.families.get(name), self.families.get(by), self.priors.get(by)
            if family is None or count is None or priors is None or count.noisy.shape != family.noisy.shape:
                continue
            family.weights = presence(count.noisy, count.periods, scales(count.variance), priors)

    @property
    def width(self) -> float:
        return self.period_days * DAY

    def columns(self, family: Family, when: float | None) -> int | None:
        """How many of the family's periods a view at `when` reads: those that ended at or before it."""
        if when is None:
            return None
        dated = family.periods[family.periods != UNDATED]
        ends = (dated.astype(np.float64) + 1.0) * self.width
        return int(np.searchsorted(ends, when, side="right"))

    def values(self, name: str, when: float | None) -> np.ndarray:
        family = self.families[name]
        return family.at(self.columns(family, when))

    def last_periods(self, name: str, when: float | None, window: float = 0.0) -> np.ndarray:
        """Each key's noisy value in the last dated periods ended by `when` (the newest when None) that cover
        `window` seconds (at least one): what is recent at the release's resolution."""
        family = self.families[name]
        columns = self.columns(family, when)
        if columns is None:
            columns = int((family.periods != UNDATED).sum())
        if columns <= 0:
            return np.zeros(len(family.keys))
        span = max(1, math.ceil(window / self.width - 1e-9))
        out: np.ndarray = family.cells[:, max(columns - span, 0) : columns].sum(axis=1, dtype=np.float64)
        return out

    def noise_variance(self, name: str, when: float | None) -> float | np.ndarray:
        family = self.families[name]
        return family.noise_variance(self.columns(family, when))

    def mean_noise(self, means: np.ndarray, counts: np.ndarray, when: float | None) -> np.ndarray:
        """The variance (in rating units squared) the noise adds to item rating means: the sum's noise, and
        the count's, which moves a mean in proportion to its distance from the scale's centre."""
        sums = self.noise_variance("item_rating_sum", when) * self.step**2
        count = self.noise_variance("item_ratings", when)
        out: np.ndarray = (sums + (means - self.center * self.step) ** 2 * count) / np.maximum(counts, 1.0) ** 2
        return out

    def mean(self, sums: np.ndarray, counts: np.ndarray, low: float, high: float) -> np.ndarray:
        """Noisy rating means from noisy centred sums (in steps) and counts, within the scale."""
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = (self.center + sums / np.maximum(counts, 1.0)) * self.step
        out: np.ndarray = np.clip(raw, low, high)
        return out

    def value(self, name: str, row: int, when: float | None) -> float:
        """One key's noisy total as of `when` (all periods when None)."""
        family = self.families[name]
        if when is None:
            return float(family.at(None)[row])
        columns = self.columns(family, when)
        return float(family.cumulative[row, columns - 1]) if columns else 0.0

    def clusters(self, memory: Any, when: float | None) -> list[Any]:
        """The memory's clusters as everyone sees them as of `when` (`released_clusters`)."""
        return released_clusters(memory, self, when)

    @property
    def data_at(self) -> float:
        """When the records of the last build in the ledger were read (its snapshot's time; a ledger from before
        this was kept: when it was built, as late as they can have been)."""
        last = self.ledger[-1] if self.ledger else {}
        return float(last.get("data_at") or last.get("built_at") or self.built_at)

    def spent(self) -> float:
        """The most privacy loss any one record has had over the builds in the ledger: what it paid when it was
        first released, plus every later build's re-release of old records."""
        worst = 0.0
        for i, entry in enumerate(self.ledger):
            later = sum(_repriced(e, "epsilon_old_records") for e in self.ledger[i + 1 :])
            worst = max(worst, _repriced(entry, "epsilon_new_records") + later)
        return worst if math.isinf(worst) else round(worst, 6)

    @property
    def periods(self) -> int:
        """The dated periods released, first to last: a view of them all sums one noisy cell of each."""
        return max((int((f.periods != UNDATED).sum()) for f in self.families.values()), default=0)

    def summary(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "unit": "one record (a rating, with the item and cluster it counts in)",
            "period_days": self.period_days,
            "periods": self.periods,
            "epsilon_spent": _budget(self.spent()),
            "mechanism": "discrete Laplace (OpenDP)",
            "ledger": self.ledger,
        }


def _paid(epsilon: float | str) -> float:
    return math.inf if epsilon == "inf" else float(epsilon)


def _repriced(entry: dict[str, Any], key: str) -> float:
    """What an entry's records paid: its `key`, plus, for a build that drew the people counts at sensitivity 1
    (before PEOPLE_SENSITIVITY), their epsilon again: one record could move them by 2."""
    paid = _paid(entry[key])
    again = key == "epsilon_old_records"
    under = [
        r["epsilon"]
        for r in entry.get("releases", [])
        if r["statistic"] in PEOPLE_FAMILIES and r.get("sensitivity") == 1
        and (not again or r.get("released_old_records_again"))
    ]
    return paid + float(sum(under))


def _budget(epsilon: float) -> float | str:
    """A budget as JSON writes it: "inf" for exact figures (JSON has no infinity)."""
    return "inf" if math.isinf(epsilon) else epsilon


def budget_text(epsilon: float | str) -> str:
    """A budget from a summary, for people: 3, 3.25 or inf."""
    return epsilon if isinstance(epsilon, str) else f"{epsilon:g}"


def in_open_periods(rel: Release, times: list[float | None]) -> bool:
    """Whether any of these record times is in a period `rel` had not closed (the undated one never closes)."""
    width = rel.period_days * DAY
    return any(t is None or (math.floor(t / width) + 1) * width > rel.built_at for t in times)


def held_by_exact_build(previous: Release, now: float, data_at: float) -> Release:
    """`previous`, kept by a build with --epsilon inf: a later private build continues it, reusing its final cells
    instead of drawing them again (a second draw of a closed period would be a second look at it). Its ledger
    says that the exact build showed every record released so far exactly: what they spent is inf from now on."""
    from dataclasses import replace

    exact = {
        "built_at": now,
        "data_at": data_at,
        "epsilon": "inf",
        "period_days": previous.period_days,
        "epsilon_new_records": "inf",
        "epsilon_old_records": "inf",
        "releases": [],
    }
    return replace(previous, ledger=[*previous.ledger, exact])


def nothing_released(memory: Any, period_days: float, now: float) -> Release:
    """The release an exact build holds when none came before it: no figures, so the next private build draws
    every cell, and a ledger that remembers the exact build (`held_by_exact_build` adds it)."""
    step, center, sens, low, high = rating_scale(memory)
    digest = centroids_digest(memory.centroids)
    return Release(0.0, period_days, step, center, sens, now, {}, [], digest, low, high)


def period_advice(periods: int, period_days: float) -> str | None:
    """What to tell the operator of a release of so many periods that flat increments are the noisier choice."""
    if periods <= ADVISED_PERIODS:
        return None
    # periods are aligned to 1970: a span of ADVISED_PERIODS - 1 lengths can touch ADVISED_PERIODS periods
    longer = math.ceil(periods * period_days / (ADVISED_PERIODS - 1))
    days = f"{period_days:g} day{'' if period_days == 1 else 's'}"
    return (
        f"figures are released in {periods} periods of {days}, and a view sums one noisy increment per period, "
        f"so its noise grows as the square root of the periods. Above {ADVISED_PERIODS} periods a "
        f"tree release would be less noisy, and logo has none: `--period-days {longer}` keeps this store within "
        f"{ADVISED_PERIODS} periods (it releases every record again)."
    )


# ------------------------------------------------------------------------------------------ the release


def period_of(ts: np.ndarray, width: float) -> np.ndarray:
    undated = ~np.isfinite(ts) | (ts >= 1e299)
    out = np.full(len(ts), UNDATED, dtype=np.int64)
    out[~undated] = np.floor(ts[~undated] / width).astype(np.int64)
    return out


@dataclass
class Cells:
    """Exact cells of one family before release: per-entry key rows, periods and values."""

    keys: list[str]
    rows: np.ndarray
    periods: np.ndarray
    values: np.ndarray
    sensitivity: int


def rating_scale(memory: Any) -> tuple[float, int, int, float, float]:
    """(step, center, sensitivity, low, high) of the rating sums: ratings in steps, centred on the scale."""
    step = float(memory.rating_step or 1.0)
    low, high = memory.rating_range or (1.0, 5.0)
    center = round((low + high) / 2 / step)
    sensitivity = max(1, math.ceil(max(center - low / step, high / step - center)))
    return step, center, sensitivity, float(low), float(high)


def _steps(values: np.ndarray, step: float, center: int, low: float, high: float) -> np.ndarray:
    out: np.ndarray = np.round(np.clip(values, low, high) / step).astype(np.int64) - center
    return out


def _slice_values(cum: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-entry values from running sums that restart at each slice of `offsets`."""
    values = np.diff(np.concatenate([[0.0], cum.astype(np.float64)]))
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    values[starts] = cum[starts]
    return values


def _owner(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _scale_of(rel: Release) -> tuple[float, int, float, float]:
    return rel.step, rel.center, rel.low, rel.high


def exact_cells(memory: Any, width: float) -> dict[str, Cells]:
    """Every family's exact per-entry contributions, from the finished memory (either engine's)."""
    step, center, sens, low, high = rating_scale(memory)
    cells: dict[str, Cells] = {}
    items = memory.items
    if items is not None:
        names = list(items.names)
        ones = np.ones(len(items.user_ts), dtype=np.int64)
        user_periods = period_of(items.user_ts, width)
        cells["item_users"] = Cells(names, _owner(items.user_offsets), user_periods, ones, PEOPLE_SENSITIVITY)
        ratings = _slice_values(items.rating_cum, items.offsets)
        rows, periods = _owner(items.offsets), period_of(items.rating_ts, width)
        cells["item_ratings"] = Cells(names, rows, periods, np.ones(len(rows), dtype=np.int64), 1)
        cells["item_rating_sum"] = Cells(names, rows, periods, _steps(ratings, step, center, low, high), sens)
    tl = memory.timeline
    if tl is not None:
        clusters = [str(c.id) for c in memory.clusters]
        rows, periods = _owner(tl.record_offsets), period_of(tl.record_ts, width)
        rated = np.round(_slice_values(tl.rated_cum, tl.record_offsets)).astype(np.int64)
        ratings = _slice_values(tl.rating_cum, tl.record_offsets)
        csum = np.where(rated > 0, _steps(ratings, step, center, low, high), 0)
        cells["cluster_records"] = Cells(clusters, rows, periods, np.ones(len(rows), dtype=np.int64), 1)
        cells["cluster_rated"] = Cells(clusters, rows, periods, rated, 1)
        cells["cluster_rating_sum"] = Cells(clusters, rows, periods, csum, sens)
        urows, uperiods = _owner(tl.user_offsets), period_of(tl.user_first_ts, width)
        people = np.ones(len(urows), dtype=np.int64)
        cells["cluster_users"] = Cells(clusters, urows, uperiods, people, PEOPLE_SENSITIVITY)
    label_keys = [f"{c.id}\t{label}" for c in memory.clusters for label in c.labels]
    label_counts = np.array([n for c in memory.clusters for n in c.labels.values()], dtype=np.int64)
    n = len(label_keys)
    cells["cluster_labels"] = Cells(label_keys, np.arange(n), np.full(n, TOTAL), label_counts, 1)
    # distinct people per keyword candidate: a record counts its person for at most that many words
    from .records import KEYWORD_WORDS_PER_RECORD

    word_keys = [f"{c.id}\t{word}" for c in memory.clusters for word in c.keyword_people]
    people = np.array([n for c in memory.clusters for n in c.keyword_people.values()], dtype=np.int64)
    n = len(word_keys)
    cells["cluster_keywords"] = Cells(word_keys, np.arange(n), np.full(n, TOTAL), people, KEYWORD_WORDS_PER_RECORD)
    sizes = np.array([c.size for c in memory.communities], dtype=np.int64)
    m = len(sizes)
    # a record can move its user from one community to another: two sizes change by one
    cells["communities"] = Cells([str(c.id) for c in memory.communities], np.arange(m), np.full(m, TOTAL), sizes, 2)
    return cells


def _grid(cells: dict[str, Cells], previous: Release | None = None) -> np.ndarray:
    """The periods every family is released over: each from the first dated period to the last, and undated.
    The periods `previous` released stay, even when the records at an edge are gone (a `forget`): their cells
    are continued, never drawn again (a helper playing attacker redrew an edge period four times so)."""
    parts = [c.periods[c.periods != UNDATED] for c in cells.values()]
    if previous is not None:  # (not periods before 1970, where no record can land now: a bad date's, once)
        kept = [f.periods for f in [*previous.families.values(), *previous.retired.values()]]
        parts += [p[(p != UNDATED) & (p >= 0)] for p in kept]
    dated = np.concatenate(parts or [np.zeros(0, np.int64)])
    if not len(dated):
        return np.array([UNDATED], dtype=np.int64)
    return np.concatenate([np.arange(dated.min(), dated.max() + 1, dtype=np.int64), [UNDATED]])


def _matrix(cell: Cells, periods: np.ndarray) -> np.ndarray:
    """The exact K x P cells: each entry's value summed into its (key, period)."""
    shape = (len(cell.keys), len(periods))
    if not len(cell.rows) or not shape[0]:
        return np.zeros(shape, dtype=np.int64)
    flat = cell.rows.astype(np.int64) * len(periods) + np.searchsorted(periods, cell.periods)
    sums = np.bincount(flat, weights=cell.values.astype(np.float64), minlength=shape[0] * shape[1])
    return np.round(sums).astype(np.int64).reshape(shape)


def laplace(values: np.ndarray, sensitivity: int, epsilon: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Integer values plus discrete Laplace noise calibrated by OpenDP to `epsilon` for one record moving the
    vector by `sensitivity` (L1), and what the measurement states."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=scale)
    stated = float(measurement.map(sensitivity))  # type: ignore[no-untyped-call]
    info = {"scale": round(scale, 6), "sensitivity": sensitivity, "epsilon": stated}
    if not len(values):
        return values.astype(np.int64), info
    # Each cell's noise is independent, so the vector is drawn in parts, on threads: OpenDP's sampler runs
    # outside the GIL (a few microseconds per cell), and a first build at short periods draws millions.
    parts = np.array_split(values.astype(np.int64), max(1, len(values) // DRAW_CHUNK))
    with ThreadPoolExecutor(max_workers=min(len(parts), os.cpu_count() or 1)) as pool:
        drawn = list(pool.map(lambda part: measurement(part.tolist()), parts))
    return np.concatenate([np.asarray(d, dtype=np.int64) for d in drawn]), info


def chosen_period(asked: float | None, previous: Release | None) -> float:
    """The period this build releases in: the one asked for, else the store's last release's (a new period
    grid releases every old record again, which the ledger charges), else the default."""
    if asked is not None:
        return asked
    return previous.period_days if previous is not None else DEFAULT_PERIOD_DAYS


def release(
    memory: Any, epsilon: float, period_days: float, previous: Release | None, now: float, *, removed: bool = False
) -> Release:
    """This build's release: every family's cells, reusing what `previous` released that is final (see the
    module docstring), with noise from OpenDP on the rest, and the ledger with this build's entry. `removed`:
    records left a period `previous` had not closed (`logo forget` knows; a count that fell shows it too)."""
    width = period_days * DAY
    step, center, sens, low, high = rating_scale(memory)
    digest = centroids_digest(memory.centroids)
    cells = exact_cells(memory, width)
    usable = previous if previous is not None and previous.period_days == period_days else None
    grid = _grid(cells, usable)
    # the whole scale: a narrower range with the same centre clips old ratings anew and changes the sensitivity
    same_scale = usable is not None and _scale_of(usable) == (step, center, low, high)
    same_clusters = usable is not None and usable.centroids_digest == digest

    def still_valid(name: str) -> bool:
        """Whether cells `usable` released for this family can be continued: not a family drawn every build,
        nor one whose clusters or rating scale changed (drawn afresh then, and charged)."""
        if name in REDRAWN or (name in CLUSTER_FAMILIES and not same_clusters):
            return False
        return not (name.endswith("rating_sum") and not same_scale)

    families: dict[str, Family] = {}
    priors: dict[str, Priors] = {}
    retired: dict[str, Family] = {}
    entries = []
    for name, cell in cells.items():
        periods = grid if name not in WITHOUT_TIME else np.array([TOTAL], dtype=np.int64)
        exact = _matrix(cell, periods)
        before = usable.families.get(name) if usable is not None else None
        retired_before = usable.retired.get(name) if usable is not None else None
        reusable = (before is not None or retired_before is not None) and still_valid(name)
        share = SHARES[name] * epsilon
        kept = before if reusable else None
        gone = retired_before if reusable else None
        released_at = usable.built_at if usable is not None else 0.0
        family, entry = _release_family(name, cell, periods, exact, kept, share, released_at, width, gone)
        if reusable:  # (a family drawn afresh this build keeps no retired keys: their return is drawn, charged)
            left = _retired(name, kept, gone, set(cell.keys), released_at, width)
            if left is not None:
                retired[name] = left
        moved = bool(entry.pop("people_moved_in_open_cells", False))
        entry["released_old_records_again"] = previous is not None and (not reusable or moved)
        families[name] = family
        entries.append(entry)
        if name in WEIGHED_BY.values():
            old = usable.priors.get(name) if usable is not None and kept is not None else None
            priors[name] = _priors(family, old, released_at, width)
    if usable is not None:  # a family with no key left this build (no item table): all of it retires
        for name in (set(usable.families) | set(usable.retired)) - set(cells):
            if not still_valid(name):
                continue  # drawn afresh, and charged, when it comes back
            left = _retired(name, usable.families.get(name), usable.retired.get(name), set(), usable.built_at, width)
            if left is not None:
                retired[name] = left
    # A record that left a cell still open (`forget`) is in this build's increment of it, with a minus sign: a
    # second draw of it, in every family it counts in. Charged to old records.
    removed = previous is not None and (removed or any(e.get("records_left_open_cells") for e in entries))
    if removed:
        for entry in entries:
            entry["released_old_records_again"] = True
    ledger = list(previous.ledger) if previous is not None else []
    # Records first released this build pay epsilon; records released before pay again only where a family
    # could not keep its cells (a new clustering, a new rating scale, community sizes and keywords every build,
    # and everything when records left an open period).
    again = [e["epsilon"] for e in entries if e["released_old_records_again"]]
    ledger.append(
        {
            "built_at": now,
            "data_at": memory.data_at,
            "epsilon": epsilon,
            "period_days": period_days,
            "epsilon_new_records": round(sum(e["epsilon"] for e in entries), 6),
            "epsilon_old_records": round(sum(again), 6) if previous is not None else 0.0,
            "records_left_open_periods": removed,
            "releases": entries,
        }
    )
    return Release(epsilon, period_days, step, center, sens, now, families, ledger, digest, low, high, priors, retired)


def _retired(
    name: str, before: Family | None, gone: Family | None, current: set[str], released_at: float, width: float
) -> Family | None:
    """The keys of `before` (the previous release's family) and `gone` (its retired keys) that the table no
    longer has, on the union of their periods: their cells, which were drawn, which were final (closed when
    last drawn: `before`'s at `released_at`), and each period's noise variance."""
    sources = [f for f in (before, gone) if f is not None]
    rows = [(f, i) for f in sources for i, key in enumerate(f.keys) if key not in current]
    if not rows:
        return None
    periods = np.unique(np.concatenate([f.periods for f in sources]))
    shape = (len(rows), len(periods))
    exact, noisy = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    drawn, final = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    variance = np.zeros(len(periods))
    for f in sources:
        if len(f.variance) == len(f.periods):
            cols = np.searchsorted(periods, f.periods)
            variance[cols] = np.maximum(variance[cols], f.variance)
    for r, (f, i) in enumerate(rows):
        cols = np.searchsorted(periods, f.periods)
        exact[r, cols], noisy[r, cols] = f.exact[i], f.noisy[i]
        drawn[r, cols] = True if f.drawn is None else f.drawn[i]
        if f is gone and f.final is not None:
            final[r, cols] = f.final[i]
        else:
            final[r, cols] = drawn[r, cols] & _closed(f.periods, released_at, width)
    keys = [f.keys[i] for f, i in rows]
    return Family(name, keys, periods, exact, noisy, variance, drawn=drawn, final=final)


def _closed(periods: np.ndarray, at: float, width: float) -> np.ndarray:
    """Which periods had ended by `at` (the undated one never does)."""
    out: np.ndarray = (periods != UNDATED) & ((periods.astype(np.float64) + 1) * width <= at)
    return out


def _priors(family: Family, kept: Priors | None, released_at: float, width: float) -> Priors:
    """The family's `denoise` priors: a period closed at the last release keeps the prior it got then (its
    cells are final, and a view of the past must not move); the others are fitted on this release."""
    closed = _closed(family.periods, released_at, width)
    return fit(family.noisy, family.periods, scales(family.variance), ~closed, kept)


def _release_family(
    name: str,
    cell: Cells,
    periods: np.ndarray,
    exact: np.ndarray,
    before: Family | None,
    epsilon: float,
    released_at: float,
    width: float,
    gone: Family | None = None,
) -> tuple[Family, dict[str, Any]]:
    noisy = np.zeros_like(exact)
    stored = exact.copy()
    frozen = np.zeros(exact.shape, dtype=bool)
    delta = exact.copy()
    seen = np.zeros(exact.shape, dtype=bool)
    fell = False  # an open cell of a count below what was released: records left it (a forget, or an older store)
    # `before` and `gone` (keys that had left) hold disjoint keys: a key is continued from whichever has it
    assert before is None or gone is None or not set(before.keys) & set(gone.keys)
    for source in (before, gone):
        if source is None or not len(source.keys) or not len(cell.keys):
            continue
        old_rows = {k: i for i, k in enumerate(source.keys)}
        rows = np.array([old_rows.get(k, -1) for k in cell.keys])
        cols, col_ok = _columns(source.periods, periods)
        r_ok = rows >= 0
        if r_ok.any() and col_ok.any():
            rr, cc = np.ix_(np.flatnonzero(r_ok), np.flatnonzero(col_ok))
            old_exact = source.exact[rows[rr], cols[cc]]
            old_noisy = source.noisy[rows[rr], cols[cc]]
            was = np.ones(old_exact.shape, bool) if source.drawn is None else source.drawn[rows[rr], cols[cc]]
            if source.final is not None:  # a retired key: final where closed when it was last drawn
                closed = source.final[rows[rr], cols[cc]]
            else:
                closed = np.broadcast_to(_closed(periods[cc], released_at, width), old_exact.shape)
            seen[rr, cc] = was
            frozen[rr, cc] = closed & was
            fell |= bool(((exact[rr, cc] < old_exact) & was & ~closed).any())
            noisy[rr, cc] = np.where(was, old_noisy, 0)
            stored[rr, cc] = np.where(frozen[rr, cc], old_exact, exact[rr, cc])
            delta[rr, cc] = np.where(was, exact[rr, cc] - old_exact, exact[rr, cc])
    todo = ~frozen
    drawn, stated = laplace(delta[todo], cell.sensitivity, epsilon) if todo.any() else (delta[todo], {})
    noisy[todo] = np.where(seen[todo], noisy[todo] + drawn, drawn)
    variance = np.zeros(len(periods))
    known = np.zeros(len(periods), dtype=bool)
    for source in (gone, before):  # a period only returning keys have keeps its variance too; `before`'s wins
        if source is not None and len(source.variance) == len(source.periods) and len(source.periods):
            cols, has = _columns(source.periods, periods)
            variance[has] = source.variance[cols[has]]
            known |= has
    if todo.any():
        # a period's variance is one cell's: it grows where cells released before get another draw (an open
        # period), not where only new keys get their first (a new item in a closed period)
        grown = (todo & seen).any(axis=0) | (~known & todo.any(axis=0))
        variance += np.where(grown, laplace_variance(cell.sensitivity / epsilon), 0.0)
    family = Family(name, list(cell.keys), periods, stored, noisy, variance)
    entry = {
        "statistic": name,
        "epsilon": round(epsilon, 6),
        "scale": stated.get("scale", round(cell.sensitivity / epsilon, 6)),
        "sensitivity": cell.sensitivity,
        "epsilon_stated_by_opendp": stated.get("epsilon"),
        "cells": int(exact.size),
        "cells_released": int(todo.sum()),
        "cells_final_reused": int(frozen.sum()),
    }
    if fell and name in FALL_ONLY_WHEN_RECORDS_LEAVE:
        entry["records_left_open_cells"] = True
    elif fell and name in PEOPLE_FAMILIES:
        # a person moved out of an open cell by an earlier record: drawn again there (the reviewer: a record that
        # moves them twice while the cells are open is in two increments), so this family's records pay again
        entry["people_moved_in_open_cells"] = True
    return family, entry


def _columns(old: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `periods`, its column in the sorted `old` periods, and whether `old` has it at all."""
    cols = np.searchsorted(old, periods)
    has = (cols < len(old)) & (old[np.minimum(cols, max(len(old) - 1, 0))] == periods) if len(old) else cols < 0
    return cols, has


def laplace_variance(scale: float) -> float:
    """The variance of discrete Laplace noise of this scale (about 2 scale^2)."""
    q = math.exp(-1.0 / scale)
    return 2 * q / (1 - q) ** 2


def centroids_digest(centroids: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(centroids, dtype=np.float32).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- the views


def diversity_from_release(memory: Any, rel: Release) -> dict[str, Any]:
    """Each user's profile with its diversity measured against the released cluster sizes, not the exact ones:
    against exact sizes a user's own diversity moved in the fourth digit when one record was added to another
    cluster (seen by a helper playing attacker). The user's own counts and a release: post-processing."""
    from dataclasses import replace

    from .model import relative_diversity

    sizes = np.maximum(rel.values("cluster_records", None), 0).astype(np.float64)
    out = {}
    for name, profile in memory.users.items():
        counts = np.zeros(len(sizes))
        for cid, share in profile.distribution.items():
            counts[cid] = round(share * profile.history)
        out[name] = replace(profile, diversity=round(relative_diversity(counts, sizes), 4))
    return out


def released_clusters(memory: Any, rel: Release, when: float | None) -> list[Any]:
    """The clusters as everyone sees them: sizes, users, rating means, labels, trends and shared items from
    the release as of `when` (the latest view when None); examples (people's own words) are never shown."""
    from dataclasses import replace

    from .records import KEYWORDS_SHOWN, TOP_ITEMS

    sizes = np.maximum(rel.values("cluster_records", when), 0).round().astype(np.int64)
    users = np.maximum(rel.values("cluster_users", when), 0).round().astype(np.int64)
    rated = np.maximum(rel.values("cluster_rated", when), 0)
    means = _shrunk_cluster_means(rel, rel.values("cluster_rating_sum", when), rated, when)
    words = _released_keywords(memory, rel, users)
    labels: dict[int, dict[str, int]] = {}
    if when is None:
        counts = rel.values("cluster_labels", None)
        for key, n in zip(rel.families["cluster_labels"].keys, counts, strict=True):
            cid, label = key.split("\t", 1)
            if n >= memory.min_users:  # like an item's people: the threshold on the noisy count
                labels.setdefault(int(cid), {})[label] = round(n)
    top = _top_items(memory, rel, when)
    trends = _trends(memory, rel, when)
    out = []
    for c in memory.clusters:
        i = c.id
        private = bool(users[i] < memory.min_users)
        has_mean = rated[i] >= memory.min_users and not private
        out.append(
            replace(
                c,
                size=int(sizes[i]),
                users=int(users[i]),
                keywords=list(words.get(i, {}))[:KEYWORDS_SHOWN],
                keyword_people=words.get(i, {}),
                top_items=top.get(i, [])[:TOP_ITEMS],
                rating_mean=round(float(means[i]), 3) if has_mean else None,
                rating_count=round(rated[i]) if has_mean else 0,
                labels=dict(sorted(labels.get(i, {}).items(), key=lambda kv: -kv[1])[:10]),
                examples=[],
                trend=trends[i] if trends else [],
                private=private,
                # written from the latest release's keywords and items: a cluster private in the view shows none
                description=None if private else c.description,
            )
        )
    return out


def _released_keywords(memory: Any, rel: Release, users: np.ndarray) -> dict[int, dict[str, int]]:
    """Each cluster's keywords: its candidates (in their c-TF-IDF order) whose noisy count of people reaches
    min_users, with that count (at most the cluster's noisy people). A cluster private in the view (fewer noisy
    people than min_users) shows none. Keywords have no periods, so every view reads the latest release; a release
    from before keywords were released shows none."""
    family = rel.families.get("cluster_keywords")
    if family is None:
        return {}
    noisy = dict(zip(family.keys, family.at(None), strict=True))
    out: dict[int, dict[str, int]] = {}
    for c in memory.clusters:
        if users[c.id] < memory.min_users:
            continue
        for word in c.keyword_people:
            n = noisy.get(f"{c.id}\t{word}", 0.0)
            if n >= memory.min_users:
                out.setdefault(c.id, {})[word] = min(round(n), int(users[c.id]))
    return out


def _shrunk_cluster_means(rel: Release, sums: np.ndarray, rated: np.ndarray, when: float | None) -> np.ndarray:
    """Cluster rating means, each pulled toward the population's by its noise (empirical Bayes: a small
    cluster's noisy mean says little). Post-processing of the release: it costs no budget."""
    raw = rel.mean(sums, rated, rel.low, rel.high)
    total = float(np.maximum(rated, 0).sum())
    if total <= 0 or not len(raw):
        return raw
    overall = float(np.clip((rel.center + sums.sum() / total) * rel.step, rel.low, rel.high))
    noise = (
        rel.noise_variance("cluster_rating_sum", when) * rel.step**2
        + (raw - rel.center * rel.step) ** 2 * rel.noise_variance("cluster_rated", when)
    ) / np.maximum(rated, 1.0) ** 2
    weights = rated / total
    spread = float((weights * (raw - overall) ** 2).sum() - (weights * noise).sum())  # between clusters
    spread = max(spread, 0.01)
    out: np.ndarray = overall + spread / (spread + noise) * (raw - overall)
    return out


def _top_items(memory: Any, rel: Release, when: float | None) -> dict[int, list[tuple[str, int]]]:
    """Each cluster's most shared public items: items belong to the cluster nearest their vector."""
    items = memory.items
    if items is None or not len(items.names) or not len(memory.centroids):
        return {}
    users = np.maximum(rel.values("item_users", when), 0).round().astype(np.int64)
    owner = np.argmax(items.vectors @ memory.centroids.T.astype(items.vectors.dtype), axis=1)
    out: dict[int, list[tuple[str, int]]] = {}
    for row in np.argsort(-users, kind="stable"):
        if users[row] < memory.min_users:
            break
        out.setdefault(int(owner[row]), []).append((items.names[row], int(users[row])))
    return out


def _trends(memory: Any, rel: Release, when: float | None) -> list[list[float]]:
    """Each cluster's share of the records of each of the last `segments` released periods (as of `when`)."""
    segments = int(memory.options.get("segments", 4))
    family = rel.families["cluster_records"]
    columns = rel.columns(family, when)
    take = np.flatnonzero(family.periods != UNDATED)[: columns if columns is not None else None][-segments:]
    if segments <= 0 or len(take) < 2:
        return []
    per = np.maximum(family.noisy[:, take], 0).astype(np.float64)
    totals = per.sum(axis=0)
    return [[round(float(m / t), 4) if t else 0.0 for m, t in zip(row, totals, strict=True)] for row in per]


def apply(memory: Any, rel: Release) -> Any:
    """The memory as everyone sees it: every population statistic from the release."""
    from dataclasses import replace

    clusters = released_clusters(memory, rel, None)
    sizes = np.maximum(rel.values("communities", None), 0).round().astype(np.int64)
    communities = [replace(c, size=int(sizes[i])) for i, c in enumerate(memory.communities)]
    if memory.items is not None:
        memory.items.release = rel
    return replace(
        memory, clusters=clusters, communities=communities, records=int(sum(c.size for c in clusters)), release=rel
    )


# -------------------------------------------------------------------------------------------- storage


def save(rel: Release, folder: Any) -> None:
    import orjson

    arrays: dict[str, np.ndarray] = {}
    for name, family in rel.families.items():
        arrays |= _arrays_of(family, name)
    for name, family in rel.retired.items():
        arrays |= _arrays_of(family, f"{name}.retired")
    for name, p in rel.priors.items():
        arrays[f"{name}.prior.periods"], arrays[f"{name}.prior.edges"] = p.periods, p.edges
        arrays[f"{name}.prior.prior"], arrays[f"{name}.prior.fitted"] = p.prior, p.fitted
    np.savez(folder / "release.npz", **arrays)  # type: ignore[arg-type]
    settings = {
        "epsilon": rel.epsilon,
        "period_days": rel.period_days,
        "step": rel.step,
        "center": rel.center,
        "sensitivity": rel.sensitivity,
        "built_at": rel.built_at,
        "centroids_digest": rel.centroids_digest,
        "low": rel.low,
        "high": rel.high,
        "families": list(rel.families),
        "ledger": rel.ledger,
    }
    (folder / "ledger.json").write_bytes(orjson.dumps(settings, option=orjson.OPT_INDENT_2))


def _arrays_of(family: Family, prefix: str) -> dict[str, np.ndarray]:
    """A family's arrays as release.npz stores them, under `prefix` (its name, or NAME.retired)."""
    out = {
        f"{prefix}.keys": np.asarray(family.keys, dtype=str),
        f"{prefix}.periods": family.periods,
        f"{prefix}.exact": family.exact,
        f"{prefix}.noisy": family.noisy,
        f"{prefix}.variance": family.variance,
    }
    for mask in ("drawn", "final"):  # retired keys only
        if getattr(family, mask) is not None:
            out[f"{prefix}.{mask}"] = getattr(family, mask)
    return out


def _family_from(arrays: Any, prefix: str, name: str) -> Family:
    """The family stored under `prefix` (`_arrays_of`); a release from before variances were kept has none."""
    return Family(
        name,
        [str(k) for k in arrays[f"{prefix}.keys"]],
        arrays[f"{prefix}.periods"],
        arrays[f"{prefix}.exact"],
        arrays[f"{prefix}.noisy"],
        arrays.get(f"{prefix}.variance", np.zeros(0)),
        drawn=arrays.get(f"{prefix}.drawn"),
        final=arrays.get(f"{prefix}.final"),
    )


def _check_shapes(family: Family) -> None:
    """A release whose arrays disagree is damaged (ValueError): read, it would fail later or misplace cells."""
    shape = (len(family.keys), len(family.periods))
    masks = [m.shape for m in (family.drawn, family.final) if m is not None]
    shapes = [family.exact.shape, family.noisy.shape, *masks]
    if any(s != shape for s in shapes) or len(family.variance) not in (0, len(family.periods)):
        raise ValueError(f"{family.name}: its arrays disagree in shape")
    if not np.all(np.isfinite(family.variance)):
        raise ValueError(f"{family.name}: its noise variance is not a finite number")
    # A key twice would be summed in one view and continued once; periods out of order would be read as later
    # or earlier than they are, and matched to the wrong new ones by the next build (`_columns`).
    if len(set(family.keys)) != len(family.keys):
        raise ValueError(f"{family.name}: a key is there twice")
    if family.periods.ndim != 1 or np.any(np.diff(family.periods) <= 0):
        raise ValueError(f"{family.name}: its periods are not in order")


def load(folder: Any) -> Release | None:
    import orjson

    if not (folder / "ledger.json").is_file():
        return None
    settings = orjson.loads((folder / "ledger.json").read_bytes())
    with np.load(folder / "release.npz") as arrays:
        families = {name: _family_from(arrays, name, name) for name in settings["families"]}
        priors = {
            name: Priors(*(arrays[f"{name}.prior.{part}"] for part in ("periods", "edges", "prior", "fitted")))
            for name in settings["families"]
            if f"{name}.prior.prior" in arrays
        }
        left = [key.removesuffix(".retired.keys") for key in arrays.files if key.endswith(".retired.keys")]
        retired = {name: _family_from(arrays, f"{name}.retired", name) for name in left}
    for name, family in retired.items():
        if family.drawn is None or family.final is None:
            raise ValueError(f"{name}: retired keys without their drawn and final cells")
    for family in [*families.values(), *retired.values()]:
        _check_shapes(family)
    for name, gone in retired.items():  # a key is live or retired, never both
        if name in families and set(gone.keys) & set(families[name].keys):
            raise ValueError(f"{name}: keys both live and retired")
    return Release(
        settings["epsilon"],
        settings["period_days"],
        settings["step"],
        settings["center"],
        settings["sensitivity"],
        settings["built_at"],
        families,
        settings["ledger"],
        settings["centroids_digest"],
        settings["low"],
        settings["high"],
        priors,
        retired,
    )
