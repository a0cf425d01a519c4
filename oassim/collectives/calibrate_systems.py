"""Published all-reduce figures beyond one 8-GPU curve: NVLS group sizes, NVLink 5, RDMA NICs.

What is checked. Rows of ``oassim/data/calibration/collectives.csv`` from NVIDIA's GTC slides
(calibration source S21) and from NCCL / nccl-tests issues (S22), each costed by the engine on a
cluster that matches the row's system: GPU count and NVLink generation, NVLS on or off (the
algorithm the row states: ``in_network`` for NVLS, ``ring`` for NVLS off), and the NIC count
and rate for multi-node rows (DGX H100: 8 x 400G NDR; DGX A100: 8 x 200G HDR; one NIC per
GPU, rail groups for the per-NIC RDMA figures). Blackwell 8-GPU rows (B200, B300) run on 8
GPUs of one NVL72 rack: the same NVLink 5 ports and NVSwitch gen4 chips. Rows that give no
size are costed at 8 GiB (the slides' "peak" is the large-message plateau).

Which rows are held. :data:`SYSTEM_ROWS` marks each row ``held`` (within the tolerance of
the test), or gives the reason it is printed only: the source reports the system as
underperforming or untuned (nccl#2409, nccl#1031, nccl#1244), or no preset matches it.

Two hardware parameters are fitted here with leave-one-out (:func:`leave_one_out`), because
they belong to a part, not to a run:

- ``nvswitch-gen4`` reduction / multicast rate (``in_network_switches`` of the tuning file):
  the switch-bound NVLS rows of NVLink 5 (B200, B300, GB200 NVL72) give it directly, since
  their busbw is the rate less the launch share;
- the RDMA NIC achievable fraction (``link_efficiency`` of IB / RoCE): per-NIC busbw over
  the port's payload rate on the rail-group rows.

Each is refitted on all rows but one and checked on the one left out.

Expert-parallel all-to-all (calibration source S24, DeepEP). Each row runs as an even
all-to-all of its EP ranks (``auto``) at the kernels' logical bytes per GPU, compared in the
row's own metric: V1's RDMA "bottleneck bandwidth" is the bytes a GPU sends out of its node per
second (``rdma``), V2's "logical bandwidth incl. local-rank traffic" all its bytes per second
(``algbw``). Rows are printed not held where the figure cannot be a link rate (above the
NIC's line rate), where the GPU, not the fabric, limits the kernel (minimum-SM runs), where
no preset matches (H800 NVLink) and for the latency-bound low-latency kernels.

:data:`SYSTEM_ROWS` is keyed by row id; :data:`ROW_FILTERS` holds, per op, the predicates
that pick which CSV rows a calibration covers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from oassim.collectives.engine import CollectiveEngine
from oassim.collectives.groups import make_groups
from oassim.collectives.ops import CollectiveRequest, busbw_factor, format_size
from oassim.collectives.tuning import Tuning, load_tuning
from oassim.data import calibration_csv

__all__ = ["SystemRow", "SYSTEM_ROWS", "ROW_FILTERS", "SystemCheck", "check_rows", "leave_one_out",
           "system_table"]

GiB = 2**30


@dataclass(frozen=True)
class SystemRow:
    """How one published row is reproduced: cluster preset and size, ranks, group split,
    algorithm, message size (bytes; None: the CSV's), and whether it is held to tolerance."""

    preset: str
    accelerators: int
    ranks: int
    algorithm: str
    groups: str | None = None
    size_bytes: int | None = None
    op: str = "all_reduce"
    held: bool = True
    why_not: str = ""
    metric: str = "busbw"  # busbw (nccl-tests), algbw (bytes / time), rdma (cross-domain bytes / time)


_H = "dgx-h100-superpod"
_A = "dgx-a100-superpod"
_G = "gb200-nvl72"
_NVLS8 = SystemRow(_H, 8, 8, "in_network")
_RING8 = SystemRow(_H, 8, 8, "ring")

#: published rows and the cluster that matches each (see module docstring)
SYSTEM_ROWS: dict[str, SystemRow] = {
    # H100 / H200, NVLink 4 + NVSwitch gen3: NVLS on 5..8 GPUs (link-bound), ring
    "C0209": _NVLS8, "C0219": _NVLS8, "C0228": _NVLS8, "C0237": _NVLS8, "C0241": _NVLS8,
    "C0230": _NVLS8, "C0234": SystemRow(_H, 8, 8, "in_network", size_bytes=4 * GiB),
    "C0231": SystemRow(_H, 8, 5, "in_network", size_bytes=4 * GiB),
    "C0232": SystemRow(_H, 8, 6, "in_network", size_bytes=4 * GiB),
    "C0233": SystemRow(_H, 8, 7, "in_network", size_bytes=4 * GiB),
    "C0208": _RING8, "C0218": _RING8, "C0229": _RING8, "C0236": _RING8,
    "C0235": SystemRow(_H, 8, 8, "ring", size_bytes=4 * GiB),
    # NVLink 5 + NVSwitch gen4: 8 GPUs (B200/B300) and a whole NVL72 rack
    "C0221": SystemRow(_G, 72, 8, "in_network"), "C0239": SystemRow(_G, 72, 8, "in_network"),
    "C0242": SystemRow(_G, 72, 8, "in_network"), "C0227": SystemRow(_G, 72, 72, "in_network"),
    "C0220": SystemRow(_G, 72, 8, "ring"), "C0238": SystemRow(_G, 72, 8, "ring"),
    "C0226": SystemRow(_G, 72, 72, "ring"),
    # RDMA NICs: per-NIC busbw on rail groups (one GPU per node per group)
    "C0212": SystemRow(_H, 16, 16, "ring", groups="rail"),
    "C0211": SystemRow(_A, 16, 16, "ring", groups="rail"),
    # multi-node DGX (NVLink + 8 NICs per node), NVLS/SHARP off
    "C0214": SystemRow(_H, 32, 32, "rail_rings"),
    "C0224": SystemRow(_H, 32, 32, "rail_rings"),
    "C0213": SystemRow(_A, 32, 32, "rail_rings"),
    "C0223": SystemRow(_A, 32, 32, "rail_rings"),
    "C0243": SystemRow(_A, 32, 32, "rail_rings"),
    # printed, not held
    "C0215": SystemRow(_H, 32, 32, "auto", held=False,
                       why_not="IB SHARP (CollNet) across nodes: the preset's Quantum-2 has no SHARP flag"),
    "C0225": SystemRow(_H, 32, 32, "auto", held=False,
                       why_not="IB SHARP (CollNet) across nodes: the preset's Quantum-2 has no SHARP flag"),
    "C0245": SystemRow(_H, 32, 32, "auto", held=False, why_not="nccl#1031: possibly untuned"),
    "C0246": SystemRow(_H, 16, 16, "auto", held=False, why_not="nccl#2409: reported underperforming"),
    **{f"C0{i}": SystemRow(_H, 16, 16, "auto", held=False, why_not="nccl#1244: H20, below expectation")
       for i in range(315, 325)},
}

# Expert-parallel all-to-all, DeepEP (calibration source S24): even token routing is assumed
# (every EP rank sends as much to every other), sizes are the kernels' logical bytes per GPU:
# tokens x hidden 7168 x top-8 experts, FP8 dispatch (1 byte) and BF16 combine (2 bytes).
# H800 nodes run on DGX H100 nodes (the same 400G CX7 NIC per GPU; the rows are NIC-bound).
_V1, _V2 = 4096 * 7168 * 8, 8192 * 7168 * 8
_B = "dgx-b200"
_LOGICAL = ("DeepEP's 'bottleneck bandwidth' exceeds the 50 GB/s line rate of one CX7 400G: it counts "
            "logical bytes, not what the NIC carries")
SYSTEM_ROWS.update({
    # V1 normal kernels, RDMA bottleneck bandwidth: cross-node bytes per GPU / time
    "C0283": SystemRow(_H, 16, 16, "auto", size_bytes=_V1, op="all_to_all", metric="rdma"),
    "C0284": SystemRow(_H, 16, 16, "auto", size_bytes=2 * _V1, op="all_to_all", metric="rdma"),
    "C0285": SystemRow(_H, 32, 32, "auto", size_bytes=_V1, op="all_to_all", metric="rdma", held=False,
                       why_not=_LOGICAL),
    "C0286": SystemRow(_H, 32, 32, "auto", size_bytes=2 * _V1, op="all_to_all", metric="rdma", held=False,
                       why_not=_LOGICAL),
    "C0287": SystemRow(_H, 64, 64, "auto", size_bytes=_V1, op="all_to_all", metric="rdma", held=False,
                       why_not=_LOGICAL),
    "C0288": SystemRow(_H, 64, 64, "auto", size_bytes=2 * _V1, op="all_to_all", metric="rdma"),
    "C0281": SystemRow(_H, 8, 8, "auto", size_bytes=_V1, op="all_to_all", metric="algbw", held=False,
                       why_not="H800 NVLink (8 links, ~160 GB/s) has no preset; H100's 18 links run faster"),
    "C0282": SystemRow(_H, 8, 8, "auto", size_bytes=2 * _V1, op="all_to_all", metric="algbw", held=False,
                       why_not="H800 NVLink (8 links, ~160 GB/s) has no preset; H100's 18 links run faster"),
    # V2: 'logical bandwidth incl. local-rank traffic' = all bytes per GPU / time
    "C0301": SystemRow(_H, 16, 16, "auto", size_bytes=_V2, op="all_to_all", metric="algbw"),
    "C0302": SystemRow(_H, 16, 16, "auto", size_bytes=2 * _V2, op="all_to_all", metric="algbw", held=False,
                       why_not="SM90 combine on 12 SMs is GPU-bound: SM100 with the same NIC reaches 91 (C0306)"),
    "C0303": SystemRow(_H, 32, 32, "auto", size_bytes=_V2, op="all_to_all", metric="algbw"),
    "C0304": SystemRow(_H, 32, 32, "auto", size_bytes=2 * _V2, op="all_to_all", metric="algbw"),
    "C0305": SystemRow(_B, 16, 16, "auto", size_bytes=_V2, op="all_to_all", metric="algbw"),
    "C0306": SystemRow(_B, 16, 16, "auto", size_bytes=2 * _V2, op="all_to_all", metric="algbw"),
    "C0307": SystemRow(_B, 8, 8, "auto", size_bytes=_V2, op="all_to_all", metric="algbw"),
    "C0308": SystemRow(_B, 8, 8, "auto", size_bytes=2 * _V2, op="all_to_all", metric="algbw"),
    "C0309": SystemRow(_B, 8, 8, "auto", size_bytes=_V2, op="all_to_all", metric="algbw", held=False,
                       why_not="run on the minimum 24 SMs: SM-bound, not link-bound"),
    "C0310": SystemRow(_B, 8, 8, "auto", size_bytes=2 * _V2, op="all_to_all", metric="algbw", held=False,
                       why_not="run on the minimum 24 SMs: SM-bound, not link-bound"),
    **{f"C0{i}": SystemRow(_H, 8 * max(1, (8 << ((i - 289) // 2)) // 8), 8 << ((i - 289) // 2), "auto",
                           size_bytes=(128 * 7168 * 8) << ((i - 289) % 2), op="all_to_all", metric="rdma",
                           held=False, why_not="low-latency kernels (pure RDMA, IBGDA per token): "
                           "latency-bound sends the engine's collective model does not describe")
       for i in range(289, 301)},
})

#: per op, predicates on a CSV record that select the rows a calibration covers
ROW_FILTERS: dict[str, list[Callable[[dict[str, str]], bool]]] = {
    "all_reduce": [lambda r: r["source_id"] in ("S21", "S22") and r["row_id"] in SYSTEM_ROWS],
    "all_to_all": [lambda r: r["source_id"] == "S24" and r["row_id"] in SYSTEM_ROWS],
}


@dataclass(frozen=True)
class SystemCheck:
    """One row: measured and predicted busbw (GB/s), role (held / not held) and reason."""

    row_id: str
    system: str
    op: str
    size_bytes: int
    measured_GBps: float
    predicted_GBps: float
    algorithm: str
    held: bool
    why_not: str = ""

    @property
    def error(self) -> float:
        return self.predicted_GBps / self.measured_GBps - 1.0


def _number(text: str) -> float:
    """The first figure of a CSV busbw cell ('830+', '~101', '96 (peak); ...'; a range
    '365-370' gives its middle)."""
    tok = text.replace("~", "").replace("+", " ").split()[0]
    lo, _, hi = tok.partition("-")
    return (float(lo) + float(hi)) / 2 if hi else float(lo)


def _records(path: str | Path | None = None) -> list[dict[str, str]]:
    p = Path(path) if path is not None else calibration_csv("collectives")
    with open(p, newline="", encoding="utf-8") as fh:
        recs = list(csv.DictReader(fh))
    return [r for r in recs if any(f(r) for fs in ROW_FILTERS.values() for f in fs)]


@lru_cache(maxsize=None)
def _fabric(preset: str, accelerators: int):
    from oassim.topology.cluster import build_fabric

    return build_fabric(preset, accelerators)


def predict_row(spec: SystemRow, size: float, tuning: Tuning) -> tuple[float, str]:
    """Predicted figure of the row's metric (GB/s; busbw unless ``spec.metric`` says otherwise)
    and the algorithm used for one row's setup."""
    e = CollectiveEngine(_fabric(spec.preset, spec.accelerators), "analytical", tuning)
    groups = make_groups(e.caps, spec.ranks, spec.groups)
    res = e.run(CollectiveRequest(spec.op, size, groups, spec.algorithm), memo=False)
    n = groups.shape[1]
    if spec.metric == "algbw":
        return size / res.time_s / 1e9, res.algorithm
    if spec.metric == "rdma":  # bytes each rank sends out of its domain, even traffic
        dom = e.caps.domain_of_rank[groups[0]]
        away = float(np.mean([(dom != d).sum() for d in dom])) / n
        return size * away / res.time_s / 1e9, res.algorithm
    return size * busbw_factor(spec.op, n) / res.time_s / 1e9, res.algorithm


def check_rows(tuning: Tuning | None = None, path: str | Path | None = None) -> list[SystemCheck]:
    """Every selected row, predicted with ``tuning`` (default: the tuning file's default)."""
    t = tuning if tuning is not None else load_tuning()
    out = []
    for r in _records(path):
        spec = SYSTEM_ROWS[r["row_id"]]
        size = spec.size_bytes or (int(float(r["msg_size_bytes"])) if r["msg_size_bytes"] else 8 * GiB)
        bus, algo = predict_row(spec, size, t)
        out.append(SystemCheck(r["row_id"], f"{r['hardware']} {r['system']}"[:40], spec.op, size,
                               _number(r["busbw_GBps"]), bus, algo, spec.held, spec.why_not))
    return out


def _with(t: Tuning, **changes) -> Tuning:
    from dataclasses import replace

    return replace(t, **changes)


def leave_one_out(tuning: Tuning | None = None, path: str | Path | None = None) -> list[tuple[str, str, float, float]]:
    """Refit the NVSwitch gen4 rate and the RDMA NIC fraction without each of their rows and
    predict that row: (parameter, row id, value fitted without it, error on it)."""
    t = tuning if tuning is not None else load_tuning()
    recs = {r["row_id"]: r for r in _records(path)}
    out = []
    # switch-bound rows: predicted busbw scales as the rate; fit = rate x measured / predicted
    nvls = [i for i in ("C0221", "C0227", "C0239", "C0242") if i in recs]
    ratios = {}
    for i in nvls:
        bus, _ = predict_row(SYSTEM_ROWS[i], 8 * GiB, t)
        ratios[i] = _number(recs[i]["busbw_GBps"]) / bus
    rate = t.switch_rate.get("nvswitch-gen4")
    for i in nvls:
        if rate is None:
            break
        fitted = rate * float(np.mean([ratios[j] for j in nvls if j != i]))
        tt = _with(t, switch_rate={**t.switch_rate, "nvswitch-gen4": fitted})
        bus, _ = predict_row(SYSTEM_ROWS[i], 8 * GiB, tt)
        out.append(("nvswitch-gen4 rate_GBps", i, fitted / 1e9, bus / _number(recs[i]["busbw_GBps"]) - 1))
    # NIC-bound rows: predicted busbw scales as the NIC fraction
    nic = [i for i in ("C0211", "C0212") if i in recs]
    techs = ("ib-hdr", "ib-ndr")
    eta = t.link_efficiency.get("ib-ndr", t.default_link_efficiency)
    nr = {}
    for i in nic:
        bus, _ = predict_row(SYSTEM_ROWS[i], 8 * GiB, t)
        nr[i] = _number(recs[i]["busbw_GBps"]) / bus
    for i in nic:
        fitted = min(1.0, eta * float(np.mean([nr[j] for j in nic if j != i])))
        tt = _with(t, link_efficiency={**t.link_efficiency, **{k: fitted for k in techs}})
        bus, _ = predict_row(SYSTEM_ROWS[i], 8 * GiB, tt)
        out.append(("RDMA NIC fraction", i, fitted, bus / _number(recs[i]["busbw_GBps"]) - 1))
    return out


def system_table(checks: list[SystemCheck]) -> str:
    """Per-row text table: row, system, op, size, measured, predicted, error, held or why not."""
    lines = [f"{'row':<6} {'system':<40} {'op':<10} {'size':>5} {'algorithm':<28} {'measured':>8} "
             f"{'model':>8} {'error':>7}  role"]
    for c in checks:
        role = "check" if c.held else f"not held: {c.why_not}"
        lines.append(f"{c.row_id:<6} {c.system:<40} {c.op:<10} {format_size(c.size_bytes):>5} {c.algorithm:<28} "
                     f"{c.measured_GBps:>8.1f} {c.predicted_GBps:>8.1f} {c.error * 100:>+6.1f}%  {role}")
    worst = max((abs(c.error) for c in checks if c.held), default=0.0)
    lines.append(f"worst held error: {worst * 100:.1f}%   (busbw GB/s)")
    return "\n".join(lines)
