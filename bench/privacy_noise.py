"""How noisy a view of a released count is, after P periods: flat per-period increments (what logo releases)
against OpenDP's b-ary tree with consistency, at the same epsilon for one record. Both mechanisms are
OpenDP's; each view (a prefix sum over the periods) is drawn many times and its error measured.

    python bench/privacy_noise.py [--epsilon 0.5] [--draws 400]
    python bench/privacy_noise.py --release HOME/global [--keys 1000]

Prints, per number of periods, the RMS error of a prefix sum (every prefix, averaged) and of the total, for
both, and the ratio tree / flat (> 1: flat is better). This is what chose flat increments (docs/privacy.md).

With --release, the same comparison on a store's real cells: the views as logo reads them (the noisy cells
of that release, weighed by `denoise`) against OpenDP's tree drawn on the same exact cells at the same
epsilon per record, per family and by how many ratings an item had. The tree here is the best case for it:
made consistent over every node, which a view of the past could not use (those nodes close later).
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


def _consistent_tree_views(exact: np.ndarray, sensitivity: int, epsilon: float, branching: int) -> np.ndarray:
    """Every prefix sum of each row, from OpenDP's b-ary tree drawn on the row and made consistent."""
    import opendp.prelude as dp

    periods = exact.shape[1]
    domain, metric = dp.vector_domain(dp.atom_domain(T="i32")), dp.l1_distance(T="i32")
    shape = dp.t.make_b_ary_tree(domain, metric, leaf_count=periods, branching_factor=branching)
    scale = dp.binary_search_param(
        lambda s: shape >> dp.m.then_laplace(scale=s), d_in=sensitivity, d_out=epsilon, T=float
    )
    measure = shape >> dp.m.then_laplace(scale=scale)
    consistent = dp.t.make_consistent_b_ary_tree(branching_factor=branching, TIA="i32", TOA="f64")
    leaves = np.array([consistent(measure([int(v) for v in row]))[:periods] for row in exact])
    out: np.ndarray = np.cumsum(leaves, axis=1)
    return out


def _rms_where(views: np.ndarray, truth: np.ndarray, inside: np.ndarray, columns: list[int]) -> float:
    """RMS error of the views in `columns`, over the rows `inside` (a boolean per row and column)."""
    both = np.concatenate([(views[inside[:, c], c] - truth[inside[:, c], c]) ** 2 for c in columns])
    return float(np.sqrt(both.mean())) if len(both) else math.nan


def on_release(folder: str, branching: int, keys: int) -> None:
    """Logo's reading of a real release against OpenDP's consistent tree on the same exact cells."""
    from pathlib import Path

    import opendp.prelude as dp

    from logo_cli.global_memory import release as rel_mod
    from logo_cli.global_memory import versions

    dp.enable_features("contrib")
    rel = versions.load_release(Path(folder))
    if rel is None:
        raise SystemExit(f"{folder}: no privacy release (an exact build, or not a global-memory folder)")
    rng = np.random.default_rng(0)
    print(f"epsilon {rel.epsilon:g} per record, {rel.period_days:g}-day periods, {rel.periods} periods, b {branching}")
    print("RMS error of a view: at moments (from a quarter of the way on, every twelfth) | the latest view")
    for name in ("item_ratings", "item_rating_sum", "cluster_records"):
        family = rel.families[name]
        dated = family.periods != rel_mod.UNDATED
        exact = family.exact[:, dated].astype(np.int64)
        count, periods = exact.shape
        rows = np.arange(count) if count <= keys else np.sort(rng.choice(count, keys, replace=False))
        epsilon = rel_mod.SHARES[name] * rel.epsilon
        sensitivity = rel.sensitivity if name.endswith("rating_sum") else 1
        tree_views = _consistent_tree_views(exact[rows], sensitivity, epsilon, branching)
        truth = np.cumsum(exact[rows], axis=1).astype(np.float64)
        flat_views = family.cumulative[rows][:, :periods]
        by = "item_ratings" if name.startswith("item") else name
        ratings = np.cumsum(rel.families[by].exact[rows][:, dated], axis=1)
        moments = [*range(periods // 4, periods, max(1, periods // 12)), periods - 1]
        tiers = [(1, 9), (10, 29), (30, 99), (100, None)] if name.startswith("item") else [(0, None)]
        print(f"{name}: {len(rows)} keys, flat cells of {periods} periods, tree of {branching}-ary nodes")
        for low, high in tiers:
            inside = (ratings >= low) & (ratings <= (high if high is not None else ratings.max()))
            tier = "all" if not name.startswith("item") else f"{low}+" if high is None else f"{low}-{high}"
            print(
                f"  {tier:>7}: moments flat {_rms_where(flat_views, truth, inside, moments):8.2f}"
                f" tree {_rms_where(tree_views, truth, inside, moments):8.2f}"
                f" | latest flat {_rms_where(flat_views, truth, inside, [periods - 1]):8.2f}"
                f" tree {_rms_where(tree_views, truth, inside, [periods - 1]):8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, default=0.5, help="budget of the count, per record")
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--periods", default="4,12,22,52,120,365,1000")
    parser.add_argument("--branching", default="auto,2,4", help="tree branching factors (auto: OpenDP's choice)")
    parser.add_argument("--release", help="a store's global folder (LOGO_HOME/global): compare on its real cells")
    parser.add_argument("--keys", type=int, default=1000, help="with --release: keys drawn per family")
    args = parser.parse_args()
    if args.release:
        on_release(args.release, 4 if args.branching == "auto,2,4" else int(args.branching), args.keys)
        return
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
