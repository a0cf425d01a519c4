"""Plan compiler: a training job turned into per-stage op lists, collectives and a schedule.

What is modelled: one optimizer step of a Megatron-style job on a representative rank of
every pipeline stage (docs/architecture.md decision 7: all data-parallel replicas behave alike): for
each model chunk (virtual stage) the ordered forward and backward steps of one micro-batch
(compute ops with durations from :mod:`oassim.workload.compute`, collective calls as data),
the pipeline order of F/B steps (:data:`oassim.workload.schedules.SCHEDULES`), the
data-parallel gradient buckets and ZeRO parameter gathers, the optimizer step, FLOP counts
for MFU/HFU and the memory footprint.

Why: ``compile_plan(...) -> Plan`` (frozen) is the whole interface to the scheduler
(docs/architecture.md, conventions "lifecycles are data"): it replays the lists, yields one timeout per compute op and
asks the collective engine for each :class:`~oassim.workload.steps.CollectiveCall`.

Replay contract (what the scheduler must honour; the lists do not repeat it):

- run ``StagePlan.schedule`` in order; a step ``F mb c`` runs ``chunks[c].forward``, a step
  ``B mb c`` runs ``chunks[c].backward`` (``backward_last`` for the last micro-batch,
  ``mb == n_microbatches - 1``: it carries the overlapped data-parallel gradient buckets of
  ZeRO 0/1; without overlap they head the optimizer list, after the pipeline flush);
- pipeline dependencies with ``vs = chunk * pp + stage``: F(vs, mb) waits for the trailing
  ``send_recv`` of F(vs - 1, mb); B(vs, mb) waits for that of B(vs + 1, mb);
- a blocking call (``overlappable=False``) holds the compute stream until it completes; an
  overlappable one runs on a communication stream and must complete before any op naming its
  ``where`` in ``after`` (within the same list, same micro-batch);
- after the last schedule step, run ``StagePlan.optimizer`` (its first op waits for every
  gradient reduction of the stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from oassim.errors import SpecError
from oassim.hardware import Accelerator, load_catalog
from oassim.specio import validate
from oassim.workload.compute import ComputeModel, EfficiencyFile, load_efficiency
from oassim.workload.memory import MemoryBreakdown, check_memory, chunk_layers, stage_memory
from oassim.workload.model import ModelSpec, resolve_model
from oassim.workload.hetero import AcceleratorMix, PacedComputeModel, stage_types
from oassim.workload.gradsync import GradBuckets, optimizer_steps, segment_label, with_param_gathers
from oassim.workload.ops import LayerContext, embedding_steps, layer_steps, logits_steps, mtp_steps
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec, check_job, n_microbatches
from oassim.workload.placement import Placement, place
from oassim.workload.schedules import SCHEDULES
from oassim.workload.steps import CollectiveCall, ComputeOp, ScheduleStep, Step, copied

__all__ = ["Plan", "StagePlan", "ChunkPlan", "FlopCounts", "compile_plan", "compute_seconds"]


def compute_seconds(steps: tuple[Step, ...]) -> float:
    """Sum of the compute-op durations of ``steps``, s (collectives excluded)."""
    return sum(s.duration_s for s in steps if isinstance(s, ComputeOp))


@dataclass(frozen=True)
class ChunkPlan:
    """One model chunk (virtual stage) of one pipeline stage: its steps for one micro-batch.

    Attributes
    ----------
    stage, chunk, virtual_stage : int
        Pipeline stage, chunk on it (0 .. vpp-1) and ``chunk * pp + stage``.
    layers : tuple of int
        Global layers of the chunk (``sum`` over all chunks of ``len(layers)`` == layers).
    forward, backward, backward_last : tuple of Step
        Forward steps; backward steps (recomputation first when enabled); backward of the last
        micro-batch, with the overlapped data-parallel gradient buckets placed after the layer
        that completes each bucket (identical to ``backward`` for ZeRO 2/3, which reduce every
        micro-batch, and for blocking ZeRO 0/1 reductions, which the stage's optimizer list
        runs after the pipeline flush).
    """

    stage: int
    chunk: int
    virtual_stage: int
    layers: tuple[int, ...]
    forward: tuple[Step, ...]
    backward: tuple[Step, ...]
    backward_last: tuple[Step, ...]

    @property
    def forward_s(self) -> float:
        """Compute time of one forward, s."""
        return compute_seconds(self.forward)

    @property
    def backward_s(self) -> float:
        """Compute time of one backward (recomputation included), s."""
        return compute_seconds(self.backward)


@dataclass(frozen=True, eq=False)
class StagePlan:
    """Everything one rank of pipeline stage ``stage`` runs in one iteration.

    Attributes
    ----------
    stage : int
    ranks : ndarray of int64, shape (tp * cp * dp,)
        Accelerator ranks of the stage (all behave like the representative).
    chunks : tuple of ChunkPlan
        ``vpp`` chunks.
    schedule : tuple of ScheduleStep
        Pipeline order of F/B steps.
    optimizer : tuple of Step
        After the schedule: tied-embedding gradient all-reduce, optimizer step, ZeRO 1/2
        parameter all-gather (overlappable: hidden behind the next iteration's forward).
    memory : MemoryBreakdown
    """

    stage: int
    ranks: np.ndarray
    chunks: tuple[ChunkPlan, ...]
    schedule: tuple[ScheduleStep, ...]
    optimizer: tuple[Step, ...]
    memory: MemoryBreakdown

    @property
    def compute_s(self) -> float:
        """Compute time of the stage over the iteration (no communication, no bubble), s."""
        t = 0.0
        for st in self.schedule:
            c = self.chunks[st.chunk]
            t += c.forward_s if st.kind == "F" else c.backward_s
        return t + compute_seconds(self.optimizer)


@dataclass(frozen=True)
class FlopCounts:
    """FLOPs of one iteration, summed over all accelerators.

    Attributes
    ----------
    model : float
        docs/architecture.md model FLOPs: ``(6 N_nonembedding_active + 12 l h s) * tokens`` (MFU).
    hardware : float
        ``model`` plus the recomputed FLOPs (HFU).
    megatron : float
        Every matmul executed, logits and recomputation included: the count of Narayanan et
        al. 2021 eq. 3 (96 B s l h^2 (1 + s/6h + V/16lh) for GPT with full recomputation),
        which the S01 calibration rows' TFLOP/s use.
    recomputed : float
        Recomputed FLOPs alone.
    """

    model: float
    hardware: float
    megatron: float
    recomputed: float


@dataclass(frozen=True, eq=False)
class Plan:
    """A compiled training job (frozen). Field by field in the report of issue 4.

    Attributes
    ----------
    model : ModelSpec
    parallelism : ParallelismSpec
    training : TrainingSpec
    accelerator : str
        Accelerator preset name.
    framework : str
        Framework generation (attention kernel, overlap defaults).
    efficiency : str
        Entry of ``compute_efficiency.yaml`` used; ``calibrated`` False for ``default``.
    n_accelerators, seq_len, n_microbatches, tokens_per_iteration : int
    peak_flops : float
        Dense peak per accelerator at the run's precision, FLOP/s (MFU denominator).
    overlap : mapping of str to bool
        Resolved overlap switches.
    stages : tuple of StagePlan
    placement : Placement
    flops : FlopCounts
    straddling : mapping of str to int
        Groups per dimension spanning more than one scale-up domain.
    stage_accelerators : tuple of str
        Accelerator type(s) of each pipeline stage's ranks (``"a+b"`` when a stage mixes types;
        :mod:`oassim.workload.hetero`); every stage ``accelerator`` without a mix.
    """

    model: ModelSpec
    parallelism: ParallelismSpec
    training: TrainingSpec
    accelerator: str
    framework: str
    efficiency: str
    calibrated: bool
    n_accelerators: int
    seq_len: int
    n_microbatches: int
    tokens_per_iteration: int
    peak_flops: float
    overlap: Mapping[str, bool]
    stages: tuple[StagePlan, ...]
    placement: Placement
    flops: FlopCounts
    straddling: Mapping[str, int]
    stage_accelerators: tuple[str, ...] = ()

    @property
    def stage_layers(self) -> tuple[int, ...]:
        """Decoder layers of each pipeline stage (all its chunks)."""
        return tuple(sum(len(c.layers) for c in st.chunks) for st in self.stages)

    @property
    def memory(self) -> MemoryBreakdown:
        """The stage with the largest footprint."""
        return max((s.memory for s in self.stages), key=lambda m: m.total)

    @property
    def compute_only_s(self) -> float:
        """Slowest stage's compute time: a lower bound on the iteration time, s."""
        return max(s.compute_s for s in self.stages)

    def mfu(self, iteration_s: float) -> float:
        """Model FLOPs utilisation for an iteration of ``iteration_s`` seconds."""
        return self.flops.model / (iteration_s * self.n_accelerators * self.peak_flops)

    def hfu(self, iteration_s: float) -> float:
        """Hardware FLOPs utilisation (recomputation counted)."""
        return self.flops.hardware / (iteration_s * self.n_accelerators * self.peak_flops)


def _resolve_accelerator(value: str | Accelerator) -> Accelerator:
    return value if isinstance(value, Accelerator) else load_catalog().accelerator(value)


def compile_plan(model: str | Mapping[str, Any] | ModelSpec, parallelism: ParallelismSpec | Mapping[str, Any],
                 accelerator: str | Accelerator, fabric: Any = None, *, training: TrainingSpec | Mapping[str, Any],
                 accelerators: int | None = None, efficiency_file: str | EfficiencyFile | None = None,
                 memory_check: bool = True, mix: AcceleratorMix | None = None) -> Plan:
    """Compile one training iteration into a :class:`Plan`.

    Parameters
    ----------
    model : str, mapping or ModelSpec
        Preset name in ``workloads/``, inline mapping, or spec.
    parallelism : ParallelismSpec or mapping
    accelerator : str or Accelerator
        Hardware preset name (``"a100-sxm"``) or model.
    fabric : Fabric, optional
        The cluster (``oassim.topology.cluster.build_fabric``): scale-up domain of every rank
        for placement checks. None skips them (compute and memory studies).
    training : TrainingSpec or mapping
        Sequence length, batches, precision, recomputation, framework.
    accelerators : int, optional
        Accelerators of the job; default ``fabric.n_accelerators`` (or the product of the
        parallel sizes without a fabric). ``tp*pp*dp*cp`` must equal it.
    efficiency_file : str or EfficiencyFile, optional
        Another ``compute_efficiency.yaml``, or its content (what a calibration varies).
    memory_check : bool
        Refuse a job that does not fit in HBM.
    mix : AcceleratorMix, optional
        The type of every accelerator rank of a mixed cluster: each stage's compute ops take the
        time of its slowest member type, its memory is checked against its smallest HBM, and
        MFU is taken against the mean peak of the job's ranks (:mod:`oassim.workload.hetero`).
        ``accelerator`` is then only a default for names.

    Raises
    ------
    SpecError
        Invalid combination (one sentence naming the key), a straddling group, or a job that
        does not fit in memory (the sentence carries the breakdown).
    """
    m = resolve_model(model)
    par = parallelism if isinstance(parallelism, ParallelismSpec) else validate(
        ParallelismSpec, parallelism, prefix="parallelism")
    train = training if isinstance(training, TrainingSpec) else validate(
        TrainingSpec, training, prefix="workload")
    acc = _resolve_accelerator(accelerator)
    if accelerators is None:
        accelerators = fabric.n_accelerators if fabric is not None else par.world
    check_job(m, par, train, accelerators)
    if par.ep_placement == "domain":  # the job may leave accelerators of the cluster idle
        accelerators = par.world
    eff_file = efficiency_file if isinstance(efficiency_file, EfficiencyFile) else load_efficiency(efficiency_file)
    eff, eff_key = eff_file.for_accelerator(acc.name)
    fw_name = train.framework or eff.default_framework
    fw = eff_file.framework(fw_name)
    if fw.attention_kernel == "unfused" and par.cp > 1:
        raise SpecError(f"cp {par.cp} needs a fused attention kernel; framework '{fw_name}' has none",
                        path="parallelism.cp")
    overlap = {k: (getattr(par, k) if getattr(par, k, None) is not None else getattr(fw, k))
               for k in ("overlap_grad_reduce", "overlap_param_gather", "tp_comm_overlap",
                         "ep_comm_overlap", "overlap_p2p")}
    overlap["tp_bwd_overlap"] = fw.tp_bwd_overlap
    cm = ComputeModel(acc, eff, fw, train.precision, par.tp if par.sequence_parallel else 1)
    try:
        peak = acc.peak_flops(train.precision)
    except SpecError as exc:
        raise SpecError(exc.message, path="workload.precision") from None
    dom = dsize = None
    if fabric is not None:
        dom = fabric.node_domain[fabric.accel_node]
        dsize = fabric.routing.get("domain_size")
    pl = place(par, dom, dsize)
    s = train.resolved_seq_len(m)
    n_micro = n_microbatches(par, train)
    on_stage = [(cm, acc)] * par.pp
    names = [acc.name] * par.pp
    calibrated = eff.is_calibrated(train.precision)
    if mix is not None:
        on_stage, names, peak, eff_key, calibrated, acc_name = _mixed_stages(mix, pl, par, train, eff_file, fw)
    else:
        acc_name = acc.name
    stages = tuple(_compile_stage(m, par, train, fw.attention_kernel, overlap, *on_stage[st], pl, st, n_micro, s)
                   for st in range(par.pp))
    if memory_check and mix is None:
        check_memory(tuple(x.memory for x in stages), acc.name)
    elif memory_check:  # each stage against its own chips' HBM
        for x, (_, a) in zip(stages, on_stage):
            check_memory((x.memory,), a.name)
    tokens = train.global_batch * s
    per_rank = par.tp * par.dp * par.cp
    executed = recomputed = 0.0
    for sp_ in stages:
        for c in sp_.chunks:
            for steps in (c.forward, c.backward):
                for x in steps:
                    if isinstance(x, ComputeOp):
                        executed += x.flops
                        recomputed += x.flops if x.recompute else 0.0
    executed *= n_micro * per_rank
    recomputed *= n_micro * per_rank
    model_flops = m.model_flops_per_token(s) * tokens
    flops = FlopCounts(model=model_flops, hardware=model_flops + recomputed, megatron=executed,
                       recomputed=recomputed)
    return Plan(model=m, parallelism=par, training=train, accelerator=acc_name, framework=fw_name,
                efficiency=eff_key, calibrated=calibrated, n_accelerators=accelerators,
                seq_len=s, n_microbatches=n_micro, tokens_per_iteration=tokens, peak_flops=peak,
                overlap=MappingProxyType(overlap), stages=stages, placement=pl, flops=flops,
                straddling=pl.straddling, stage_accelerators=tuple(names))


def _mixed_stages(mix: AcceleratorMix, pl: Placement, par: ParallelismSpec, train: TrainingSpec,
                  eff_file: EfficiencyFile, fw: Any) -> tuple[list, list[str], float, str, bool, str]:
    """Per stage (compute model, accelerator for memory) and type names; the mean peak of the
    job's ranks, the efficiency entries used, whether all are calibrated, and the job's types."""
    entries = [eff_file.for_accelerator(a.name) for a in mix.types]
    sp_tp = par.tp if par.sequence_parallel else 1
    try:
        peaks = np.array([a.peak_flops(train.precision) for a in mix.types])
    except SpecError as exc:
        raise SpecError(exc.message, path="workload.precision") from None
    models = [ComputeModel(a, e, fw, train.precision, sp_tp) for a, (e, _) in zip(mix.types, entries)]
    used = stage_types(mix, pl.stage_of_rank, par.pp)
    on_stage, names = [], []
    for ts in used:
        cm = models[ts[0]] if len(ts) == 1 else PacedComputeModel([models[t] for t in ts])
        on_stage.append((cm, cm.accelerator))  # a mixed stage's smallest HBM
        names.append("+".join(mix.types[t].name for t in ts))
    ranks = mix.of_rank[:len(pl.stage_of_rank)][pl.stage_of_rank >= 0]
    kinds = sorted({t for ts in used for t in ts})
    return (on_stage, names, float(peaks[ranks].mean()), "+".join(dict.fromkeys(entries[t][1] for t in kinds)),
            all(entries[t][0].is_calibrated(train.precision) for t in kinds),
            "+".join(mix.types[t].name for t in kinds))


def _ring_pairs(cp_groups: np.ndarray) -> np.ndarray:
    nxt = np.roll(cp_groups, -1, axis=1)
    out = np.stack([cp_groups.ravel(), nxt.ravel()], axis=1)
    out.setflags(write=False)
    return out


def _with_duration(op: ComputeOp, duration_s: float) -> ComputeOp:
    """``dataclasses.replace(op, duration_s=...)``, cheaply (:func:`~oassim.workload.steps.copied`)."""
    return copied(op, duration_s=duration_s)


def _timed(steps: list[Step], cm: ComputeModel | PacedComputeModel) -> tuple[Step, ...]:
    op_time = cm.op_time
    return tuple(_with_duration(x, op_time(x)) if type(x) is ComputeOp else x for x in steps)


def _compile_stage(m: ModelSpec, par: ParallelismSpec, train: TrainingSpec, attn: str,
                   overlap: Mapping[str, bool], cm: ComputeModel | PacedComputeModel, acc: Accelerator,
                   pl: Placement, stage: int, n_micro: int, s: int) -> StagePlan:
    groups = {k: pl.stage_groups(k, stage) for k in ("tp", "cp", "ep", "edp", "dp_cp", "ep_intra", "ep_inter")}
    groups["cp_ring"] = _ring_pairs(groups["cp"])
    zero = par.zero_stage
    gbytes = 2.0 if train.grad_precision == "bf16" else 4.0
    bucket = float(par.bucket_params or max(40e6, 1e6 * par.dp))
    n_vs = par.pp * par.vpp
    chunks: list[ChunkPlan] = []
    all_grad_calls: list[str] = []
    flushed: list[Step] = []  # blocking gradient reductions run after the pipeline flush
    tok = train.micro_batch * s // par.cp
    p2p = tok * m.hidden * 2.0 / par.tp
    for c in range(par.vpp):
        vs = c * par.pp + stage
        prefix = f"s{stage}/c{c}"
        ctx = LayerContext(model=m, b=train.micro_batch, s=s, tp=par.tp, cp=par.cp, ep=par.ep,
                           sp=par.sequence_parallel, groups=groups, attention_kernel=attn,
                           recompute=train.recompute, tp_overlap=overlap["tp_comm_overlap"],
                           tp_bwd_overlap=overlap["tp_bwd_overlap"],
                           ep_overlap=overlap["ep_comm_overlap"], prefix=prefix,
                           recompute_modules=train.recomputed_modules,
                           dispatcher=par.moe_token_dispatcher, ep_domains=int(groups["ep_inter"].shape[1]),
                           moe_max_nodes=par.moe_max_nodes, dispatch_fp8=par.moe_dispatch_precision == "fp8")
        layers = tuple(chunk_layers(m, par, stage, c))
        vocab_p = m.vocab * m.hidden / par.tp

        def seg_params(layer: int) -> tuple[float, float]:
            e = m.expert_params(layer)
            return (m.layer_params(layer) - e) / par.tp, e / (par.tp * par.ep)

        emb_p = vocab_p + (m.embedding_params(s) - m.vocab * m.hidden)
        out_p = m.norm_params + (vocab_p if (not m.is_tied or par.pp > 1) else 0.0)

        def mtp_params(depth: int) -> tuple[float, float]:
            # one module's dense and expert parameters; the first carries the embedding copy
            e = m.expert_params(m.layers - 1)
            dense = (m.mtp_params // m.mtp_layers - e) / par.tp
            return dense + (vocab_p if par.pp > 1 and depth == 0 else 0.0), e / (par.tp * par.ep)

        fwd_segs: list[tuple[list[Step], float, float]] = []
        if vs == 0:
            fwd_segs.append((embedding_steps(ctx, False), emb_p, 0.0))
        same: dict = {}  # layers of one kind share their steps but for names (layer_steps)
        fwd_segs += [(layer_steps(ctx, L, False, same), *seg_params(L)) for L in layers]
        if vs == n_vs - 1:
            fwd_segs.append((logits_steps(ctx, False), out_p, 0.0))
            fwd_segs += [(mtp_steps(ctx, d, False), *mtp_params(d)) for d in range(m.mtp_layers)]
        bwd_segs: list[tuple[list[Step], float, float]] = []
        if vs == n_vs - 1:
            bwd_segs += [(mtp_steps(ctx, d, True), *mtp_params(d)) for d in reversed(range(m.mtp_layers))]
            bwd_segs.append((logits_steps(ctx, True), out_p, 0.0))
        bwd_segs += [(layer_steps(ctx, L, True, same), *seg_params(L)) for L in reversed(layers)]
        if vs == 0:
            bwd_segs.append((embedding_steps(ctx, True), emb_p, 0.0))

        def head(kind: str) -> list[Step]:
            # Megatron's scatter/gather p2p: each TP rank receives 1/tp of the activation and
            # the TP group all-gathers it (Narayanan et al. 2021 §4.1); with SP it stays sharded.
            if par.tp > 1 and not par.sequence_parallel and par.pp > 1:
                if (kind == "F" and vs > 0) or (kind == "B" and vs < n_vs - 1):
                    return [CollectiveCall("tp", "all_gather", p2p * par.tp, groups["tp"], False,
                                           f"{prefix}/{kind}/p2p_all_gather")]
            return []

        def tail(kind: str) -> list[Step]:
            nxt = vs + 1 if kind == "F" else vs - 1
            if not 0 <= nxt < n_vs or par.pp == 1:
                return []
            pairs = pl.pipeline_pairs(stage, nxt % par.pp)
            return [CollectiveCall("pp", "send_recv", p2p, pairs, overlap["overlap_p2p"],
                                   f"{prefix}/{kind}/send")]

        if zero >= 3:
            ovl = overlap["overlap_param_gather"]
            fwd = head("F") + [x for seg in with_param_gathers(fwd_segs, groups, ovl, f"{prefix}/fwd")
                               for x in seg] + tail("F")
            bk = GradBuckets(groups, bucket, gbytes, "reduce_scatter", overlap["overlap_grad_reduce"],
                             f"{prefix}/bwd", per_layer=True)
            bwd = head("B")
            for i, (seg, (raw, dense_p, expert_p)) in enumerate(zip(
                    with_param_gathers(bwd_segs, groups, ovl, f"{prefix}/bwd"), bwd_segs)):
                bwd += seg  # each layer's gradients reduce-scattered right after its backward
                bk.add(dense_p, expert_p, bwd, label=segment_label(raw, i))
            bwd += tail("B")
            bwd_last = bwd
        else:
            op = "all_reduce" if zero == 0 else "reduce_scatter"
            fwd = head("F") + [x for segs in fwd_segs for x in segs[0]] + tail("F")
            plain: list[Step] = head("B") + [x for segs in bwd_segs for x in segs[0]] + tail("B")
            bk = GradBuckets(groups, bucket, gbytes, op, overlap["overlap_grad_reduce"], f"{prefix}/bwd",
                             per_layer=False)
            # ZeRO 0/1 without overlap reduce the accumulated gradients after the pipeline
            # flush (Megatron-LM 2021 train_step: forward_backward_func, then
            # allreduce_gradients; Megatron-Core finalize_model_grads): the stage's
            # optimizer list runs them, not the last backward, whose send must not wait
            after_flush = zero < 2 and not overlap["overlap_grad_reduce"]
            withb: list[Step] = head("B")
            for i, segs in enumerate(bwd_segs):
                withb += segs[0]
                bk.add(segs[1], segs[2], flushed if after_flush else withb, flush=i == len(bwd_segs) - 1)
            withb += tail("B")
            bwd, bwd_last = (withb, withb) if zero == 2 or after_flush else (plain, withb)
        all_grad_calls += [x.where for x in bk.calls]
        tf, tb = _timed(fwd, cm), _timed(bwd, cm)
        tbl = tb if bwd_last is bwd else _timed(bwd_last, cm)
        chunks.append(ChunkPlan(stage=stage, chunk=c, virtual_stage=vs, layers=layers,
                                forward=tf, backward=tb, backward_last=tbl))
    optimizer = flushed + optimizer_steps(m, par, train, pl, groups, stage, s, gbytes, overlap, all_grad_calls)
    # chips without block-scaled (MX) tensor cores, Hopper and earlier, need the FP8 transpose
    mem = stage_memory(m, par, train, stage, acc.hbm_capacity_bytes, attn,
                       fp8_transpose=acc.mxfp8_dense_TFLOPS is None)
    sched = SCHEDULES[par.schedule_name](par.pp, stage, n_micro, par.vpp)
    return StagePlan(stage=stage, ranks=pl.stage_ranks(stage), chunks=tuple(chunks), schedule=sched,
                     optimizer=_timed(optimizer, cm), memory=mem)
