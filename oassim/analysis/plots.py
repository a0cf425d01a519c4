"""Plots of simulation results for architects and sweep users: pure functions of DataFrames.

What is drawn: throughput or bandwidth against a swept quantity (:func:`line`,
:func:`busbw_curves`), one value per design (:func:`bars`), where an iteration's time goes
(:func:`breakdown_bars`, stacked: compute, exposed communication per parallel dimension,
pipeline bubble, optimizer), how busy each link tier is (:func:`tier_heatmap`), and which
designs are worth their cost (:func:`pareto_front`, with the pure :func:`pareto_mask`).

Why DataFrames and not Results: a sweep, a notebook comparing four supernodes and a stored
Parquet table all end up as frames of flat records (docs/architecture.md decision 8), so each plot takes
a frame and column names and works on any of them. Every function draws on the matplotlib
``ax`` it is given (or on a new figure when ``ax`` is None) and returns that ax; none calls
``plt.show()`` or writes a file (the caller decides). matplotlib is imported inside the
functions only, so ``import oassim.analysis`` stays free of it (docs/architecture.md, conventions: no work at import).

Axis labels come from the column names with their unit suffix made readable
(:func:`axis_label`: ``busbw_GBps`` -> "busbw (GB/s)", ``tokens_per_s`` -> "tokens/s").
A column that is not in the frame raises :class:`~oassim.errors.OassimError` naming it and
the columns that are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from oassim.analysis.pareto import pareto_mask
from oassim.analysis.ticks import number as _number
from oassim.analysis.ticks import spaced_ticks as _spaced_ticks
from oassim.errors import OassimError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["axis_label", "line", "sweep_points", "busbw_curves", "bars", "breakdown_bars", "tier_heatmap",
           "pareto_mask", "pareto_front"]

# Unit suffixes of column names (docs/architecture.md decision 1) and how a reader writes them; longest
# suffix first so that "_GBps" wins over "_s".
_UNITS = (
    ("_per_s", "/s"), ("_TFLOPS", " (TFLOP/s)"), ("_GBps", " (GB/s)"), ("_TBps", " (TB/s)"),
    ("_Gbps", " (Gb/s)"), ("_Bps", " (B/s)"), ("_bytes", " (bytes)"), ("_USD", " (USD)"), ("_GB", " (GB)"),
    ("_kW", " (kW)"), ("_MW", " (MW)"), ("_W", " (W)"), ("_ms", " (ms)"), ("_us", " (µs)"), ("_ns", " (ns)"),
    ("_s", " (s)"), ("_m", " (m)"),
)
_WORDS = {"mfu": "MFU", "hfu": "HFU", "tflops": "TFLOP/s", "tp": "TP", "pp": "PP", "dp": "DP", "cp": "CP",
          "ep": "EP", "vpp": "VPP", "busbw": "busbw", "algbw": "algbw"}


def axis_label(name: Any) -> str:
    """A readable axis label for a column name: words spaced, unit suffix in parentheses.

    Examples: ``busbw_GBps`` -> "busbw (GB/s)", ``tokens_per_s`` -> "tokens/s",
    ``iteration_time_s`` -> "iteration time (s)", ``tflops_per_accelerator`` ->
    "TFLOP/s per accelerator", ``power_W_per_accelerator`` -> "power per accelerator (W)",
    ``mfu`` -> "MFU". Names without a known suffix keep their words.
    """
    text = str(name)
    unit = ""
    for suffix, shown in _UNITS:
        if text.endswith(suffix) and len(text) > len(suffix):
            text, unit = text[: -len(suffix)], shown
            break
        mid = suffix + "_per_"  # a unit before "per ...": power_W_per_accelerator
        if suffix != "_per_s" and mid in text and shown.startswith(" ("):
            head, tail = text.split(mid, 1)
            if head.endswith("_per"):  # tokens_per_s_per_accelerator: a rate, not a unit
                continue
            text, unit = f"{head}_per_{tail}", shown
            break
    words: list[str] = []
    for w in (w for w in text.split("_") if w):
        if w == "s" and words and words[-1] == "per" and len(words) > 1:
            words[-1:] = []  # "tokens per s per accelerator" reads "tokens/s per accelerator"
            words[-1] += "/s"
        else:
            words.append(_WORDS.get(w.lower(), w))
    return " ".join(words) + unit


def _require(df: Any, *columns: Any) -> pd.DataFrame:
    """``df`` itself, after checking it is a DataFrame holding every column named (None skipped)."""
    if not isinstance(df, pd.DataFrame):
        raise OassimError(f"expected a pandas DataFrame, got {type(df).__name__}")
    have = list(df.columns)
    for col in columns:
        if col is not None and col not in df.columns:
            raise OassimError(f"column '{col}' is not in the frame (columns: {', '.join(map(str, have)) or 'none'})")
    return df


def _axes(ax: "Axes | None", figsize: tuple[float, float] = (6.4, 4.2)) -> "Axes":
    """The axes to draw on: ``ax``, or a new figure's axes."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _sorted_values(values: Any) -> list[Any]:
    """Distinct non-missing values, sorted (by their text when they do not compare)."""
    uniq = [v for v in pd.unique(pd.Series(values).dropna())]
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def line(df: pd.DataFrame, x: str, y: str, hue: str | None = None, ax: "Axes | None" = None, *,
         logx: bool = False, logy: bool = False, marker: str = "o", base: float = 10,
         hue_order: Sequence[Any] | None = None) -> "Axes":
    """One line of ``y`` against ``x`` per value of ``hue`` (e.g. throughput versus scale).

    Parameters
    ----------
    df : DataFrame
        One row per point.
    x, y : str
        Columns of the horizontal and vertical axes (numbers, in the column's unit).
    hue : str, optional
        Column whose values split the rows into lines, drawn and listed in the legend in
        sorted order; rows whose hue is missing are not drawn. Without it, one line.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).
    logx, logy : bool
        Logarithmic axes (``base`` for both).
    marker : str
        Marker of each point.
    base : float
        Base of the logarithmic axes (2 for message sizes).
    hue_order : sequence, optional
        The hue values to draw, in this order (default: every value, sorted), e.g. the
        designs in the order a notebook lists them so colours match its other plots.

    Returns
    -------
    matplotlib Axes
        ``ax`` (or the new one), with ``len(ax.lines)`` = number of hue values; each line's
        points are sorted by ``x``.
    """
    _require(df, x, y, hue)
    ax = _axes(ax)
    values = _sorted_values(df[hue]) if hue is not None and hue_order is None else list(hue_order or [])
    groups = [(None, df)] if hue is None else [(v, df[df[hue] == v]) for v in values]
    for value, part in groups:
        part = part.sort_values(x, kind="stable")
        ax.plot(part[x].to_numpy(), part[y].to_numpy(), marker=marker, label=None if hue is None else str(value))
    if logx:
        ax.set_xscale("log", base=base)
    else:
        _spaced_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log", base=base)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    if hue is not None and groups:
        ax.legend(title=axis_label(hue))
    ax.grid(True, alpha=0.3)
    return ax


def sweep_points(df: pd.DataFrame, x: str, y: str, hue: str | None = None, ax: "Axes | None" = None, *,
                 logx: bool = False, logy: bool = False) -> "Axes":
    """Every point of a sweep as a dot, and the mean of ``y`` at each ``x`` as a line (one per
    value of ``hue``): repeats (seeds) and the other axes' spread stay visible.

    Parameters
    ----------
    df : DataFrame
        One row per sweep point (``oassim.experiments.load_results``).
    x : str
        Column of the swept quantity: numbers (ticks at the swept values when there are at most
        12), or categories (one tick each, in order of appearance).
    y : str
        Column to plot; rows where it is not a number are left out (OassimError when none is).
    hue : str, optional
        Column splitting the points into coloured groups (legend "hue=value", sorted).
    ax : matplotlib Axes, optional
    logx, logy : bool
        Logarithmic axes (``logx`` only for a numeric ``x``).

    Returns
    -------
    matplotlib Axes
        With one line per group (``len(ax.lines)``) and one scatter collection per group.
    """
    _require(df, x, y, hue)
    yv = pd.to_numeric(df[y], errors="coerce")
    if yv.isna().all():
        raise OassimError(f"column '{y}' has no numbers to plot")
    data = df.assign(_y=yv).dropna(subset=["_y"])
    numeric_x = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    cats: list[str] = []
    if numeric_x:
        data = data.assign(_x=data[x].astype(float))
    else:
        cats = list(dict.fromkeys(data[x].astype(str)))
        data = data.assign(_x=data[x].astype(str).map({c: i for i, c in enumerate(cats)}))
    ax = _axes(ax, (7, 4.5))
    if hue is None:
        groups: list[tuple[Any, pd.DataFrame]] = [(None, data)]
    else:
        groups = [(v, data[data[hue] == v]) for v in _sorted_values(data[hue])]
    for label, g in groups:
        mean = g.groupby("_x", sort=True)["_y"].mean()
        drawn, = ax.plot(mean.index, mean.values, label=None if label is None else f"{hue}={label}")
        ax.scatter(g["_x"], g["_y"], s=14, alpha=0.6, color=drawn.get_color())
    if not numeric_x:
        ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    elif logx:
        ax.set_xscale("log")
    xs = sorted(data["_x"].unique())
    if numeric_x and len(xs) <= 12:  # a swept axis: label its values, not a generic scale
        from matplotlib.ticker import NullFormatter

        if logx:
            ax.set_xticks(xs, [_number(v) for v in xs])
        else:  # the swept values, as many as fit without overlapping
            _spaced_ticks(ax.xaxis, xs)
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif numeric_x and not logx:
        _spaced_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.grid(True, alpha=0.3)
    if hue is not None:
        ax.legend(fontsize="small")
    return ax


def _size_text(nbytes: float) -> str:
    """A message size as nccl-tests prints it: powers of two with K/M/G/T suffixes."""
    for shift, suffix in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):g}{suffix}"
    return f"{nbytes:g}"


def busbw_curves(df: pd.DataFrame, size: str = "size_bytes", busbw: str = "busbw_GBps", hue: str | None = None,
                 ax: "Axes | None" = None, *, marker: str = "o", hue_order: Sequence[Any] | None = None) -> "Axes":
    """Bus bandwidth against message size, nccl-tests style: one curve per ``hue`` value.

    The size axis is logarithmic in base 2 with sizes written as nccl-tests does (``1M``,
    ``1G``); busbw follows the nccl-tests definition (docs/architecture.md "Metric definitions"), as in
    the ``busbw_GBps`` column of :class:`~oassim.collectives.CollectiveResult` rows.

    Parameters
    ----------
    df : DataFrame
        One row per (curve, size), e.g. ``CollectiveResult.row()`` records.
    size : str
        Column of message sizes, bytes (per-rank buffer, nccl-tests convention).
    busbw : str
        Column of bus bandwidths, GB/s.
    hue : str, optional
        Column naming the curves (cluster, group scope, algorithm...), sorted.
    ax : matplotlib Axes, optional
    marker : str
    hue_order : sequence, optional
        As in :func:`line`.

    Returns
    -------
    matplotlib Axes
    """
    ax = line(df, size, busbw, hue=hue, ax=ax, logx=True, base=2, marker=marker, hue_order=hue_order)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _size_text(v)))
    ax.set_xlabel("message size (bytes, per rank)")
    return ax


def bars(df: pd.DataFrame, x: str, y: str, ax: "Axes | None" = None, *, annotate: bool = False,
         fmt: str = "{:.3g}") -> "Axes":
    """One bar of ``y`` per row, labelled by ``x``, in the frame's order (designs as listed).

    Parameters
    ----------
    df : DataFrame
    x : str
        Column of bar labels (design names...).
    y : str
        Column of bar heights, in its unit; a missing value is drawn as an empty bar.
    ax : matplotlib Axes, optional
    annotate : bool
        Write each value above its bar (``fmt``; "n/a" for a missing value).
    fmt : str
        Format of the annotations.

    Returns
    -------
    matplotlib Axes
        With ``len(df)`` bar patches.
    """
    _require(df, x, y)
    ax = _axes(ax)
    labels = [str(v) for v in df[x]]
    heights = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    container = ax.bar(np.arange(len(labels)), np.nan_to_num(heights), tick_label=labels)
    if annotate:
        ax.bar_label(container, labels=[fmt.format(h) if np.isfinite(h) else "n/a" for h in heights])
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def breakdown_bars(df: pd.DataFrame, label: str, parts: Sequence[str] | None = None, ax: "Axes | None" = None, *,
                   normalize: bool = False, drop_empty: bool = True, ylabel: str | None = None) -> "Axes":
    """Stacked bars of where an iteration's time goes, one bar per row (design, sweep point).

    Parameters
    ----------
    df : DataFrame
        One row per bar, one column per part, seconds; e.g. rows of
        ``oassim.analysis.breakdown(results)`` with a label column added.
    label : str
        Column naming the bars (in the frame's order).
    parts : sequence of str, optional
        Columns stacked bottom to top (default: every numeric column but ``label``), e.g.
        ``compute, exposed_tp, exposed_dp, exposed_pp, bubble, optimizer``.
    ax : matplotlib Axes, optional
    normalize : bool
        Divide each bar by its total, to compare the shares of designs whose iteration times
        differ (missing parts count as 0).
    drop_empty : bool
        Leave out parts that are zero (or missing) in every row (e.g. ``exposed_ep`` of a
        dense model), so the legend lists only what takes time.
    ylabel : str, optional
        Vertical axis label (default "time per iteration (s)", or "fraction of iteration").

    Returns
    -------
    matplotlib Axes
        With ``len(df) * len(parts drawn)`` bar patches and one legend entry per part drawn.
    """
    if parts is None:
        _require(df, label)
        parts = [c for c in df.columns if c != label and pd.api.types.is_numeric_dtype(df[c])]
    parts = list(parts)
    _require(df, label, *parts)
    ax = _axes(ax)
    values = df[parts].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(dtype=float).reshape(len(df), -1)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    keep = [i for i in range(len(parts)) if not (drop_empty and not np.any(values[:, i] != 0))]
    pos = np.arange(len(df))
    bottom = np.zeros(len(df))
    for i in keep:
        ax.bar(pos, values[:, i], bottom=bottom, label=axis_label(parts[i]).replace("exposed ", "exposed comm "))
        bottom = bottom + values[:, i]
    ax.set_xticks(pos, [str(v) for v in df[label]])
    ax.set_xlabel(axis_label(label))
    ax.set_ylabel(ylabel or ("fraction of iteration" if normalize else "time per iteration (s)"))
    if keep:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def _tier_table(df: pd.DataFrame, row: str, tiers: Sequence[str] | None, tier: str, value: str) -> pd.DataFrame:
    """The (rows x tiers) table of values from a wide or long frame, in first-appearance order."""
    if tiers is not None:
        tiers = list(tiers)
        _require(df, row, *tiers)
        return df.set_index(row)[tiers].apply(pd.to_numeric, errors="coerce")
    _require(df, row, tier, value)
    dup = df.duplicated([row, tier])
    if dup.any():
        r = df.loc[dup].iloc[0]
        raise OassimError(f"several rows share {row}={r[row]!r} and {tier}={r[tier]!r}: aggregate them to one "
                          f"{value} per ({row}, {tier}) first")
    table = df.pivot(index=row, columns=tier, values=value)
    return table.loc[pd.unique(df[row]), pd.unique(df[tier])].apply(pd.to_numeric, errors="coerce")


def tier_heatmap(df: pd.DataFrame, row: str, tiers: Sequence[str] | None = None, ax: "Axes | None" = None, *,
                 tier: str = "tier", value: str = "utilisation", vmin: float = 0.0, vmax: float = 1.0,
                 cmap: str = "viridis", annotate: bool = True, fmt: str = "{:.0%}",
                 colorbar: bool = True) -> "Axes":
    """Heat map of link utilisation per tier: rows = designs (or sweep points), columns = tiers.

    Parameters
    ----------
    df : DataFrame
        Either wide (one row per design, one column per tier, pass ``tiers``) or long (one row
        per (design, tier), e.g. ``Results.tiers`` frames concatenated with a design column).
    row : str
        Column naming the rows of the map (in first-appearance order).
    tiers : sequence of str, optional
        Wide frame: the tier columns, left to right. Omit for a long frame.
    ax : matplotlib Axes, optional
    tier, value : str
        Long frame: the tier column and the value column (``utilisation``, or
        ``max_link_utilisation`` for the busiest link). A (row, tier) pair given twice is an
        error (aggregate first).
    vmin, vmax : float
        Colour range (utilisation is a fraction, 0..1).
    cmap : str
        Matplotlib colour map; tiers a row does not have are drawn grey and marked "–".
    annotate : bool
        Write each cell's value (``fmt``) in it.
    colorbar : bool
        Add a colour bar labelled with the value.

    Returns
    -------
    matplotlib Axes
        With one image; ``rows * tiers`` texts when annotated.
    """
    table = _tier_table(df, row, tiers, tier, value)
    ax = _axes(ax, figsize=(1.2 + 1.1 * max(1, table.shape[1]), 1.2 + 0.5 * max(1, table.shape[0])))
    import matplotlib

    data = np.ma.masked_invalid(table.to_numpy(dtype=float))
    cm = matplotlib.colormaps[cmap].with_extremes(bad="0.85")
    im = ax.imshow(data, cmap=cm, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(np.arange(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel(tier if tiers is None else "tier")
    ax.set_ylabel(axis_label(row))
    if annotate:
        mid = vmin + 0.5 * (vmax - vmin)
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
            text = fmt.format(v) if np.isfinite(v) else "–"
            colour = "black" if not np.isfinite(v) or v > mid else "white"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=axis_label(value))
    return ax


def pareto_front(df: pd.DataFrame, cost: str, benefit: str, label: str | None = None, ax: "Axes | None" = None, *,
                 annotate: bool = True) -> "Axes":
    """Scatter every point, and highlight and connect the Pareto-optimal ones.

    Parameters
    ----------
    df : DataFrame
        One row per design or sweep point.
    cost : str
        Column to minimise (power per accelerator, optics per accelerator, price...).
    benefit : str
        Column to maximise (tokens/s, MFU...).
    label : str, optional
        Column naming the points; each drawn point is annotated with it when ``annotate``.
    ax : matplotlib Axes, optional
    annotate : bool

    Returns
    -------
    matplotlib Axes
        Dominated points as one scatter (``ax.collections``), the front as one line with
        markers (``ax.lines[0]``, sorted by cost). Rows with a missing cost or benefit are not
        drawn (:func:`pareto_mask`).
    """
    _require(df, cost, benefit, label)
    ax = _axes(ax)
    c = pd.to_numeric(df[cost], errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(df[benefit], errors="coerce").to_numpy(dtype=float)
    front = pareto_mask(c, b)
    drawn = ~(np.isnan(c) | np.isnan(b))
    dominated = drawn & ~front
    if dominated.any():
        ax.scatter(c[dominated], b[dominated], color="0.6", label="dominated", zorder=2)
    if front.any():
        order = np.lexsort((-b[front], c[front]))
        ax.plot(c[front][order], b[front][order], marker="o", color="C3", label="Pareto front", zorder=3)
    if annotate and label is not None:
        for i in np.flatnonzero(drawn):
            ax.annotate(str(df[label].iloc[i]), (c[i], b[i]), xytext=(5, 5), textcoords="offset points",
                        fontsize="small")
    _spaced_ticks(ax.xaxis)
    ax.set_xlabel(f"{axis_label(cost)}, lower is better")
    ax.set_ylabel(f"{axis_label(benefit)}, higher is better")
    if drawn.any():
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax
