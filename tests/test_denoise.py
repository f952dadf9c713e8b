"""Reading released item counts by the chance each cell holds anyone (global_memory/denoise.py): on simulated
sparse counts with discrete-Laplace-like noise, no store needed."""

from __future__ import annotations

import numpy as np
import pytest

from logo_cli.global_memory import denoise


def sparse_counts(items: int, periods: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact counts where most items are rated in a few periods, and the same plus noise of scale 2."""
    rng = np.random.default_rng(seed)
    active = rng.random((items, periods)) < np.linspace(0.02, 0.4, items)[:, None]  # most are rare, some popular
    exact = np.where(active, rng.poisson(6, (items, periods)) + 1, 0)
    noise = np.round(rng.laplace(0, 2.0, (items, periods))).astype(np.int64)
    return exact, exact + noise


def weighed(noisy: np.ndarray) -> tuple[denoise.Priors, np.ndarray]:
    """Every period's prior fitted afresh (periods 0..P-1, noise scale 2), and each cell's weight."""
    periods = np.arange(noisy.shape[1], dtype=np.int64)
    scale = np.full(noisy.shape[1], 2.0)
    priors = denoise.fit(noisy, periods, scale, np.ones(noisy.shape[1], dtype=bool), None)
    return priors, denoise.presence(noisy, periods, scale, priors)


def test_the_prior_finds_how_many_cells_are_empty() -> None:
    rng = np.random.default_rng(1)
    exact = np.where(rng.random(5000) < 0.8, 0, rng.poisson(20, 5000))
    noisy = exact + np.round(rng.laplace(0, 2.0, 5000)).astype(np.int64)
    prior = denoise.fit_prior(noisy, 2.0)
    assert prior[:3].sum() == pytest.approx((exact == 0).mean(), abs=0.03)  # empty, give or take the noise's step
    assert prior.sum() == pytest.approx(1.0)


def test_cells_reading_little_count_little_and_large_ones_whole() -> None:
    exact, noisy = sparse_counts(2000, 20)
    _, weight = weighed(noisy)
    assert weight[noisy <= -2].mean() < 0.2 and weight[noisy >= 12].mean() > 0.95
    assert weight[(exact == 0)].mean() < 0.3 < 0.8 < weight[exact >= 5].mean()
    def rms(estimate: np.ndarray, truth: np.ndarray) -> float:
        return float(np.sqrt(((estimate.sum(axis=1) - truth.sum(axis=1)) ** 2).mean()))

    assert rms(noisy * weight, exact) < 0.9 * rms(noisy, exact)
    # a rating sum (centred: of either sign) weighed by its count's cell loses most of the empty cells' noise
    rng = np.random.default_rng(2)
    sums = np.round(exact * rng.normal(0.3, 0.5, exact.shape)).astype(np.int64)
    noisy_sums = sums + np.round(rng.laplace(0, 6.0, sums.shape)).astype(np.int64)
    assert rms(noisy_sums * weight, sums) < 0.6 * rms(noisy_sums, sums)


def test_a_period_keeps_its_prior_so_views_of_the_past_do_not_move() -> None:
    _, noisy = sparse_counts(500, 6)
    first, before = weighed(noisy)
    # a later release: one more period and one more item; periods 0-4 closed, kept
    grown = np.vstack([np.hstack([noisy, np.zeros((500, 1), dtype=np.int64)]), np.arange(7)[None, :] - 3])
    wider = np.arange(7, dtype=np.int64)
    refit = np.array([False] * 5 + [True, True])
    second = denoise.fit(grown, wider, np.full(7, 2.0), refit, first)
    after = denoise.presence(grown, wider, np.full(7, 2.0), second)
    assert np.array_equal(after[:500, :5], before[:, :5])
    assert np.array_equal(second.prior[:5, :, : first.prior.shape[2]], first.prior[:5])
    assert second.fitted.all()


def test_a_new_item_in_a_closed_period_leaves_that_periods_noise_as_it_was() -> None:
    """A period's noise variance is one cell's: a new key's first draw in a closed period does not add to it
    (the old keys' cells there are final), while an open period's cells, drawn again, add theirs."""
    from logo_cli.global_memory import release

    periods = np.array([10, 11, release.UNDATED], dtype=np.int64)
    one = release.Cells(["a"], np.array([0]), np.array([10]), np.array([1]), 1)
    first, _ = release._release_family("item_users", one, periods, release._matrix(one, periods), None, 0.5, 0, 1.0)
    two = release.Cells(["a", "b"], np.array([0, 1]), np.array([10, 10]), np.array([1, 1]), 1)
    # the first release was at 11.5: period 10 had closed, 11 was open
    exact = release._matrix(two, periods)
    second, _ = release._release_family("item_users", two, periods, exact, first, 0.5, 11.5, 1.0)
    assert second.noisy[0, 0] == first.noisy[0, 0]  # final
    assert second.variance[0] == first.variance[0]
    assert second.variance[1] == pytest.approx(2 * first.variance[1])
