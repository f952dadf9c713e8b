"""Empirical-Bayes reading of released item counts: how likely each noisy cell holds anyone at all.

An item's figure as of a moment sums one noisy cell per period, and most of an item's periods hold nobody
(it was rated in a few years of twenty). Each empty cell still carries its noise, so a rarely rated item's
count and rating sum are mostly noise. This module weighs each cell by the probability that its exact count
is above zero, given its noisy value: a cell that reads 1 where most cells like it are empty counts little;
one that reads 30 counts whole. Rating sums take the weight of their count's cell.

The probability comes from a prior over exact counts fitted to the released cells themselves (the
nonparametric maximum-likelihood prior, by EM over the histogram of noisy values), one per period and per
GROUPS tiers of items by their noisy total so far (a popular item's cells are seldom empty). All of it reads
only the release, so it is post-processing and spends no budget. A closed period's prior is fitted once,
when the period is first released, and kept with the release: later builds read its cells the same way, so
a view of the past does not move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GROUPS = 10  # tiers of items by their noisy total through the period: popular items' cells are seldom empty
ITERATIONS = 500  # EM steps of the prior (each on the histogram of noisy values: a few hundred points)
MAX_SUPPORT = 128  # exact counts the prior spans (higher readings are fitted as this): such a cell is not empty


@dataclass
class Priors:
    """Per period: the tier edges (noisy totals through it) and each tier's prior over 0..support-1."""

    periods: np.ndarray  # P period keys, as the family's
    edges: np.ndarray  # P x (GROUPS - 1)
    prior: np.ndarray  # P x GROUPS x support
    fitted: np.ndarray  # P bools: whether the period has a prior (False: read its cells as they are)

    def find(self, period: int) -> int | None:
        j = int(np.searchsorted(self.periods, period))
        return j if j < len(self.periods) and self.periods[j] == period and self.fitted[j] else None


def scales(variance: np.ndarray) -> np.ndarray:
    """The Laplace scale of each period's noise, from its variance (2 scale^2). A period released over several
    builds sums several draws: read as one Laplace of the same variance."""
    out: np.ndarray = np.sqrt(np.maximum(variance, 1e-12) / 2.0)
    return out


def fit_prior(values: np.ndarray, scale: float) -> np.ndarray:
    """The NPMLE prior over exact counts 0..S of cells seen with discrete Laplace noise of `scale`."""
    seen, counts = np.unique(np.minimum(values, MAX_SUPPORT), return_counts=True)
    support = min(int(max(seen.max(), 0) + math.ceil(3 * scale)) + 1, MAX_SUPPORT + 1)
    likelihood = _likelihood(seen, support, scale)
    share = counts / counts.sum()
    prior = np.full(support, 1.0 / support)
    for _ in range(ITERATIONS):
        joint = likelihood * prior
        prior = share @ (joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300))
    return prior


def _likelihood(values: np.ndarray, support: int, scale: float) -> np.ndarray:
    """P(noisy value | exact count), up to a factor per value (rows scaled to a maximum of 1)."""
    log = -np.abs(values[:, None].astype(np.float64) - np.arange(support)[None, :]) / scale
    out: np.ndarray = np.exp(log - log.max(axis=1, keepdims=True))
    return out


def fit(noisy: np.ndarray, periods: np.ndarray, scale: np.ndarray, refit: np.ndarray, kept: Priors | None) -> Priors:
    """Priors for every period of a K x P family (each with its noise `scale`): fitted afresh where `refit`,
    else taken from `kept` (by period) where it has one."""
    count = noisy.shape[1]
    through = np.cumsum(noisy, axis=1)
    edges = np.zeros((count, GROUPS - 1))
    priors: list[np.ndarray] = []
    fitted = np.zeros(count, dtype=bool)
    for j in range(count):
        old = kept.find(int(periods[j])) if kept is not None and not refit[j] else None
        if kept is not None and old is not None:
            edges[j], fitted[j] = kept.edges[old], True
            priors.append(kept.prior[old])
            continue
        if not len(noisy):
            priors.append(np.zeros((GROUPS, 1)))
            continue
        edges[j] = np.quantile(through[:, j], np.linspace(0, 1, GROUPS + 1)[1:-1])
        tier = np.searchsorted(edges[j], through[:, j], side="right")
        pooled = fit_prior(noisy[:, j], scale[j])  # for a tier with no item now (a new item may land there later)
        fits = [fit_prior(noisy[tier == g, j], scale[j]) if (tier == g).any() else pooled for g in range(GROUPS)]
        width = max(len(p) for p in fits)
        priors.append(np.stack([np.pad(p, (0, width - len(p))) for p in fits]))
        fitted[j] = True
    width = max((p.shape[1] for p in priors), default=1)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in priors]
    prior = np.stack(padded) if padded else np.zeros((0, GROUPS, 1))
    return Priors(periods.copy(), edges, prior, fitted)


def presence(noisy: np.ndarray, periods: np.ndarray, scale: np.ndarray, priors: Priors) -> np.ndarray:
    """K x P: for each cell, the probability that its exact count is above zero (1 where a period has no
    prior)."""
    out = np.ones(noisy.shape)
    through = np.cumsum(noisy, axis=1)
    for j in range(noisy.shape[1]):
        at = priors.find(int(periods[j]))
        if at is None:
            continue
        tier = np.searchsorted(priors.edges[at], through[:, j], side="right")
        for g in np.unique(tier):
            rows = np.flatnonzero(tier == g)
            prior = priors.prior[at, g]
            seen, back = np.unique(noisy[rows, j], return_inverse=True)
            joint = _likelihood(seen, len(prior), scale[j]) * prior
            total = joint.sum(axis=1)
            empty = np.where(total > 0, joint[:, 0] / np.maximum(total, 1e-300), 0.0)
            out[rows, j] = (1.0 - empty)[back]
    return out
