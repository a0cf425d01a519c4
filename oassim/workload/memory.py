"""Per-accelerator memory footprint of a training job, per pipeline stage.

What is modelled (all bytes, GB = 1e9 bytes in messages):

- weights in bf16 (2 bytes/parameter), gradients (2 or 4 bytes: ``grad_precision``), and
  mixed-precision Adam state: fp32 master weights + two fp32 moments = 12 bytes/parameter
  (Rajbhandari et al. 2020, ZeRO, §3.1: 2 + 2 + 12 = 16 bytes with bf16 gradients). Under a
  low-precision recipe the linear weights of the transformer layers also exist in quantized
  form (:func:`weight_bytes`): Transformer Engine keeps the BF16 weight and caches the
  quantized copy the GEMMs and the backward use, unless ``fp8_param_gather`` /
  ``fp4_param_gather`` keep the quantized form only. Megatron's precision-aware optimizer
  sets the master-weight and moment dtypes and may keep only the 16-bit remainders of fp32
  master weights (:func:`optimizer_bytes`); ``optimizer_cpu_offload`` moves a fraction of
  that state to host memory. ZeRO
  stage 1 shards the optimizer state, stage 2 also the gradients, stage 3 / FSDP also the
  weights, over the ranks holding the same shard: ``dp * cp`` for dense parameters, ``edp``
  for experts (Megatron's distributed optimizer uses the same groups). ZeRO-3 adds two
  gathered layers in flight (the layer running and the prefetched one).
- activations per micro-batch and layer, module by module
  (:mod:`oassim.workload.activations`: Korthikanti et al. 2022 §4, Table 2, generalised to
  GQA, MLA, SwiGLU, any FFN width and MoE): ``selective`` recomputation drops the modules of
  ``recompute_modules`` (default ``core_attn``: the unfused kernel's score matrices; a fused
  flash kernel never stores them) and keeps one layer's recomputed tensors as working
  memory; ``full`` keeps each layer's input (2h per token, /tp with SP) plus one layer's
  full activations during its backward; FP8 caching stores linear-layer inputs in 1 byte;
  ``offload_layers`` of each chunk keep nothing in HBM (plus two layers reloaded or
  prefetched for the backward).
- in-flight micro-batches per stage: read off the pipeline schedule (peak of forwards not yet
  matched by their backward), which gives ``pp - stage`` for 1F1B and Korthikanti et al.'s
  ``pp (1 + (pp - 1) / (pp vpp))`` layer-stacks on the first stage of the interleaved schedule.
- embeddings and logits: the word embedding (+ learned positions) on the first stage, the
  output projection on the last (a second copy when tied and pp > 1, as Megatron keeps it),
  the embedding dropout mask, and the fp32 logits of the cross-entropy (4 s b V / tp,
  Korthikanti et al. §4.3); multi-token prediction modules on the last stage (their layer,
  projection, a copy of the embedding when pp > 1, and one more fp32 logits).

Not modelled: allocator fragmentation, the CUDA context, communication buffers, the fp32
copy of its gradient shard the distributed optimizer makes during the step (after the
activations are freed), and the host side of any offload.
"""

from __future__ import annotations

from dataclasses import dataclass

from oassim.errors import SpecError
from oassim.workload.activations import layer_tensors, stored_bytes_per_token
from oassim.workload.model import ModelSpec
from oassim.workload.parallelism import ParallelismSpec, TrainingSpec, n_microbatches, stage_layer_counts
from oassim.workload.schedules import SCHEDULES
from oassim.workload.steps import ScheduleStep

__all__ = ["MemoryBreakdown", "stage_memory", "check_memory", "chunk_layers",
           "activation_bytes_per_layer", "peak_inflight", "stage_params", "stage_linear_params",
           "weight_bytes", "optimizer_bytes", "QUANTIZED_WEIGHT_BYTES"]

_GB = 1e9

#: Bytes per element of a linear weight held in each recipe's quantized form, both usages the
#: forward and the backward GEMMs read (Transformer Engine, "Performance Considerations":
#: rowwise and columnwise usages; on Blackwell one per-tensor FP8 tensor serves both, Hopper
#: needs a physically transposed second copy). MXFP8: two 1-byte copies (rowwise and
#: columnwise blocks of 32 differ), each with one E8M0 scale byte per 32 elements (OCP
#: Microscaling Formats v1.0). NVFP4: two 4-bit copies with one E4M3 scale byte per 16.
QUANTIZED_WEIGHT_BYTES: dict[str, float] = {
    "fp8": 1.0, "mxfp8": 2 * (1.0 + 1.0 / 32), "nvfp4": 2 * (0.5 + 1.0 / 16)}
_STATE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0}


def weight_bytes(train: TrainingSpec, fp8_transpose: bool = False) -> float:
    """Bytes per linear-layer weight of the transformer layers: 2 (BF16) plus the cached
    quantized copy under a low-precision recipe, or the quantized form alone with
    ``fp8_param_gather`` / ``fp4_param_gather``. ``fp8_transpose``: the chip needs a
    physically transposed per-tensor FP8 copy for the backward (Hopper and earlier)."""
    if train.precision == "bf16":
        return 2.0
    q = QUANTIZED_WEIGHT_BYTES[train.precision]
    if train.precision == "fp8" and fp8_transpose:
        q *= 2.0
    only_quantized = train.fp8_param_gather or train.fp4_param_gather
    return q if only_quantized else 2.0 + q


def optimizer_bytes(train: TrainingSpec) -> float:
    """Bytes per parameter of the Adam state in HBM: master weights + two moments (12 with
    Megatron's defaults). With the precision-aware optimizer, fp32 master weights of BF16
    weights and ``store_param_remainders``, the master weights take the 2 bytes BF16 does
    not hold; Transformer Engine manages them only when no FP8 recipe casts the weights
    (bf16 or nvfp4 precision) or with ``optimizer_cpu_offload``
    (Megatron-Core ``use_precision_aware_optimizer_no_fp8_or_ds_fp8``)."""
    master = _STATE_BYTES[train.main_params_dtype]
    te_managed = train.precision in ("bf16", "nvfp4") or train.optimizer_cpu_offload
    quantized = train.fp8_param_gather or train.fp4_param_gather
    if (train.use_precision_aware_optimizer and train.store_param_remainders and master == 4.0
            and te_managed and not quantized):
        master = 2.0
    total = master + _STATE_BYTES[train.exp_avg_dtype] + _STATE_BYTES[train.exp_avg_sq_dtype]
    if train.optimizer_cpu_offload:
        f = 1.0 if train.optimizer_offload_fraction is None else train.optimizer_offload_fraction
        total *= 1.0 - f
    return total


@dataclass(frozen=True)
class MemoryBreakdown:
    """Memory of one accelerator of pipeline stage ``stage``, bytes.

    Attributes
    ----------
    stage : int
    weights, gradients, optimizer, activations : float
        Bytes of each part (activations: peak in flight, working memory included).
    capacity : float
        HBM capacity, bytes.
    inflight : int
        Peak forward passes (model chunks x micro-batches) awaiting their backward.
    """

    stage: int
    weights: float
    gradients: float
    optimizer: float
    activations: float
    capacity: float
    inflight: int

    @property
    def total(self) -> float:
        """Sum of the parts, bytes."""
        return self.weights + self.gradients + self.optimizer + self.activations

    @property
    def fits(self) -> bool:
        """True when the total fits in HBM."""
        return self.total <= self.capacity

    def sentence(self, accelerator: str) -> str:
        """One sentence: total and breakdown in GB against the capacity."""
        return (f"needs {self.total / _GB:.1f} GB per accelerator on pipeline stage {self.stage} "
                f"(weights {self.weights / _GB:.1f}, grads {self.gradients / _GB:.1f}, "
                f"optimizer {self.optimizer / _GB:.1f}, activations {self.activations / _GB:.1f}) "
                f"but {accelerator} has {self.capacity / _GB:.0f} GB")


def chunk_layers(model: ModelSpec, par: ParallelismSpec, stage: int, chunk: int) -> range:
    """Global layers of model chunk ``chunk`` on ``stage`` (Megatron's interleaved assignment:
    virtual stage ``chunk * pp + stage`` holds the next ``layers / (pp vpp)`` layers; an
    uneven split gives the first/last stage their own counts)."""
    counts = stage_layer_counts(model, par)
    vs = chunk * par.pp + stage
    start = sum(counts[:vs])
    return range(start, start + counts[vs])


def activation_bytes_per_layer(model: ModelSpec, layer: int, par: ParallelismSpec,
                               train: TrainingSpec, attention_kernel: str,
                               recompute: str | None = None) -> float:
    """Stored activations of ``layer`` for one micro-batch on one rank, bytes.

    Korthikanti et al. 2022 Table 2 generalised, module by module
    (:mod:`oassim.workload.activations`); ``recompute`` overrides the training's setting
    (``"none"`` gives the working set of a layer under recomputation).
    """
    rc = train.recompute if recompute is None else recompute
    s = train.resolved_seq_len(model)
    t = par.tp
    tok = train.micro_batch * s / par.cp  # tokens per rank before SP sharding
    sp_div = t if par.sequence_parallel else 1
    fp8 = train.fp8_cache
    if rc == "full":
        return 2.0 * model.hidden * tok / sp_div
    modules = train.recomputed_modules if rc == "selective" else frozenset()
    per_token = stored_bytes_per_token(layer_tensors(model, layer, t, par.sequence_parallel), modules,
                                       fp8)
    scores = 0.0
    if attention_kernel == "unfused" and "core_attn" not in modules:
        # softmax output (2 B), dropout mask (1 B), dropout output (2 B) per score element
        per_el = (5.0 if model.has_dropout else 2.0)
        scores = per_el * model.heads / t * (s / par.cp) * s * train.micro_batch
    return per_token * tok + scores


def stage_params(model: ModelSpec, par: ParallelismSpec, stage: int, seq_len: int) -> tuple[float, float]:
    """(dense, expert) parameters held by one rank of ``stage`` (before ZeRO sharding)."""
    dense = expert = 0.0
    for c in range(par.vpp):
        for layer in chunk_layers(model, par, stage, c):
            e = model.expert_params(layer)
            dense += (model.layer_params(layer) - e) / par.tp
            expert += e / (par.tp * par.ep)
    vocab_shard = model.vocab * model.hidden / par.tp
    if stage == 0:
        dense += vocab_shard + (model.embedding_params(seq_len) - model.vocab * model.hidden)
    if stage == par.pp - 1:
        dense += model.norm_params
        if not model.is_tied or par.pp > 1:
            dense += vocab_shard
        if model.mtp_layers:  # the MTP modules sit on the last stage (Megatron-Core)
            e = model.mtp_layers * model.expert_params(model.layers - 1)
            dense += (model.mtp_params - e) / par.tp + (vocab_shard if par.pp > 1 else 0.0)
            expert += e / (par.tp * par.ep)
    return dense, expert


def stage_linear_params(model: ModelSpec, par: ParallelismSpec, stage: int) -> tuple[float, float]:
    """(dense, expert) linear-layer weights of the transformer layers held by one rank of
    ``stage`` (before ZeRO sharding): the layers' parameters without their norms and router,
    the part a low-precision recipe quantizes (embeddings, output layer and norms stay BF16)."""
    dense = expert = 0.0
    for c in range(par.vpp):
        for layer in chunk_layers(model, par, stage, c):
            e = model.expert_params(layer)
            router = model.router_params if model.is_moe_layer(layer) else 0
            dense += (model.layer_params(layer) - e - 2 * model.norm_params - router) / par.tp
            expert += e / (par.tp * par.ep)
    return dense, expert


def peak_inflight(schedule: tuple[ScheduleStep, ...], weights: list[float]) -> tuple[float, int]:
    """Peak over the schedule of sum(outstanding forwards of chunk c * weights[c]), and the
    peak count of outstanding forwards."""
    out = [0] * len(weights)
    peak = 0.0
    peak_n = 0
    for st in schedule:
        out[st.chunk] += 1 if st.kind == "F" else -1
        peak = max(peak, sum(o * w for o, w in zip(out, weights)))
        peak_n = max(peak_n, sum(out))
    return peak, peak_n


def stage_memory(model: ModelSpec, par: ParallelismSpec, train: TrainingSpec, stage: int,
                 capacity: float, attention_kernel: str = "fused",
                 fp8_transpose: bool = False) -> MemoryBreakdown:
    """Memory of one rank of pipeline stage ``stage`` (see module docstring).

    Parameters
    ----------
    capacity : float
        HBM capacity, bytes.
    attention_kernel : {"fused", "unfused"}
        Whether the score matrices could be stored at all.
    fp8_transpose : bool
        The chip's FP8 GEMMs need a physically transposed weight copy (:func:`weight_bytes`).
    """
    s = train.resolved_seq_len(model)
    dense, expert = stage_params(model, par, stage, s)
    lin_d, lin_e = stage_linear_params(model, par, stage)
    zero = par.zero_stage
    dpc, edp = par.dp * par.cp, par.edp
    sharded = dense / dpc + expert / edp
    full = dense + expert
    lin_sharded, lin_full = lin_d / dpc + lin_e / edp, lin_d + lin_e
    wq = weight_bytes(train, fp8_transpose) - 2.0  # extra bytes per linear weight over BF16
    gbytes = 2.0 if train.grad_precision == "bf16" else 4.0
    weights = 2.0 * (sharded if zero >= 3 else full) + wq * (lin_sharded if zero >= 3 else lin_full)
    if zero >= 3:  # the running and the prefetched layer, gathered
        per_layer = max((model.layer_params(L) - model.expert_params(L)) / par.tp
                        + model.expert_params(L) / (par.tp * par.ep) for L in range(model.layers))
        weights += 2 * (2.0 + wq) * per_layer
    grads = gbytes * (sharded if zero >= 2 else full)
    optim = optimizer_bytes(train) * (sharded if zero >= 1 else full)

    b, h = train.micro_batch, model.hidden
    tok = b * s / par.cp
    sp_div = par.tp if par.sequence_parallel else 1
    chunk_bytes = []
    for c in range(par.vpp):
        layers = chunk_layers(model, par, stage, c)
        a = sum(activation_bytes_per_layer(model, L, par, train, attention_kernel) for L in layers)
        if stage == 0 and c == 0 and model.has_dropout:
            a += tok * h / sp_div  # embedding dropout mask
        if stage == par.pp - 1 and c == par.vpp - 1:
            vocab = -(-model.vocab // par.tp)
            heads = 1 + model.mtp_layers  # main output head and one per MTP module
            a += heads * (4.0 * tok * h / sp_div + 4.0 * tok * vocab)  # final norm/output input, fp32 logits
            # MTP: its layer (the last layer's structure) and the projection's 2h input
            a += model.mtp_layers * (activation_bytes_per_layer(model, model.layers - 1, par, train,
                                                                attention_kernel) + 4.0 * tok * h / sp_div)
        if train.offload_layers and len(layers):
            # the offloaded layers' activations live in host memory; the layer being reloaded
            # for its backward and the one prefetched behind it are back in HBM
            per = [activation_bytes_per_layer(model, L, par, train, attention_kernel) for L in layers]
            a -= sum(sorted(per, reverse=True)[:train.offload_layers])
        chunk_bytes.append(a)
    m = n_microbatches(par, train)
    sched = SCHEDULES[par.schedule_name](par.pp, stage, m, par.vpp)
    acts, n_in = peak_inflight(sched, chunk_bytes)
    mine = [L for c in range(par.vpp) for L in chunk_layers(model, par, stage, c)]
    if mine and train.offload_layers:
        acts += 2 * max(activation_bytes_per_layer(model, L, par, train, attention_kernel) for L in mine)
    if mine and train.recompute != "none":
        # one layer's recomputed tensors exist during its backward (full: the whole layer)
        keep = train.recompute == "selective"
        acts += max(activation_bytes_per_layer(model, L, par, train, attention_kernel, "none")
                    - (activation_bytes_per_layer(model, L, par, train, attention_kernel) if keep else 0.0)
                    for L in mine)
    return MemoryBreakdown(stage=stage, weights=weights, gradients=grads, optimizer=optim,
                           activations=acts, capacity=capacity, inflight=n_in)


def check_memory(breakdowns: tuple[MemoryBreakdown, ...], accelerator: str) -> None:
    """Refuse a job whose largest stage does not fit in HBM (one-sentence SpecError)."""
    worst = max(breakdowns, key=lambda m: m.total)
    if not worst.fits:
        raise SpecError(worst.sentence(accelerator), path="parallelism")
