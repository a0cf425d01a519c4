"""Tick labels of linear plot axes that never overlap, however long or dense the labels.

Why a module of its own: every plot of :mod:`oassim.analysis.plots` with a numeric x axis
uses it, and it is drawing machinery (a matplotlib locator working at draw time), not a plot.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["number", "spaced_ticks"]


def number(v: float) -> str:
    return f"{v:,.6g}"


def spaced_ticks(axis: Any, values: Sequence[float] | None = None) -> None:
    """Ticks of a linear ``axis`` whose labels never overlap, however long or dense.

    matplotlib's default locator sizes its tick count for labels about three characters wide
    and a swept axis (1,024 ... 16,384 on a linear scale) puts labels where the values are;
    both collide on a narrow axes. The locator below works at draw time, on the final axes
    size: it keeps ``values`` (or a MaxNLocator's nice numbers, fewer until they fit) at
    least one label width apart, estimating a label as 0.7 em per character plus 1 em.
    """
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import FuncFormatter, Locator, MaxNLocator

    class Spaced(Locator):
        def __call__(self) -> list[float]:
            lo, hi = sorted(self.axis.get_view_interval())
            return self.tick_values(lo, hi)

        def tick_values(self, vmin: float, vmax: float) -> list[float]:
            ax = self.axis.axes
            box = ax.get_window_extent()
            length = box.width if self.axis is ax.xaxis else box.height
            vertical = self.axis is not ax.xaxis
            em = FontProperties(size=rcParams["ytick.labelsize" if vertical else "xtick.labelsize"])
            em = em.get_size_in_points() * ax.figure.dpi / 72.0

            def size(v: float) -> float:
                return 1.6 * em if vertical else (0.7 * len(number(v)) + 1.0) * em

            def fits(ticks: Sequence[float]) -> list[float]:
                if vmax <= vmin:
                    return list(ticks)[:1]
                kept: list[float] = []
                edge = -np.inf
                for v in ticks:
                    x = (v - vmin) / (vmax - vmin) * length
                    if x - size(v) / 2 >= edge:
                        kept.append(v)
                        edge = x + size(v) / 2
                return kept

            if values is not None:
                return fits([v for v in values if vmin - 1e-9 * abs(vmin) <= v <= vmax + 1e-9 * abs(vmax)])
            for n in range(9, 0, -1):
                ticks = [v for v in MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
                         if vmin <= v <= vmax]
                if len(fits(ticks)) == len(ticks):
                    return ticks
            return fits(ticks)

    axis.set_major_locator(Spaced())
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
