"""Transformer model specs: dense and mixture-of-experts decoders, parameter and FLOP counts.

What is modelled: a decoder-only transformer as the numbers a training replay needs: layer
count, hidden size, feed-forward size, attention heads (with grouped-query ``kv_heads``),
vocabulary, activation (GELU with two FFN matrices, or SwiGLU with three), and for a
mixture-of-experts (MoE) model the routed experts, ``top_k``, shared experts, expert FFN size
and the dense layers that come first (DeepSeek-V3 has 3). The per-layer operations (GEMMs,
attention, norms...) are built from this spec by :mod:`oassim.workload.ops`.

Why: parameter counts drive memory and data-parallel traffic; the FLOP count per token is the
numerator of MFU, and docs/architecture.md fixes it:

    model FLOPs per token = 6 * N_nonembedding_active + 12 * layers * hidden * seq_len

(forward + backward, attention score and value products included, no recomputation; the
attention term keeps ``h`` even for multi-head latent attention, whose kernel works on wider
heads: the replayed ops count MLA's own products;
Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1, C = 6N plus the
attention context term, as written by Narayanan et al. 2021 eq. 3 for GPT). For a MoE model
only the experts a token visits count (``top_k`` routed plus the shared experts).

Conventions: "non-embedding" parameters exclude the input word embedding, a learned position
embedding and an untied output projection (Kaplan et al. 2020 §2.1); norms, biases and MoE
routers are non-embedding. Architectural details a spec may leave out (norm type, biases,
position embedding, tied output, dropout) default by activation: ``gelu`` means the GPT-2/3
family (LayerNorm, biases, learned positions, tied embeddings, dropout), ``swiglu`` the
Llama family (RMSNorm, no biases, rotary positions, untied output, no dropout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, model_validator

from oassim.errors import SpecError
from oassim.presets import find_preset
from oassim.specio import SpecModel, read_yaml, validate

__all__ = ["ModelSpec", "Activation", "load_model_spec", "resolve_model"]

Activation = Literal["gelu", "swiglu"]

_PositiveInt = Field(gt=0, strict=True)


class ModelSpec(SpecModel):
    """A decoder-only transformer (dense or mixture-of-experts).

    Parameters
    ----------
    name, description, notes : str
        Identity and caveats (which numbers are approximations).
    sources : list of str
        Where the architecture numbers come from (paper, model card).
    layers : int
        Transformer layers.
    hidden : int
        Model (residual stream) width h.
    ffn_hidden : int
        Feed-forward inner width of the dense layers (the GELU up-projection width, or the
        SwiGLU gate/up width).
    heads : int
        Query heads a.
    kv_heads : int, optional
        Key/value heads (grouped-query attention); default ``heads`` (multi-head).
    head_dim : int, optional
        Width of one head; default ``hidden // heads``.
    vocab : int
        Vocabulary size V (as trained, i.e. padded if the framework pads it).
    seq_len : int, optional
        Default training sequence length s, tokens (a workload may override it).
    activation : {"gelu", "swiglu"}
        FFN activation: GELU uses two matrices (h x f, f x h), SwiGLU three.
    experts : int
        Routed experts per MoE layer; 0 for a dense model.
    top_k : int
        Routed experts each token visits (MoE only).
    shared_experts : int
        Experts every token visits in each MoE layer.
    moe_ffn_hidden : int, optional
        Inner width of one expert; default ``ffn_hidden``.
    first_dense_layers : int
        Leading layers that are dense (FFN width ``ffn_hidden``) in a MoE model.
    norm : {"layernorm", "rmsnorm"}, optional
        Normalisation layer; default by activation (LayerNorm for gelu, RMSNorm for swiglu).
    bias : bool, optional
        Linear layers carry biases.
    position : {"learned", "rope"}, optional
        Learned absolute position embedding (``seq_len`` rows, an embedding parameter) or
        rotary embedding (no parameters).
    tied_embeddings : bool, optional
        The output projection shares the input embedding matrix.
    dropout : bool, optional
        Dropout after attention and FFN (stores a 1-byte mask per element; Korthikanti et al.
        2022 §4.1).
    kv_lora_rank, q_lora_rank : int, optional
        Multi-head latent attention (MLA; DeepSeek-AI 2024, DeepSeek-V2 §2.1, arXiv:2405.04434):
        keys and values are up-projected from a compressed latent of ``kv_lora_rank`` (the
        down-projection also yields the shared rotary key of ``qk_rope_head_dim``), queries
        from one of ``q_lora_rank`` (None: a plain h x heads * qk projection). Setting
        ``kv_lora_rank`` makes the model MLA.
    qk_nope_head_dim, qk_rope_head_dim, v_head_dim : int, optional
        MLA per-head widths: query/key without and with rotary position, value (DeepSeek-V3:
        128, 64, 128).
    mtp_layers : int
        Multi-token prediction depth (DeepSeek-V3 §2.2: 1): each extra module is one more
        transformer layer (the structure of the last layer) fed by the projection
        ``M (h x 2h)`` of two RMSNorms, with the embedding and output head shared with the
        main model. Its parameters are not part of the model's count (DeepSeek reports 671B
        plus 14B of MTP) nor of the model FLOPs; its compute is replayed on the last stage.
    """

    name: str = "custom"
    description: str = ""
    sources: list[str] = []
    notes: str = ""
    layers: int = _PositiveInt
    hidden: int = _PositiveInt
    ffn_hidden: int = _PositiveInt
    heads: int = _PositiveInt
    kv_heads: int | None = Field(default=None, gt=0, strict=True)
    head_dim: int | None = Field(default=None, gt=0, strict=True)
    vocab: int = _PositiveInt
    seq_len: int | None = Field(default=None, gt=0, strict=True)
    activation: Activation
    experts: int = Field(default=0, ge=0, strict=True)
    top_k: int = Field(default=0, ge=0, strict=True)
    shared_experts: int = Field(default=0, ge=0, strict=True)
    moe_ffn_hidden: int | None = Field(default=None, gt=0, strict=True)
    first_dense_layers: int = Field(default=0, ge=0, strict=True)
    norm: Literal["layernorm", "rmsnorm"] | None = None
    bias: bool | None = None
    position: Literal["learned", "rope"] | None = None
    tied_embeddings: bool | None = None
    dropout: bool | None = None
    kv_lora_rank: int | None = Field(default=None, gt=0, strict=True)
    q_lora_rank: int | None = Field(default=None, gt=0, strict=True)
    qk_nope_head_dim: int | None = Field(default=None, gt=0, strict=True)
    qk_rope_head_dim: int | None = Field(default=None, gt=0, strict=True)
    v_head_dim: int | None = Field(default=None, gt=0, strict=True)
    mtp_layers: int = Field(default=0, ge=0, strict=True)

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}; "
                             "give head_dim explicitly")
        if self.n_kv_heads > self.heads or self.heads % self.n_kv_heads:
            raise ValueError(f"kv_heads {self.n_kv_heads} must divide heads {self.heads}")
        if self.experts == 1:
            raise ValueError("experts must be 0 (dense) or >= 2 (mixture of experts)")
        if self.experts:
            if not 1 <= self.top_k <= self.experts:
                raise ValueError(f"top_k must be between 1 and experts ({self.experts}), "
                                 f"got {self.top_k}")
            if self.first_dense_layers >= self.layers:
                raise ValueError(f"first_dense_layers {self.first_dense_layers} leaves no "
                                 f"MoE layer out of {self.layers}")
        mla = (self.q_lora_rank, self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim)
        if self.kv_lora_rank is None and any(x is not None for x in mla):
            raise ValueError("q_lora_rank, qk_nope_head_dim, qk_rope_head_dim and v_head_dim "
                             "describe multi-head latent attention: give kv_lora_rank too")
        if self.kv_lora_rank is not None and None in mla[1:]:
            raise ValueError("an MLA model (kv_lora_rank) needs qk_nope_head_dim, qk_rope_head_dim "
                             "and v_head_dim")
        if self.kv_lora_rank is not None and self.kv_heads not in (None, self.heads):
            raise ValueError("kv_heads does not apply to MLA (every head has its own key and value)")
        if not self.experts and (self.top_k or self.shared_experts or self.first_dense_layers
                                 or self.moe_ffn_hidden):
            raise ValueError("top_k, shared_experts, moe_ffn_hidden and first_dense_layers "
                             "need experts >= 2")
        return self

    # -- resolved architecture details -----------------------------------------------------

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.experts >= 2

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (``kv_lora_rank`` set)."""
        return self.kv_lora_rank is not None

    @property
    def qk_head_dim(self) -> int:
        """Per-head width of the query-key product (MLA: nope + rope dims)."""
        if self.is_mla:
            return int(self.qk_nope_head_dim) + int(self.qk_rope_head_dim)  # type: ignore[arg-type]
        return self.d_head

    @property
    def v_dim(self) -> int:
        """Per-head width of the values and the attention output."""
        return int(self.v_head_dim) if self.is_mla else self.d_head  # type: ignore[arg-type]

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads (``heads`` when not grouped)."""
        return self.heads if self.kv_heads is None else self.kv_heads

    @property
    def d_head(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads if self.head_dim is None else self.head_dim

    @property
    def expert_ffn(self) -> int:
        """Inner width of one expert (MoE), else 0."""
        if not self.is_moe:
            return 0
        return self.ffn_hidden if self.moe_ffn_hidden is None else self.moe_ffn_hidden

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers (0 for a dense model)."""
        return self.layers - self.first_dense_layers if self.is_moe else 0

    def is_moe_layer(self, layer: int) -> bool:
        """Whether global layer ``layer`` (0-based) is a MoE layer."""
        return self.is_moe and layer >= self.first_dense_layers

    def _style(self, field: str) -> Any:
        value = getattr(self, field)
        if value is not None:
            return value
        gpt = self.activation == "gelu"
        return {
            "norm": "layernorm" if gpt else "rmsnorm",
            "bias": gpt,
            "position": "learned" if gpt else "rope",
            "tied_embeddings": gpt,
            "dropout": gpt,
        }[field]

    @property
    def norm_kind(self) -> str:
        """``"layernorm"`` or ``"rmsnorm"`` (default by activation family)."""
        return self._style("norm")

    @property
    def has_bias(self) -> bool:
        """Linear layers have biases (default: GELU family yes, SwiGLU family no)."""
        return bool(self._style("bias"))

    @property
    def position_kind(self) -> str:
        """``"learned"`` or ``"rope"`` (default by activation family)."""
        return self._style("position")

    @property
    def is_tied(self) -> bool:
        """Output projection tied to the input embedding (default by activation family)."""
        return bool(self._style("tied_embeddings"))

    @property
    def has_dropout(self) -> bool:
        """Dropout layers present (default by activation family)."""
        return bool(self._style("dropout"))

    @property
    def ffn_matrices(self) -> int:
        """Weight matrices of one FFN: 2 for GELU, 3 for SwiGLU (gate, up, down)."""
        return 2 if self.activation == "gelu" else 3

    # -- parameter counts --------------------------------------------------------------------

    @property
    def attention_params(self) -> int:
        """Q, K, V and output projections of one layer (+ biases); for MLA the down- and
        up-projections, their two RMSNorms and the output projection (DeepSeek-V2 §2.1.2-3)."""
        if self.is_mla:
            a, h, r = self.heads, self.hidden, int(self.kv_lora_rank)  # type: ignore[arg-type]
            qk = self.qk_head_dim
            q = h * a * qk if self.q_lora_rank is None else \
                h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * a * qk
            kv = h * (r + int(self.qk_rope_head_dim)) + r + r * a * (int(self.qk_nope_head_dim) + self.v_dim)
            return q + kv + a * self.v_dim * h
        h, q, kv = self.hidden, self.heads * self.d_head, self.n_kv_heads * self.d_head
        n = h * (q + 2 * kv) + q * h
        if self.has_bias:
            n += q + 2 * kv + h
        return n

    def ffn_params(self, width: int) -> int:
        """One FFN (or one expert) of inner width ``width``."""
        n = self.ffn_matrices * self.hidden * width
        if self.has_bias:
            n += (self.ffn_matrices - 1) * width + self.hidden
        return n

    @property
    def norm_params(self) -> int:
        """One norm: weight and bias (LayerNorm) or weight (RMSNorm)."""
        return (2 if self.norm_kind == "layernorm" else 1) * self.hidden

    @property
    def router_params(self) -> int:
        """MoE router (a hidden x experts matrix), per MoE layer."""
        return self.hidden * self.experts if self.is_moe else 0

    def layer_params(self, layer: int, *, active: bool = False) -> int:
        """Parameters of global layer ``layer``; ``active`` counts only the experts one token
        visits (``top_k`` routed + shared)."""
        base = self.attention_params + 2 * self.norm_params
        if not self.is_moe_layer(layer):
            return base + self.ffn_params(self.ffn_hidden)
        routed = self.top_k if active else self.experts
        return base + self.router_params + (routed + self.shared_experts) * self.ffn_params(self.expert_ffn)

    def expert_params(self, layer: int) -> int:
        """Routed-expert parameters of layer ``layer`` (sharded by expert parallelism)."""
        return self.experts * self.ffn_params(self.expert_ffn) if self.is_moe_layer(layer) else 0

    @property
    def mtp_params(self) -> int:
        """Multi-token prediction modules: per depth the projection M (2h x h), two RMSNorms
        and one layer like the last (embedding and output head shared)."""
        if not self.mtp_layers:
            return 0
        per = 2 * self.hidden * self.hidden + 2 * self.norm_params + self.layer_params(self.layers - 1)
        return self.mtp_layers * per

    def embedding_params(self, seq_len: int | None = None) -> int:
        """Input word embedding (+ learned position embedding of ``seq_len`` rows)."""
        n = self.vocab * self.hidden
        if self.position_kind == "learned":
            s = seq_len or self.seq_len
            if s is None:
                raise SpecError(f"model '{self.name}': a learned position embedding needs seq_len")
            n += s * self.hidden
        return n

    @property
    def output_params(self) -> int:
        """Untied output projection (0 when tied to the input embedding)."""
        return 0 if self.is_tied else self.vocab * self.hidden

    def nonembedding_params(self, *, active: bool = False) -> int:
        """All layers plus the final norm (Kaplan et al. 2020 §2.1 convention)."""
        n_dense = self.first_dense_layers if self.is_moe else self.layers
        total = n_dense * self.layer_params(0, active=active)
        if self.is_moe:
            total += self.moe_layers * self.layer_params(self.layers - 1, active=active)
        return total + self.norm_params

    def total_params(self, seq_len: int | None = None) -> int:
        """Every parameter, embeddings included."""
        return self.nonembedding_params() + self.embedding_params(seq_len) + self.output_params

    @property
    def active_params(self) -> int:
        """Non-embedding parameters one token uses (all of them for a dense model)."""
        return self.nonembedding_params(active=True)

    # -- FLOPs ------------------------------------------------------------------------------

    def model_flops_per_token(self, seq_len: int | None = None) -> float:
        """docs/architecture.md model FLOPs per token: ``6 N_nonembedding_active + 12 l h s``.

        Forward and backward, attention included, recomputation not counted.

        Parameters
        ----------
        seq_len : int, optional
            Sequence length s, tokens (default the spec's).
        """
        s = seq_len or self.seq_len
        if s is None:
            raise SpecError(f"model '{self.name}': seq_len is needed for the FLOP count")
        return 6.0 * self.active_params + 12.0 * self.layers * self.hidden * s


def resolve_model(value: str | Mapping[str, Any] | ModelSpec, *, source: str | None = None,
                  prefix: str | None = "model") -> ModelSpec:
    """A model from a preset name (a file stem in ``workloads/``), an inline mapping or a spec.

    Raises
    ------
    SpecError
        Unknown preset (the message lists the known ones) or an invalid mapping.
    """
    if isinstance(value, ModelSpec):
        return value
    if isinstance(value, str):
        return load_model_spec(find_preset("workloads", value))
    return validate(ModelSpec, value, source=source, prefix=prefix)


def load_model_spec(path: str | Path) -> ModelSpec:
    """Read a model preset file; its ``name`` defaults to the file stem."""
    data = read_yaml(path)
    if isinstance(data, dict) and "name" not in data:
        data = {"name": Path(path).stem, **data}
    return validate(ModelSpec, data, source=str(path))
