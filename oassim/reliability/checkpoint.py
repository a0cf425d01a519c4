"""Checkpoint interval: the Young/Daly optimum and the checkpoint write time.

What is modelled: a job that writes a checkpoint of ``S`` bytes to storage at ``B`` bytes/s
blocks for ``delta = S / B`` seconds; with failures at mean time ``M`` apart, the compute time
between checkpoints that minimises the expected wasted time is, to first order, Young's
``tau = sqrt(2 delta M)`` (J. W. Young, "A first order approximation to the optimum checkpoint
interval", CACM 17(9), 1974) and, to higher order, Daly's

    tau = sqrt(2 delta M) * (1 + sqrt(delta / (2 M)) / 3 + delta / (18 M)) - delta,  delta < 2 M
    tau = M,                                                                         otherwise

(J. T. Daly, "A higher order estimate of the optimum checkpoint interval for restart dumps",
FGCS 22(3), 2006). The checkpoint holds the bf16 weights and the fp32 master weights
and Adam moments: 2 + 12 = 14 bytes per parameter (the ZeRO accounting of Rajbhandari et al.
2020, section 3.1, without the gradients).
"""

from __future__ import annotations

import math

__all__ = ["young_interval_s", "daly_interval_s", "checkpoint_bytes", "CHECKPOINT_BYTES_PER_PARAM"]

#: bf16 weights (2) + fp32 master weights, Adam first and second moments (4 + 4 + 4).
CHECKPOINT_BYTES_PER_PARAM = 14


def young_interval_s(write_s: float, mtbf_s: float) -> float:
    """Young's first-order optimum compute time between checkpoints, seconds."""
    return math.sqrt(2.0 * write_s * mtbf_s)


def daly_interval_s(write_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum compute time between checkpoints, seconds.

    Parameters
    ----------
    write_s : float
        Checkpoint write time delta, s (> 0).
    mtbf_s : float
        Mean time between job interruptions M, s (> 0; ``inf``: no failures, no checkpoint
        needed, returns ``inf``).
    """
    if math.isinf(mtbf_s):
        return math.inf
    if write_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = write_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * write_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - write_s


def checkpoint_bytes(params: float, bytes_per_param: float = CHECKPOINT_BYTES_PER_PARAM) -> float:
    """Bytes of one checkpoint of a model of ``params`` parameters."""
    return float(params) * bytes_per_param
