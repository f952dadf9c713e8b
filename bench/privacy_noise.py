"""How noisy a view of a released count is, after P periods: flat per-period increments (what logo releases)
against OpenDP's b-ary tree with consistency, at the same epsilon for one record. Both mechanisms are
OpenDP's; each view (a prefix sum over the periods) is drawn many times and its error measured.

    python bench/privacy_noise.py [--epsilon 0.5] [--draws 400]

Prints, per number of periods, the RMS error of a prefix sum (every prefix, averaged) and of the total, for
both, and the ratio tree / flat (> 1: flat is better). This is what chose flat increments (docs/privacy.md).
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def flat(periods: int, epsilon: float, draws: int) -> np.ndarray:
    """Errors of every prefix sum: one discrete Laplace draw per period, summed."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    meas = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i32")), dp.l1_distance(T="i32"), scale=1 / epsilon)
    noise = np.array([meas([0] * periods) for _ in range(draws)], dtype=np.float64)
    out: np.ndarray = np.cumsum(noise, axis=1)
    return out


def tree(periods: int, epsilon: float, draws: int, branching: int) -> np.ndarray:
    """Errors of every prefix sum from OpenDP's b-ary tree (every node noised), made consistent."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain, metric = dp.vector_domain(dp.atom_domain(T="i32")), dp.l1_distance(T="i32")
    shape = dp.t.make_b_ary_tree(domain, metric, leaf_count=periods, branching_factor=branching)
    scale = dp.binary_search_param(lambda s: shape >> dp.m.then_laplace(scale=s), d_in=1, d_out=epsilon, T=float)
    meas = shape >> dp.m.then_laplace(scale=scale)
    consistent = dp.t.make_consistent_b_ary_tree(branching_factor=branching, TIA="i32", TOA="f64")
    leaves = np.array([consistent(meas([0] * periods))[:periods] for _ in range(draws)], dtype=np.float64)
    out: np.ndarray = np.cumsum(leaves, axis=1)
    return out


def rms(errors: np.ndarray) -> tuple[float, float]:
    return float(np.sqrt((errors**2).mean())), float(np.sqrt((errors[:, -1] ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, default=0.5, help="budget of the count, per record")
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--periods", default="4,12,22,52,120,365,1000")
    parser.add_argument("--branching", default="auto,2,4", help="tree branching factors (auto: OpenDP's choice)")
    args = parser.parse_args()
    import opendp.prelude as dp

    dp.enable_features("contrib")

    print(f"epsilon {args.epsilon} per record; RMS error of a view (a count), {args.draws} draws each")
    heads = ("periods", "flat: any", "flat: all", "b", "tree: any", "tree: all", "tree/flat")
    print(" ".join(f"{h:>{4 if h == 'b' else 10 if h != 'periods' else 8}}" for h in heads))
    for periods in [int(p) for p in args.periods.split(",")]:
        f_any, f_all = rms(flat(periods, args.epsilon, args.draws))
        for b in args.branching.split(","):
            branching = max(2, int(dp.t.choose_branching_factor(size_guess=periods))) if b == "auto" else int(b)
            t_any, t_all = rms(tree(periods, args.epsilon, args.draws, branching))
            print(
                f"{periods:>8} {f_any:>10.2f} {f_all:>10.2f} {branching:>4} {t_any:>10.2f} {t_all:>10.2f}"
                f" {t_any / f_any:>10.2f}"
            )
    print(f"(one draw: RMS {math.sqrt(2) / args.epsilon:.2f})")


if __name__ == "__main__":
    main()
