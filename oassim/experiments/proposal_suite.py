"""OAS-Bench 2.0: the suite run on supernode proposals (docs/oas-bench.md).

What is defined: the collective microbenchmarks (the OAS-Bench 1.0 :class:`CollectiveBench`, run
on each proposal's own cluster) and the training workloads, each with the bounded set of parallel
layouts the search of :mod:`oassim.experiments.layout_search` may choose from. Why a candidate
set rather than a free search: each candidate is one full simulation of an optimizer step at
16,384 accelerators (20-60 s on the analytical network), and a committee needs a set it can
publish and rerun; the set holds each workload's published layout and its neighbours one factor
of two away, so a proposal whose domain or bandwidth favours another split can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from oassim.experiments.oasbench import CollectiveBench, SuiteDefinition, Workload, pick_profile

__all__ = ["PROPOSAL_SUITE_VERSION", "ProposalWorkload", "ProposalSuite", "PROPOSAL_SUITES", "get_proposal_suite"]

_MiB = 1 << 20
_LLAMA3 = "Llama Team 2024, arXiv:2407.21783, §3.3.2 and Table 4"
_DSV3 = "DeepSeek-AI 2024, arXiv:2412.19437, §3.1-3.3 (PP 16, EP 64, ZeRO-1, FP8), §4.2"


PROPOSAL_SUITE_VERSION = "oas-bench-2.0"


@dataclass(frozen=True)
class ProposalWorkload(Workload):
    """One training workload of OAS-Bench 2.0 and the layouts its search may choose from.

    Parameters
    ----------
    name, model : str
        Report label and workload preset.
    accelerators : int
        Job size (the proposal's cluster is at least this large).
    seq_len, global_batch, micro_batch : int
    precisions : tuple of str
        Precisions in order of preference: the first the (pacing) accelerator has a peak
        figure for is used (DeepSeek-V3 trains in FP8; a chip without FP8 runs BF16, reported).
    recompute : str
    layouts : tuple of mapping
        The bounded candidate set: ``tp``, ``pp`` and (MoE) ``ep``; ``dp`` is derived as
        ``accelerators / (tp x pp)`` and the stage split is chosen by
        :func:`oassim.experiments.layout_search.expand`.
    fixed : mapping
        Parallelism keys common to every candidate (``sp``, ``zero``, ``ep_comm_overlap``).
    source : str
    """

    precisions: tuple[str, ...]
    recompute: str
    layouts: tuple[Mapping[str, int], ...]
    fixed: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class ProposalSuite(SuiteDefinition):
    """OAS-Bench 2.0 on proposals: collectives on each proposal's cluster, training in its best layout."""

    name: str
    profile: str
    collectives: CollectiveBench
    training: tuple[ProposalWorkload, ...]
    network: str = "analytical"
    seed: int = 0
    #: Goodput campaign of each workload's best layout (:mod:`oassim.experiments.reliability`):
    #: days and seeded samples (the mean's 95% interval is reported beside it).
    goodput_days: float = 30.0
    goodput_samples: int = 20


_DENSE_FIXED = {"cp": 1, "ep": 1, "vpp": 1, "sp": True, "zero": 1}
_MOE_FIXED = {"cp": 1, "vpp": 1, "sp": False, "zero": 1, "ep_comm_overlap": True}

PROPOSAL_FULL = ProposalSuite(
    name=PROPOSAL_SUITE_VERSION,
    profile="full",
    collectives=CollectiveBench(ops=("all_reduce", "all_gather", "all_to_all"),
                                sizes=(_MiB, 64 * _MiB, 1024 * _MiB), scales=("domain", 1024, 8192, 16384)),
    training=(
        # Llama 3's own 16K layout [TP 8, PP 16] and its neighbours one factor of 2 away.
        ProposalWorkload("llama3-405b", "llama3-405b", 16384, 8192, 2048, 1, ("bf16",), "none",
                         ({"tp": 8, "pp": 16}, {"tp": 8, "pp": 8}, {"tp": 4, "pp": 16}, {"tp": 16, "pp": 8}),
                         _DENSE_FIXED, f"{_LLAMA3} (16K GPUs: TP 8, PP 16, DP 128) and its neighbours"),
        # DeepSeek-V3's layout [PP 16, EP 64] and EP 8, an expert group that tiles every example's
        # domain (72, 384, 4,096 ...), where 64 does not tile 72.
        ProposalWorkload("deepseek-v3", "deepseek-v3", 16384, 4096, 15360, 1, ("fp8", "bf16"), "full",
                         ({"tp": 1, "pp": 16, "ep": 64}, {"tp": 1, "pp": 16, "ep": 8}),
                         _MOE_FIXED, f"{_DSV3} and EP 8"),
    ),
)

PROPOSAL_QUICK = ProposalSuite(
    name=f"{PROPOSAL_SUITE_VERSION}-quick",
    profile="quick",
    collectives=CollectiveBench(ops=("all_reduce", "all_gather", "all_to_all"), sizes=(_MiB, 64 * _MiB),
                                scales=("domain", 256), all_to_all_max_ranks=256),
    goodput_samples=4,
    training=(
        ProposalWorkload("llama3-70b", "llama3-70b", 256, 8192, 64, 1, ("bf16",), "none",
                         ({"tp": 8, "pp": 4}, {"tp": 4, "pp": 8}), _DENSE_FIXED,
                         f"{_LLAMA3} (quick profile: 256 accelerators)"),
        ProposalWorkload("mixtral-8x7b", "mixtral-8x7b", 256, 4096, 256, 1, ("fp8", "bf16"), "full",
                         ({"tp": 1, "pp": 4, "ep": 8}, {"tp": 2, "pp": 4, "ep": 8}), _MOE_FIXED,
                         "Mixtral 8x7B (Jiang et al. 2024, arXiv:2401.04088); quick profile MoE"),
    ),
)

#: OAS-Bench 2.0 profiles: ``full`` is the suite; ``quick`` a smoke profile (smaller clusters), not comparable.
PROPOSAL_SUITES: dict[str, ProposalSuite] = {"full": PROPOSAL_FULL, "quick": PROPOSAL_QUICK}


def get_proposal_suite(name: str | ProposalSuite) -> ProposalSuite:
    """A proposal suite by profile name (``"full"``, ``"quick"``) or the suite itself."""
    return pick_profile(name, PROPOSAL_SUITES, "OAS-Bench 2.0")
