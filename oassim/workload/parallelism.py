"""How a training job is split and run: parallel dimensions and training settings.

What is modelled: the five parallel dimensions of Megatron-style 4D/5D training (tensor ``tp``
with optional sequence parallelism ``sp``; pipeline ``pp`` with a schedule, ``1f1b`` or
``interleaved`` with ``vpp`` virtual stages per rank; data ``dp`` with ZeRO stage 0-3, FSDP
being stage 3; context ``cp``, ring attention; expert ``ep``), the rank order that places them
on the cluster, which collectives overlap compute, and the per-step training settings
(sequence length, micro and global batch, recomputation, precision).

Why: the scenario file's ``workload:`` and ``parallelism:`` sections map onto
:class:`TrainingSpec` and :class:`ParallelismSpec`; :func:`check_job` refuses impossible
combinations with one sentence naming the key (docs/architecture.md decision 2).

Expert-parallel convention (Megatron-Core, ``parallel_state.initialize_model_parallel`` with
``expert_model_parallel_size``): experts are sharded over the data- and context-parallel
ranks of a pipeline stage, so ``ep`` divides ``dp * cp`` and does not multiply the rank count;
expert layers keep the dense tensor-parallel size (expert-TP = ``tp``), and each expert's
weights are replicated over ``edp = dp * cp / ep`` ranks, which reduce its gradients.
``tp * pp * dp * cp`` is the accelerator count.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import AliasChoices, Field, field_validator

from oassim.errors import SpecError
from oassim.specio import SpecModel, validate
from oassim.workload.model import ModelSpec, resolve_model
from oassim.workload.pipeline_split import virtual_stage_layers

__all__ = [
    "ParallelismSpec", "TrainingSpec", "Recompute", "WorkloadPrecision", "Dim", "DIMS",
    "check_job", "n_microbatches", "stage_layer_counts", "parse_workload",
]

Recompute = Literal["none", "selective", "full"]
RecomputeModule = Literal["core_attn", "layernorm", "mla_up_proj", "mlp", "moe_act", "shared_experts"]
WorkloadPrecision = Literal["bf16", "fp8", "mxfp8", "nvfp4"]
OptimizerStateDtype = Literal["fp32", "fp16", "bf16", "fp8"]
Dim = Literal["tp", "cp", "ep", "dp", "pp"]
DIMS: tuple[str, ...] = ("tp", "cp", "ep", "dp", "pp")

_Pos = Field(default=1, gt=0, strict=True)


class ParallelismSpec(SpecModel):
    """The ``parallelism:`` section of a scenario.

    Parameters
    ----------
    tp, pp, dp, cp, ep : int
        Tensor, pipeline, data, context and expert parallel sizes (ranks). ``ep`` shards the
        experts over the ``dp * cp`` ranks (see module docstring).
    vpp : int
        Virtual pipeline stages (model chunks) per rank; > 1 needs ``schedule: interleaved``.
    sp : bool
        Sequence parallelism with tensor parallelism (Korthikanti et al. 2022 §4.2.2).
    zero : {0, 1, 2, 3, "fsdp"}
        ZeRO stage of the data-parallel ranks (Rajbhandari et al. 2020): 1 shards optimizer
        states, 2 also gradients, 3 (= FSDP) also weights.
    schedule : {"1f1b", "interleaved"}, optional
        Pipeline schedule; default ``interleaved`` when ``vpp > 1``, else ``1f1b``.
    order : str
        Rank order of the dimensions, innermost first, e.g. ``"tp-cp-ep-dp-pp"``
        (Megatron-Core's default): tensor ranks are consecutive, hence in one scale-up domain.
    allow_straddle : bool
        Allow a group of a ``scaleup_dims`` dimension to span scale-up domains.
    scaleup_dims : list of {"tp", "cp", "ep", "dp", "pp"}
        Dimensions whose groups must stay inside one scale-up domain (default ``[tp]``).
    overlap_grad_reduce, overlap_param_gather, tp_comm_overlap, ep_comm_overlap, overlap_p2p : bool, optional
        Which collectives run concurrently with compute; None takes the framework's default
        (``topologies/hardware/compute_efficiency.yaml``).
    bucket_params : int, optional
        Parameters per data-parallel gradient bucket; default Megatron's
        ``max(40e6, 1e6 * dp)`` (``megatron/core/distributed`` ``bucket_size``).
    first_stage_layers, last_stage_layers : int, optional
        Uneven pipeline split (Megatron's ``num_layers_in_first/last_pipeline_stage``, also
        accepted under those names): the first / last pipeline rank holds this many layers,
        the other ranks share the rest equally; with vpp > 1 each rank's layers are divided
        equally over its chunks. Llama 3 405B: 126 layers on pp 16 with 7 on the first and
        last stage (Llama Team 2024 §3.3.2, "reduce one Transformer layer each from the first
        and the last stages").
    account_for_embedding_in_pipeline_split, account_for_loss_in_pipeline_split : bool
        Megatron's options of the same names: the embedding / the loss counts as one layer
        of the first / last virtual stage when the layers are divided equally (Llama 3.1
        405B on pp 16 with vpp 4 or 8, as NeMo and Megatron-Bridge run it).
    pipeline_model_parallel_layout : str, optional
        Megatron's explicit layout string, e.g. ``"Ettt|(tttt|)*14ttL"``
        (:mod:`oassim.workload.pipeline_split`).
    ep_placement : {"consecutive", "domain"}
        ``consecutive``: ranks laid out in ``order`` on accelerators 0, 1, ... (an EP group of
        64 straddles two 72-GPU racks); ``domain``: each expert-parallel block (``tp * ep``
        ranks) starts at a scale-up domain boundary and as many whole blocks as fit share a
        domain, leaving the rest of it idle (EP 64 on 64 of each rack's 72 GPUs); the cluster
        may then hold more accelerators than the job uses.
    moe_token_dispatcher : {"alltoall", "deepep"}
        ``alltoall``: every routed copy of a token travels to its expert's rank (Megatron-Core
        ``MoEAlltoAllTokenDispatcher``); ``deepep``: a token crosses the scale-out once per
        destination scale-up domain, to the rank of the same local index there, which
        forwards it to the experts' ranks inside the domain (DeepEP's normal kernels; the
        combine reduces inside the domain first) (:mod:`oassim.workload.dispatch`).
    moe_max_nodes : int, optional
        Node-limited routing (DeepSeek-V3 §2.1.2: each token reaches at most 4 nodes): the
        routed experts of a token lie in at most this many scale-up domains.
    moe_dispatch_precision : {"bf16", "fp8"}
        Element type of the forward dispatch and of the backward's gradient dispatch (the
        combine's backward): fp8 sends 1 byte per element plus one fp32 scale per 128
        (DeepSeek-V3 §3.3.2); the combines stay bf16.
    """

    tp: int = _Pos
    pp: int = _Pos
    dp: int = _Pos
    cp: int = _Pos
    ep: int = _Pos
    vpp: int = _Pos
    sp: bool = False
    zero: Literal[0, 1, 2, 3, "fsdp"] = 0
    schedule: Literal["1f1b", "interleaved"] | None = None
    order: str = "tp-cp-ep-dp-pp"
    allow_straddle: bool = False
    scaleup_dims: tuple[Dim, ...] = ("tp",)
    overlap_grad_reduce: bool | None = None
    overlap_param_gather: bool | None = None
    tp_comm_overlap: bool | None = None
    ep_comm_overlap: bool | None = None
    overlap_p2p: bool | None = None
    bucket_params: int | None = Field(default=None, gt=0, strict=True)
    first_stage_layers: int | None = Field(
        default=None, ge=0, strict=True,
        validation_alias=AliasChoices("first_stage_layers", "num_layers_in_first_pipeline_stage"))
    last_stage_layers: int | None = Field(
        default=None, ge=0, strict=True,
        validation_alias=AliasChoices("last_stage_layers", "num_layers_in_last_pipeline_stage"))
    account_for_embedding_in_pipeline_split: bool = False
    account_for_loss_in_pipeline_split: bool = False
    pipeline_model_parallel_layout: str | None = Field(default=None, min_length=3, max_length=4096)
    ep_placement: Literal["consecutive", "domain"] = "consecutive"
    moe_token_dispatcher: Literal["alltoall", "deepep"] = "alltoall"
    moe_max_nodes: int | None = Field(default=None, gt=0, strict=True)
    moe_dispatch_precision: Literal["bf16", "fp8"] = "bf16"

    @field_validator("order")
    @classmethod
    def _order(cls, value: str) -> str:
        dims = value.split("-")
        if sorted(dims) != sorted(DIMS):
            raise ValueError(f"order must name each of tp, cp, ep, dp, pp once, "
                             f"separated by '-' (got {value!r})")
        pos = sorted(dims.index(d) for d in ("cp", "ep", "dp"))
        if pos[2] - pos[0] != 2:
            # Dense (tp, cp, dp, pp) and expert (tp, ep, edp, pp) layouts must agree on every
            # rank's tp and pp coordinates, which holds when cp, ep, dp are adjacent.
            raise ValueError(f"order {value!r}: cp, ep and dp must be adjacent")
        return value

    @property
    def zero_stage(self) -> int:
        """ZeRO stage as an int (``fsdp`` is 3)."""
        return 3 if self.zero == "fsdp" else int(self.zero)

    @property
    def schedule_name(self) -> str:
        """The pipeline schedule, defaulted from ``vpp``."""
        if self.schedule is not None:
            return self.schedule
        return "interleaved" if self.vpp > 1 else "1f1b"

    @property
    def world(self) -> int:
        """Accelerators the job uses: ``tp * pp * dp * cp``."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def sequence_parallel(self) -> bool:
        """Sequence parallelism in effect (``sp`` with ``tp > 1``; Megatron ignores it at tp 1)."""
        return self.sp and self.tp > 1

    @property
    def edp(self) -> int:
        """Expert data-parallel size ``dp * cp / ep`` (replicas of one expert shard)."""
        return self.dp * self.cp // self.ep


class TrainingSpec(SpecModel):
    """Training settings of the ``workload:`` section (the model itself is separate).

    Parameters
    ----------
    seq_len : int, optional
        Tokens per sequence; default the model's ``seq_len``.
    global_batch : int
        Sequences per optimizer step.
    micro_batch : int
        Sequences per micro-batch on one model replica.
    precision : {"bf16", "fp8", "mxfp8", "nvfp4"}
        Arithmetic of the transformer layers' linear GEMMs (Transformer Engine recipes):
        ``fp8`` per-tensor current scaling, ``mxfp8`` block-32 scaling, ``nvfp4`` block-16
        scaling with some layers kept in BF16 (:mod:`oassim.workload.compute`). The chip must
        publish a dense peak for the format, else the job is refused.
    recompute : {"none", "selective", "full"}
        Activation recomputation (Korthikanti et al. 2022).
    grad_precision : {"bf16", "fp32"}
        Gradient buffer and reduction type (Megatron's ``accumulate_allreduce_grads_in_fp32``).
    framework : str, optional
        Framework generation of ``compute_efficiency.yaml`` (attention kernel, overlap
        defaults); default the accelerator entry's ``default_framework``.
    recompute_modules : list of str, optional
        With ``recompute: selective``, the modules recomputed in the backward (Megatron-Core's
        ``recompute_modules``; default ``[core_attn]``): ``core_attn``, ``layernorm``,
        ``mla_up_proj``, ``mlp``, ``moe_act``, ``shared_experts``
        (:mod:`oassim.workload.activations`).
    offload_layers : int
        Layers per model chunk whose stored activations are offloaded to host memory between
        their forward and backward (Megatron-Core / Transformer Engine
        ``cpu_offloading_num_layers``, also accepted under that name).
    fp8_activation_cache : bool, optional
        Cache the inputs of the linear layers in 1-byte FP8 for their backward (Transformer
        Engine saves the quantized input under an FP8 recipe; DeepSeek-V3 §3.3.2); default:
        on when ``precision`` is not bf16.
    fp8_param_gather, fp4_param_gather : bool
        Megatron-LM's ``--fp8-param-gather`` / ``--fp4-param-gather``: "keep the compute param
        in fp8 [fp4] (do not use any other intermediate dtype)"; the transformer layers' linear
        weights exist only in the recipe's quantized form, with no BF16 copy
        (:mod:`oassim.workload.memory`). ``fp8_param_gather`` needs ``precision`` fp8 or mxfp8,
        ``fp4_param_gather`` nvfp4; both need the distributed optimizer or FSDP (``zero`` >= 1).
    use_precision_aware_optimizer : bool
        Megatron-LM's ``--use-precision-aware-optimizer`` (Transformer Engine's FusedAdam):
        allows the dtypes below; with BF16 weights and fp32 master weights it keeps only the
        16-bit remainders of the master weights (``store_param_remainders``, on by default).
        Not with ``zero: fsdp`` (Megatron-Bridge turns it off under Megatron FSDP).
    store_param_remainders : bool
        With the precision-aware optimizer, fp32 master weights and BF16 weights, store the
        master weights as the 16 bits the BF16 weight does not hold (2 bytes, not 4).
    main_grads_dtype : {"bf16", "fp32"}
        Accepted for ``grad_precision`` (the gradient buffer's dtype either way; Megatron reads
        ``--main-grads-dtype`` with the precision-aware optimizer and
        ``--accumulate-allreduce-grads-in-fp32`` / Megatron-Bridge ``grad_reduce_in_fp32``
        otherwise).
    main_params_dtype : {"fp32", "fp16"}
        Master weights of the optimizer (Megatron ``--main-params-dtype``).
    exp_avg_dtype, exp_avg_sq_dtype : {"fp32", "fp16", "bf16", "fp8"}
        Adam's first and second moments as stored (Megatron ``--exp-avg-dtype``,
        ``--exp-avg-sq-dtype``). Every non-fp32 dtype needs ``use_precision_aware_optimizer``.
    optimizer_cpu_offload : bool
        Megatron's ``--optimizer-cpu-offload``: a fraction of the optimizer state (master
        weights and moments) lives in host memory and is stepped there; needs
        ``use_precision_aware_optimizer``, as Megatron asserts.
    optimizer_offload_fraction : float, optional
        Share of the optimizer state offloaded, in [0, 1] (Megatron
        ``--optimizer-offload-fraction``, default 1); only with ``optimizer_cpu_offload``.
    """

    seq_len: int | None = Field(default=None, gt=0, strict=True)
    global_batch: int = Field(gt=0, strict=True)
    micro_batch: int = Field(default=1, gt=0, strict=True)
    precision: WorkloadPrecision = "bf16"
    recompute: Recompute = "none"
    grad_precision: Literal["bf16", "fp32"] = Field(
        default="bf16", validation_alias=AliasChoices("grad_precision", "main_grads_dtype"))
    framework: str | None = None
    recompute_modules: tuple[RecomputeModule, ...] | None = None
    offload_layers: int = Field(default=0, ge=0, strict=True,
                                validation_alias=AliasChoices("offload_layers", "cpu_offloading_num_layers"))
    fp8_activation_cache: bool | None = None
    fp8_param_gather: bool = False
    fp4_param_gather: bool = False
    use_precision_aware_optimizer: bool = False
    store_param_remainders: bool = True
    main_params_dtype: Literal["fp32", "fp16"] = "fp32"
    exp_avg_dtype: OptimizerStateDtype = "fp32"
    exp_avg_sq_dtype: OptimizerStateDtype = "fp32"
    optimizer_cpu_offload: bool = False
    optimizer_offload_fraction: float | None = Field(default=None, ge=0.0, le=1.0)

    @property
    def recomputed_modules(self) -> frozenset[str]:
        """Modules recomputed by a selective recomputation (empty otherwise)."""
        if self.recompute != "selective":
            return frozenset()
        return frozenset(self.recompute_modules or ("core_attn",))

    @property
    def fp8_cache(self) -> bool:
        """Linear-layer inputs are cached in FP8."""
        if self.fp8_activation_cache is not None:
            return self.fp8_activation_cache
        return self.precision != "bf16"

    def resolved_seq_len(self, model: ModelSpec) -> int:
        """Sequence length: the training's, else the model's."""
        s = self.seq_len or model.seq_len
        if s is None:
            raise SpecError(f"workload.seq_len is required: model '{model.name}' has no default")
        return s


def parse_workload(section: Mapping[str, Any], *, source: str | None = None) -> tuple[ModelSpec, TrainingSpec]:
    """The scenario's ``workload:`` section: ``model`` (preset name or inline mapping with the
    docs/architecture.md keys) plus the :class:`TrainingSpec` keys.

    Raises
    ------
    SpecError
        Missing or unknown model, or an invalid training key (path ``workload.<key>``).
    """
    if not isinstance(section, Mapping):
        raise SpecError("expected a mapping", source=source, path="workload")
    if "model" not in section:
        raise SpecError("required key is missing", source=source, path="workload.model")
    rest = {k: v for k, v in section.items() if k != "model"}
    model = resolve_model(section["model"], source=source, prefix="workload.model")
    return model, validate(TrainingSpec, rest, source=source, prefix="workload")


def n_microbatches(par: ParallelismSpec, train: TrainingSpec) -> int:
    """Micro-batches per replica per step: ``global_batch / (micro_batch * dp)``."""
    return train.global_batch // (train.micro_batch * par.dp)


def _err(key: str, msg: str) -> SpecError:
    return SpecError(msg, path=key)


def stage_layer_counts(model: ModelSpec, par: ParallelismSpec) -> list[int]:
    """Layers of each virtual stage ``chunk * pp + stage``, in virtual-stage order
    (:func:`oassim.workload.pipeline_split.virtual_stage_layers`); SpecError if Megatron would
    refuse the split."""
    return virtual_stage_layers(
        model.layers, par.pp, par.vpp, first=par.first_stage_layers, last=par.last_stage_layers,
        embedding_counts=par.account_for_embedding_in_pipeline_split,
        loss_counts=par.account_for_loss_in_pipeline_split, layout=par.pipeline_model_parallel_layout)


def check_job(model: ModelSpec, par: ParallelismSpec, train: TrainingSpec,
              accelerators: int | None = None) -> None:
    """Refuse an impossible job with a one-sentence :class:`SpecError` naming the key.

    Parameters
    ----------
    accelerators : int, optional
        Accelerators the job runs on; ``tp * pp * dp * cp`` must equal it.
    """
    p = par
    if accelerators is not None and p.ep_placement == "domain" and p.world > accelerators:
        raise _err("parallelism", f"tp*pp*dp*cp = {p.world} ranks but the cluster has {accelerators} "
                   "accelerators")
    elif accelerators is not None and p.ep_placement != "domain" and p.world != accelerators:
        raise _err("parallelism", f"tp*pp*dp*cp = {p.tp}*{p.pp}*{p.dp}*{p.cp} = {p.world} "
                   f"but the job has {accelerators} accelerators")
    if model.heads % p.tp:
        raise _err("parallelism.tp", f"tp {p.tp} does not divide the {model.heads} attention heads")
    if model.n_kv_heads % p.tp:
        raise _err("parallelism.tp", f"tp {p.tp} does not divide the {model.n_kv_heads} kv_heads")
    if p.tp > 1 and (model.ffn_hidden % p.tp or (model.is_moe and model.expert_ffn % p.tp)):
        raise _err("parallelism.tp", f"tp {p.tp} does not divide the FFN width")
    if p.vpp > 1 and p.schedule_name != "interleaved":
        raise _err("parallelism.vpp", f"vpp {p.vpp} needs schedule 'interleaved'")
    stage_layer_counts(model, p)  # refuses a split Megatron would refuse
    if p.moe_max_nodes is not None and not model.is_moe:
        raise _err("parallelism.moe_max_nodes", f"moe_max_nodes needs a mixture-of-experts model; "
                   f"'{model.name}' is dense")
    if p.ep > 1 and not model.is_moe:
        raise _err("parallelism.ep", f"ep {p.ep} needs a mixture-of-experts model; "
                   f"'{model.name}' is dense")
    if model.is_moe:
        if p.ep > model.experts:
            raise _err("parallelism.ep", f"ep {p.ep} puts fewer than one of the "
                       f"{model.experts} experts on each rank")
        if model.experts % p.ep:
            raise _err("parallelism.ep", f"ep {p.ep} does not divide the {model.experts} experts")
        if (p.dp * p.cp) % p.ep:
            raise _err("parallelism.ep", f"ep {p.ep} must divide dp*cp = {p.dp * p.cp} "
                       "(experts are sharded over the data- and context-parallel ranks)")
        if p.tp > 1 and not p.sp:
            raise _err("parallelism.sp", "a mixture-of-experts model with tp > 1 needs sp: true "
                       "(as Megatron-Core requires)")
    if train.recompute_modules is not None and train.recompute != "selective":
        raise _err("workload.recompute_modules", "recompute_modules needs recompute: selective "
                   f"(got recompute: {train.recompute})")
    if "mla_up_proj" in train.recomputed_modules and not model.is_mla:
        raise _err("workload.recompute_modules", f"mla_up_proj needs an MLA model (q_lora_rank, "
                   f"kv_lora_rank); '{model.name}' has standard attention")
    _check_low_precision_options(p, train)
    s = train.resolved_seq_len(model)
    if s % (p.cp * (2 if p.cp > 1 else 1)):
        raise _err("workload.seq_len", f"seq_len {s} must be divisible by 2*cp = {2 * p.cp} "
                   "(ring attention splits each sequence into 2*cp load-balanced chunks)")
    if p.sequence_parallel and (train.micro_batch * s // p.cp) % p.tp:
        raise _err("workload.seq_len", f"tokens per micro-batch per cp rank are not "
                   f"divisible by tp {p.tp} (sequence parallelism)")
    step = train.micro_batch * p.dp
    if train.global_batch % step:
        raise _err("workload.global_batch", f"global_batch {train.global_batch} is not divisible "
                   f"by micro_batch*dp = {train.micro_batch}*{p.dp} = {step}")
    m = train.global_batch // step
    if p.schedule_name == "interleaved" and p.pp > 1 and m % p.pp:
        raise _err("workload.global_batch", f"the interleaved schedule needs the micro-batch "
                   f"count ({m}) to be a multiple of pp {p.pp}")


def _check_low_precision_options(p: ParallelismSpec, train: TrainingSpec) -> None:
    """Refuse weight-storage and optimizer options Megatron would refuse (one sentence)."""
    for key, formats in (("fp8_param_gather", ("fp8", "mxfp8")), ("fp4_param_gather", ("nvfp4",))):
        if getattr(train, key):
            if train.precision not in formats:
                raise _err(f"workload.{key}", f"{key} needs precision {' or '.join(formats)} "
                           f"(got {train.precision})")
            if p.zero_stage < 1:
                raise _err(f"workload.{key}", f"{key} needs the distributed optimizer or FSDP "
                           "(parallelism.zero >= 1), as Megatron-LM requires")
    if not train.use_precision_aware_optimizer:
        for key in ("main_params_dtype", "exp_avg_dtype", "exp_avg_sq_dtype"):
            if getattr(train, key) != "fp32":
                raise _err(f"workload.{key}", f"{key} {getattr(train, key)} needs "
                           "use_precision_aware_optimizer: true")
        if train.optimizer_cpu_offload:
            raise _err("workload.optimizer_cpu_offload", "optimizer_cpu_offload needs "
                       "use_precision_aware_optimizer: true (as Megatron-LM asserts)")
    elif p.zero == "fsdp":
        raise _err("workload.use_precision_aware_optimizer", "use_precision_aware_optimizer does not "
                   "work with zero: fsdp (Megatron-Bridge turns it off under Megatron FSDP)")
    if train.optimizer_offload_fraction is not None and not train.optimizer_cpu_offload:
        raise _err("workload.optimizer_offload_fraction", "optimizer_offload_fraction needs "
                   "optimizer_cpu_offload: true")
