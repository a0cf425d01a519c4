"""The figures of an OAS-Bench report, as PNG bytes.

What is drawn: training throughput per accelerator by workload and candidate (bars), bus
bandwidth against message size for each collective (one panel per scale, one line per
candidate), and power and optical modules per accelerator (bars); for supernode proposals,
power per accelerator stacked by part and optical modules per accelerator (bars). Each figure is a pure
function of an :class:`~oassim.experiments.evaluate.Evaluation`.

Why PNG bytes and the object-oriented matplotlib API: the HTML report embeds them as base64
data URIs and the Markdown report links them as files, so one rendering serves both; drawing
on a ``Figure`` with an Agg canvas never touches pyplot's global backend (a notebook that
imports oassim keeps its own).
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["training_figure", "busbw_figure", "structure_figure", "report_figures", "proposal_figure"]

_DPI = 110


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _bars(ax: Any, groups: list[str], series: dict[str, list[float | None]], ylabel: str,
          labels: dict[str, list[float | None]] | None = None) -> None:
    """Grouped bars: one group per ``groups`` entry, one bar per series (None: no bar, "n/a");
    each bar is labelled with its value, or with ``labels`` (same shape) when given."""
    n = max(1, len(series))
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, ys, width, label=name)
        shown = labels[name] if labels is not None else values
        for x, v, b in zip(xs, shown, bars):
            if v is None:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            else:
                ax.text(x, b.get_height(), _label(v), ha="center", va="bottom", fontsize=7,
                        rotation=90 if n > 2 else 0)
    ax.margins(y=0.2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)


def training_figure(ev: Any) -> bytes:
    """Tokens/s per accelerator for every workload (groups) and candidate (bars), as a fraction of
    the best candidate on that workload (the training score's terms), labelled with the absolute value."""
    workloads = [t.name for t in ev.suite.training]
    absolute = {}
    for c in ev.ranked():
        ok = {r["workload"]: r for r in c.training if r.get("status") == "ok"}
        absolute[c.name] = [ok[w]["tokens_per_s_per_accelerator"] if w in ok else None for w in workloads]
    best = [max([v[i] for v in absolute.values() if v[i] is not None], default=None) for i in range(len(workloads))]
    relative = {k: [x / b if x is not None and b else None for x, b in zip(v, best)] for k, v in absolute.items()}
    fig = _figure(max(6.0, 2.4 * len(workloads)), 3.8)
    ax = fig.add_subplot()
    groups = [f"{t.name}\n({t.accelerators:,} acc.)" for t in ev.suite.training]
    _bars(ax, groups, relative, "tokens/s per accelerator / best", labels=absolute)
    ax.set_ylim(0, 1.3)
    ax.set_title("Training throughput per accelerator relative to the best (labels: tokens/s per accelerator)",
                 fontsize=9)
    return _png(fig)


def busbw_figure(ev: Any, op: str) -> bytes:
    """Bus bandwidth against size for ``op``: one panel per scale, one line per candidate."""
    rows = [r for r in ev.collectives_rows() if r["op"] == op]
    scales = list(dict.fromkeys("domain" if "domain" in r["scale"] else r["scale"] for r in rows))
    fig = _figure(3.4 * max(1, len(scales)), 3.2)
    axes = fig.subplots(1, max(1, len(scales)), squeeze=False)[0]
    for ax, scale in zip(axes, scales):
        plotted = False
        for c in ev.ranked():
            pts = [(r["size_bytes"], r["busbw_GBps"]) for r in rows
                   if r["candidate"] == c.name and r.get("status") == "ok"
                   and ("domain" if "domain" in r["scale"] else r["scale"]) == scale]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=c.name)
                plotted = True
        ax.set_xscale("log", base=2)
        ax.set_title(f"{op} at {'domain size' if scale == 'domain' else scale + ' ranks'}", fontsize=9)
        ax.set_xlabel("size (bytes)")
        ax.grid(alpha=0.3)
        if not plotted:
            ax.text(0.5, 0.5, "not run\n(beyond the engine's all-to-all limit)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    axes[0].set_ylabel("busbw (GB/s)")
    axes[0].legend(fontsize=7)
    return _png(fig)


def structure_figure(ev: Any) -> bytes:
    """Power (W) and optical modules per accelerator of each reference cluster."""
    cands = ev.ranked()
    fig = _figure(max(6.0, 1.6 * len(cands) + 3), 3.4)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"wspace": 0.35})
    names = [c.name for c in cands]
    _bars(ax1, names, {"known parts": [c.structure.get("power_W_per_accelerator") for c in cands]}, "W per accelerator")
    ax1.set_title("Power per accelerator (published figures only)", fontsize=9)
    _bars(ax2, names, {"optical modules": [c.structure.get("optical_modules_per_accelerator") for c in cands]},
          "modules per accelerator")
    ax2.set_title("Optical modules per accelerator", fontsize=9)
    for ax in (ax1, ax2):
        for label in ax.get_xticklabels():
            label.set_rotation(20)
            label.set_ha("right")
    return _png(fig)


def report_figures(ev: Any) -> dict[str, tuple[str, bytes]]:
    """Every figure of the report: file name -> (caption, PNG bytes)."""
    out = {"training.png": ("Training throughput per accelerator by workload", training_figure(ev))}
    for op in ev.suite.collectives.ops:
        out[f"busbw-{op}.png"] = (f"{op} bus bandwidth against size", busbw_figure(ev, op))
    out["power-optics.png"] = ("Power and optical modules per accelerator", structure_figure(ev))
    return out


# Stacked power parts of a proposal, in the order drawn (bottom first).
_POWER_PARTS = (("accelerators_W", "accelerators"), ("switches_W", "switches"), ("nics_W", "NICs"),
                ("optics_W", "optics"), ("interconnect_links_W", "interconnect links"))


def proposal_figure(ev: Any) -> bytes:
    """Power per accelerator stacked by part (published figures only; a part with an unknown
    figure is marked with "+?") and optical modules per accelerator, one bar per proposal."""
    results = list(ev.results)
    names = [r.name for r in results]
    fig = _figure(max(7.0, 1.3 * len(results) + 4), 3.8)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"wspace": 0.3})
    bottom = [0.0] * len(results)
    for key, label in _POWER_PARTS:
        vals = [r.totals["power_W"][key] / r.totals["accelerators"] for r in results]
        ax1.bar(range(len(results)), vals, 0.6, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, r in enumerate(results):
        text = _label(bottom[i]) + (" +?" if r.totals["power_unknown_for"] else "")
        ax1.text(i, bottom[i], text, ha="center", va="bottom", fontsize=7)
    ax1.set_ylabel("W per accelerator")
    ax1.set_title("Power per accelerator by part (+?: parts without a published figure)", fontsize=9)
    ax1.set_ylim(0, 1.3 * max(max(bottom), 1.0))  # room for the labels and the legend above the bars
    ax1.legend(fontsize=7, loc="upper center", ncol=3)
    _bars(ax2, names, {"optical modules": [r.totals["optical_modules_per_accelerator"] for r in results]},
          "modules per accelerator")
    ax2.set_title("Optical modules per accelerator", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)
