"""Pareto fronts of design points: which designs no other beats on both cost and benefit.

A pure function of arrays (no plotting), used by :func:`oassim.analysis.plots.pareto_front`
and by anyone ranking sweep points or candidate designs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from oassim.errors import OassimError

__all__ = ["pareto_mask"]


def pareto_mask(cost: Any, benefit: Any) -> np.ndarray:
    """Which points are Pareto-optimal when cost is minimised and benefit maximised.

    A point is dominated when another has cost <= and benefit >= with at least one of them
    strict; identical points do not dominate each other (both stay on the front). Points whose
    cost or benefit is missing (NaN, None) are not compared and are never on the front.

    Parameters
    ----------
    cost, benefit : array-like of float, shape (n,)
        E.g. power per accelerator (W) and tokens/s.

    Returns
    -------
    ndarray of bool, shape (n,)
        True where the point is on the Pareto front. O(n log n).
    """
    c = pd.to_numeric(pd.Series(np.asarray(cost, dtype=object).ravel()), errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(pd.Series(np.asarray(benefit, dtype=object).ravel()), errors="coerce").to_numpy(dtype=float)
    if c.shape != b.shape:
        raise OassimError(f"cost and benefit differ in length ({c.size} and {b.size} points)")
    out = np.zeros(c.size, dtype=bool)
    ok = ~(np.isnan(c) | np.isnan(b))
    if not ok.any():
        return out
    cv, bv = c[ok], b[ok]
    levels, group = np.unique(cv, return_inverse=True)  # ascending distinct costs
    best_at = np.full(levels.size, -np.inf)
    np.maximum.at(best_at, group, bv)
    # best benefit among strictly cheaper points: a point is dominated by any of them with
    # benefit >= its own, and by an equally cheap point with strictly more benefit
    cheaper = np.concatenate(([-np.inf], np.maximum.accumulate(best_at)[:-1]))
    beaten_by_cheaper = (group > 0) & (bv <= cheaper[group])
    out[ok] = (bv >= best_at[group]) & ~beaten_by_cheaper
    return out
