"""oassim.analysis layer (see docs/architecture.md): metrics, bottleneck report and exports of Results.

Everything here is a pure function of :class:`~oassim.scheduler.results.Results` (docs/architecture.md
decision 8): :mod:`~oassim.analysis.metrics` computes the headline metrics (iteration time,
tokens/s, MFU, HFU, exposed communication, bubble, breakdown); :mod:`~oassim.analysis.report`
says in plain words what limits an iteration and what would help; :mod:`~oassim.analysis.trace`
exports a Chrome trace and Parquet tables; :mod:`~oassim.analysis.plots` draws frames of results
(matplotlib is imported only when a plot is drawn).
"""

from oassim.analysis.metrics import (
    DIMS,
    breakdown,
    collective_bottlenecks,
    critical_rank,
    exposed_by_dim,
    summary,
    tier_bottlenecks,
)
from oassim.analysis.plots import (
    axis_label,
    bars,
    breakdown_bars,
    busbw_curves,
    line,
    pareto_front,
    pareto_mask,
    tier_heatmap,
)
from oassim.analysis.report import bottleneck_report, text_summary
from oassim.analysis.trace import chrome_trace, write_chrome_trace, write_link_utilisation, write_parquet

__all__ = [
    "summary", "critical_rank", "breakdown", "exposed_by_dim", "collective_bottlenecks", "tier_bottlenecks", "DIMS",
    "bottleneck_report", "text_summary",
    "chrome_trace", "write_chrome_trace", "write_link_utilisation", "write_parquet",
    "line", "busbw_curves", "bars", "breakdown_bars", "tier_heatmap", "pareto_front", "pareto_mask", "axis_label",
]
