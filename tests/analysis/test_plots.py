"""Plots draw what they promise on the axes they are given; the Pareto mask matches a brute-force reference."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from oassim.analysis import plots  # noqa: E402
from oassim.errors import OassimError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends without open figures."""
    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture
def ax():
    """A fresh Agg axes."""
    _, a = plt.subplots()
    return a


def brute_force_pareto(cost, benefit) -> np.ndarray:
    """O(n^2) reference: on the front iff valid and no valid point is <= in cost, >= in benefit, better in one."""
    c = np.asarray(cost, dtype=float)
    b = np.asarray(benefit, dtype=float)
    valid = ~(np.isnan(c) | np.isnan(b))
    out = np.zeros(c.size, dtype=bool)
    for i in np.flatnonzero(valid):
        dominated = False
        for j in np.flatnonzero(valid):
            if c[j] <= c[i] and b[j] >= b[i] and (c[j] < c[i] or b[j] > b[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


# small integer grids make ties (equal cost, equal benefit, identical points) frequent
_value = st.one_of(st.integers(0, 6).map(float), st.just(float("nan")), st.floats(-1e3, 1e3, allow_nan=False))
_points = st.lists(st.tuples(_value, _value), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_points)
def test_pareto_mask_matches_brute_force(points):
    """pareto_mask equals the O(n^2) dominance check, ties and NaN included."""
    cost = np.array([p[0] for p in points], dtype=float)
    benefit = np.array([p[1] for p in points], dtype=float)
    got = plots.pareto_mask(cost, benefit)
    assert got.dtype == bool and got.shape == cost.shape
    np.testing.assert_array_equal(got, brute_force_pareto(cost, benefit))


def test_pareto_mask_ties_none_and_duplicates():
    """Identical points both stay on the front; an equal-cost point with less benefit and None rows drop."""
    cost = [1.0, 1.0, 1.0, None, 2.0, 0.5]
    benefit = [3.0, 3.0, 2.0, 9.0, 4.0, float("nan")]
    np.testing.assert_array_equal(plots.pareto_mask(cost, benefit), [True, True, False, False, True, False])


def test_pareto_mask_rejects_mismatched_lengths():
    """Cost and benefit of different lengths is an error, not a silent broadcast."""
    with pytest.raises(OassimError, match="differ in length"):
        plots.pareto_mask([1, 2, 3], [1, 2])


def test_line_one_sorted_line_per_hue_in_sorted_order(ax):
    """line() draws one line per hue value, legend in sorted order, points sorted by x."""
    df = pd.DataFrame({"accelerators": [4096, 1024, 2048, 1024, 4096, 2048],
                       "tokens_per_s": [4.0, 1.0, 2.0, 1.5, 5.0, 3.0],
                       "design": ["zeta", "zeta", "zeta", "alpha", "alpha", "alpha"]})
    out = plots.line(df, "accelerators", "tokens_per_s", hue="design", ax=ax)
    assert out is ax
    assert len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["alpha", "zeta"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1024, 2048, 4096])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1.5, 3.0, 5.0])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [1.0, 2.0, 4.0])
    assert ax.get_xlabel() == "accelerators" and ax.get_ylabel() == "tokens/s"


def test_line_hue_order_overrides_sorting(ax):
    """hue_order draws only the listed hue values, in the order given."""
    df = pd.DataFrame({"x": [1, 2, 1, 2, 1], "y": [1, 2, 3, 4, 5], "design": ["b", "b", "a", "a", "c"]})
    plots.line(df, "x", "y", hue="design", hue_order=["b", "a"], ax=ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "a"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3, 4])


def test_line_without_hue_and_log_axes(ax):
    """Without hue there is one line and no legend; logx/logy set log scales."""
    df = pd.DataFrame({"size_bytes": [8, 2, 4], "busbw_GBps": [3.0, 1.0, 2.0]})
    plots.line(df, "size_bytes", "busbw_GBps", ax=ax, logx=True, logy=True)
    assert len(ax.lines) == 1 and ax.get_legend() is None
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_ylabel() == "busbw (GB/s)"


def test_line_creates_a_figure_when_no_ax_is_given():
    """With ax=None a new figure is made and its axes returned."""
    df = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    a = plots.line(df, "x", "y")
    assert a.figure is not None and len(a.lines) == 1


def test_busbw_curves_size_axis_in_powers_of_two(ax):
    """busbw_curves puts sizes on a base-2 log axis labelled 1M, 1G like nccl-tests."""
    sizes = [2 ** k for k in (20, 25, 30)]
    df = pd.DataFrame({"size_bytes": sizes * 2, "busbw_GBps": [1, 2, 3, 2, 4, 6],
                       "scope": ["domain"] * 3 + ["cluster"] * 3})
    out = plots.busbw_curves(df, hue="scope", ax=ax)
    assert out is ax and len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cluster", "domain"]
    fmt = ax.xaxis.get_major_formatter()
    assert fmt(2 ** 20, 0) == "1M" and fmt(2 ** 30, 0) == "1G" and fmt(2 ** 33, 0) == "8G"


def test_bars_one_patch_per_row_in_frame_order(ax):
    """bars() draws len(df) bars labelled by x in the frame's order, annotated when asked."""
    df = pd.DataFrame({"design": ["nvl72", "cm384", "tpu"], "mfu": [0.4, 0.3, float("nan")]})
    out = plots.bars(df, "design", "mfu", ax=ax, annotate=True)
    assert out is ax
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["nvl72", "cm384", "tpu"]
    assert [t.get_text() for t in ax.texts] == ["0.4", "0.3", "n/a"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.4, 0.3, 0.0])


def test_breakdown_bars_stack_parts_and_drop_empty_ones(ax):
    """breakdown_bars stacks each part on the previous one and leaves out all-zero parts."""
    df = pd.DataFrame({"design": ["a", "b"], "compute": [2.0, 3.0], "exposed_tp": [1.0, 0.5],
                       "exposed_ep": [0.0, 0.0], "bubble": [0.5, 1.0]})
    out = plots.breakdown_bars(df, "design", ["compute", "exposed_tp", "exposed_ep", "bubble"], ax=ax)
    assert out is ax
    assert len(ax.patches) == 2 * 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["compute", "exposed comm TP", "bubble"]
    tops = [p.get_y() + p.get_height() for p in ax.patches]
    assert tops[-2:] == pytest.approx([3.5, 4.5])  # the bubble segments end at each bar's total
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_breakdown_bars_normalized_and_default_parts(ax):
    """normalize=True makes every bar sum to 1; parts default to every numeric column."""
    df = pd.DataFrame({"design": ["a", "b"], "compute": [2.0, 3.0], "bubble": [2.0, 1.0]})
    plots.breakdown_bars(df, "design", ax=ax, normalize=True, drop_empty=False)
    assert len(ax.patches) == 4
    tops = [p.get_y() + p.get_height() for p in ax.patches]
    assert tops[2:] == pytest.approx([1.0, 1.0])
    assert ax.get_ylabel() == "fraction of iteration"


def test_tier_heatmap_long_frame(ax):
    """A long (row, tier, utilisation) frame becomes one image with a value in every cell and a colour bar."""
    df = pd.DataFrame({"design": ["x", "x", "y", "y", "y"],
                       "tier": ["scaleup", "leaf-spine", "ici", "scaleup", "leaf-spine"],
                       "utilisation": [0.5, 0.25, 0.9, 0.1, 0.0]})
    out = plots.tier_heatmap(df, "design", ax=ax)
    assert out is ax
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (2, 3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["scaleup", "leaf-spine", "ici"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    assert [t.get_text() for t in ax.texts] == ["50%", "25%", "–", "10%", "0%", "90%"]
    assert len(ax.figure.axes) == 2  # the colour bar


def test_tier_heatmap_wide_frame_without_colorbar(ax):
    """A wide frame with tier columns gives rows x tiers cells, in the order given."""
    df = pd.DataFrame({"point": [1, 2, 3], "nvlink": [0.1, 0.2, 0.3], "ib": [0.7, 0.8, 0.9]})
    plots.tier_heatmap(df, "point", ["ib", "nvlink"], ax=ax, colorbar=False, fmt="{:.1f}")
    assert ax.images[0].get_array().shape == (3, 2)
    assert [t.get_text() for t in ax.texts] == ["0.7", "0.1", "0.8", "0.2", "0.9", "0.3"]
    assert len(ax.figure.axes) == 1


def test_tier_heatmap_rejects_duplicate_cells(ax):
    """Two values for one (row, tier) cell is an error asking to aggregate first."""
    df = pd.DataFrame({"design": ["x", "x"], "tier": ["a", "a"], "utilisation": [0.1, 0.2]})
    with pytest.raises(OassimError, match="aggregate"):
        plots.tier_heatmap(df, "design", ax=ax)


def test_pareto_front_highlights_and_connects_the_front(ax):
    """pareto_front scatters dominated points, joins the front sorted by cost and labels every drawn point."""
    df = pd.DataFrame({"design": ["a", "b", "c", "d", "e"],
                       "power_W": [100.0, 200.0, 150.0, 300.0, np.nan],
                       "tokens_per_s": [1.0, 3.0, 0.5, 3.5, 9.0]})
    out = plots.pareto_front(df, "power_W", "tokens_per_s", label="design", ax=ax)
    assert out is ax
    assert len(ax.lines) == 1
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [100.0, 200.0, 300.0])
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 1  # only "c" is dominated
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "c", "d"]
    assert "lower is better" in ax.get_xlabel()


@pytest.mark.parametrize("call", [
    lambda df, ax: plots.line(df, "x", "nope", ax=ax),
    lambda df, ax: plots.line(df, "x", "y", hue="nope", ax=ax),
    lambda df, ax: plots.bars(df, "nope", "y", ax=ax),
    lambda df, ax: plots.breakdown_bars(df, "x", ["y", "nope"], ax=ax),
    lambda df, ax: plots.tier_heatmap(df, "x", ["nope"], ax=ax),
    lambda df, ax: plots.pareto_front(df, "x", "y", label="nope", ax=ax),
    lambda df, ax: plots.busbw_curves(df, ax=ax),
])
def test_missing_column_names_it_and_the_columns_available(call, ax):
    """A column that is not in the frame raises OassimError naming it and the columns present."""
    df = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    with pytest.raises(OassimError) as err:
        call(df, ax)
    msg = str(err.value)
    assert "columns: x, y" in msg and "is not in the frame" in msg
    assert "'nope'" in msg or "'size_bytes'" in msg


def test_axis_labels_make_units_readable():
    """Unit suffixes become readable units and acronyms are capitalised."""
    assert plots.axis_label("busbw_GBps") == "busbw (GB/s)"
    assert plots.axis_label("tokens_per_s") == "tokens/s"
    assert plots.axis_label("tokens_per_s_per_accelerator") == "tokens/s per accelerator"
    assert plots.axis_label("iteration_time_s") == "iteration time (s)"
    assert plots.axis_label("tflops_per_accelerator") == "TFLOP/s per accelerator"
    assert plots.axis_label("power_per_accelerator_W") == "power per accelerator (W)"
    assert plots.axis_label("power_W_per_accelerator") == "power per accelerator (W)"  # the store's names
    assert plots.axis_label("cost_USD_per_accelerator") == "cost per accelerator (USD)"
    assert plots.axis_label("mfu") == "MFU"
    assert plots.axis_label("s") == "s"


def test_importing_analysis_leaves_matplotlib_unimported():
    """`import oassim.analysis` (plots included) does not import matplotlib."""
    code = ("import sys, oassim.analysis, oassim.analysis.plots; "
            "print(any(m == 'matplotlib' or m.startswith('matplotlib.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_sweep_points_draws_every_point_and_the_mean_per_x():
    """Repeats at one x show as dots; the line goes through their mean, one line per hue value."""
    df = pd.DataFrame({"n": [1, 1, 2, 2, 1, 2], "t": [1.0, 3.0, 5.0, 7.0, 10.0, 20.0],
                       "fam": ["a", "a", "a", "a", "b", "b"]})
    ax = plots.sweep_points(df, "n", "t", hue="fam")
    assert [ln.get_label() for ln in ax.lines] == ["fam=a", "fam=b"]
    assert list(ax.lines[0].get_ydata()) == [2.0, 6.0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6


def test_sweep_points_categorical_x_and_no_numbers():
    """Text x values get one tick each in order of appearance; a y without numbers is refused."""
    df = pd.DataFrame({"preset": ["p2", "p1", "p2"], "t": [1.0, 2.0, 3.0], "bad": ["x", "y", "z"]})
    ax = plots.sweep_points(df, "preset", "t")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p2", "p1"]
    with pytest.raises(OassimError, match="no numbers"):
        plots.sweep_points(df, "preset", "bad")


def _label_boxes(axis):
    """Window extents of the drawn, non-empty major tick labels of ``axis`` (after a draw)."""
    fig = axis.axes.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    lo, hi = sorted(axis.get_view_interval())
    return [t.label1.get_window_extent(renderer) for t in axis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


def _overlapping(boxes):
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


@pytest.mark.parametrize("width", [2.5, 4.0, 8.0])
def test_linear_axis_tick_labels_never_overlap(width):
    """Rendered with Agg, the tick labels of linear x axes (a swept scale 1,024..16,384; a line
    up to 1.5 million; a Pareto cost axis) do not intersect, on narrow and wide figures, and at
    least two labels stay."""
    sweep = pd.DataFrame({"accelerators": [1024, 2048, 4096, 8192, 16384] * 2, "mfu": np.linspace(0.3, 0.5, 10)})
    big = pd.DataFrame({"tokens": np.linspace(1000, 1_512_345, 7), "mfu": np.linspace(0.3, 0.5, 7)})
    for draw in (lambda a: plots.sweep_points(sweep, "accelerators", "mfu", ax=a),
                 lambda a: plots.line(big, "tokens", "mfu", ax=a),
                 lambda a: plots.pareto_front(big, "tokens", "mfu", ax=a)):
        fig, a = plt.subplots(figsize=(width, 3), layout="constrained")
        draw(a)
        boxes = _label_boxes(a.xaxis)
        assert len(boxes) >= 2
        assert _overlapping(boxes) == []
        plt.close(fig)
