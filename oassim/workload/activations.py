"""Stored activations of one transformer layer, module by module, and what recomputation,
FP8 caching and offloading leave in HBM.

What is modelled: the tensors a layer keeps from its forward for its backward, per token of
one micro-batch on one rank, generalising Korthikanti et al. 2022 ("Reducing Activation
Recomputation in Large Transformer Models", §4, Table 2: ``sbh(34 + 5as/h)`` for GPT with
2-byte activations and 1-byte dropout masks) to grouped-query and latent attention, SwiGLU,
any FFN width and mixture-of-experts layers. Each tensor belongs to a module named as
Megatron-Core's ``recompute_modules``:

==================  =================================================================  ========
module              tensors (bytes per token, bf16)                                    sharding
==================  =================================================================  ========
(always kept)       the two norm inputs (the residual stream, 2h each), dropout masks  SP
``layernorm``       the two norm outputs, inputs of QKV and of the FFN/router (2h      SP
                    each; linear inputs)
``core_attn``       the s x s score matrices of an unfused kernel (softmax output,     TP
                    dropout mask and output: 5 a s bytes; a fused kernel keeps none)
(attention)         Q, K, V (2 a d_qk, 2 a d_qk, 2 a d_v; GQA: K and V over kv_heads)  TP
                    and the output O (2 a d_v, input of the output projection)
``mla_up_proj``     MLA: Q, K, V above are recomputed from the latents, which are      TP / -
                    kept anyway (the up-projections' inputs, 2 q_lora_rank + 2
                    (kv_lora_rank + rope) bytes, and the same before their RMSNorms;
                    DeepSeek-V3 §3.2.3)
``mlp``             the dense FFN's intermediates (GELU: 4f; SwiGLU: 4f gate/up        TP
                    output + 2f activation output, the down projection's input)
``moe_act``         the routed experts' activation outputs (2 f_e per routed copy;     TP
                    their inputs, 4 f_e, stay: DeepSeek-V3 §3.3.2 caches the SwiGLU
                    input and recomputes its output)
(experts)           the routed copies of the token (2 h each, the experts' input) and
                    the gate/up outputs (4 f_e each); router probabilities (4 E, fp32)
``shared_experts``  the shared experts' intermediates, as ``mlp``                      TP
==================  =================================================================  ========

``selective`` recomputation drops the chosen modules' tensors (default ``core_attn``, the
Megatron default); ``full`` keeps only the layer input (2h, /tp with SP). With FP8 caching
(Transformer Engine under an FP8 recipe saves the quantized input of every linear layer;
DeepSeek-V3 §3.3.2) the linear inputs take 1 byte instead of 2 (the block scales, 4 bytes
per 128 elements, are neglected). Offloaded layers (``offload_layers``) keep nothing in HBM
between their forward and backward; the transfers to and from host memory are assumed
hidden behind compute (Megatron-Core overlaps them), so they cost no time here.
"""

from __future__ import annotations

from dataclasses import dataclass

from oassim.workload.model import ModelSpec

__all__ = ["Tensor", "layer_tensors", "stored_bytes_per_token"]


@dataclass(frozen=True)
class Tensor:
    """One stored activation of a layer, per token.

    Attributes
    ----------
    module : str
        Owning module (a ``recompute_modules`` name, or ``"kept"`` / ``"attention"`` /
        ``"experts"`` for tensors no selective option drops).
    bytes : float
        Bytes per token at 2-byte activations, already divided by its sharding.
    linear_input : bool
        Input of a linear layer (cached in FP8 when enabled).
    """

    module: str
    bytes: float
    linear_input: bool = False


def _ffn(model: ModelSpec, width: float, module: str) -> list[Tensor]:
    if model.activation == "gelu":  # GELU input (fc1 output) and output (fc2 input)
        return [Tensor(module, 2.0 * width), Tensor(module, 2.0 * width, True)]
    # SwiGLU: gate and up outputs, and the activation output (the down projection's input)
    return [Tensor(module, 4.0 * width), Tensor(module, 2.0 * width, True)]


def layer_tensors(model: ModelSpec, layer: int, tp: int, sp: bool) -> list[Tensor]:
    """The stored tensors of global layer ``layer`` per token on one rank (module docstring),
    fused attention (the unfused kernel's scores are added by the caller)."""
    h = model.hidden
    sp_div = tp if sp else 1
    drop = 1.0 if model.has_dropout else 0.0
    out = [Tensor("kept", (4.0 + 2.0 * drop) * h / sp_div),
           Tensor("layernorm", 2.0 * h / sp_div, True), Tensor("layernorm", 2.0 * h / sp_div, True)]
    a = model.heads
    q, v = a * model.qk_head_dim, a * model.v_dim
    kv_k = model.n_kv_heads * model.qk_head_dim
    kv_v = model.n_kv_heads * model.v_dim
    out += [Tensor("attention", 2.0 * (q + kv_k + kv_v) / tp), Tensor("attention", 2.0 * v / tp, True)]
    if model.is_mla:
        latent = float(model.kv_lora_rank + model.qk_rope_head_dim)  # type: ignore[operator]
        if model.q_lora_rank:
            latent += model.q_lora_rank
        # the latents before (norm inputs) and after their RMSNorms (up-projection inputs)
        out += [Tensor("kept", 2.0 * latent), Tensor("mla_latent", 2.0 * latent, True)]
    if not model.is_moe_layer(layer):
        return out + _ffn(model, model.ffn_hidden / tp, "mlp")
    k, fe = model.top_k, model.expert_ffn / tp
    out += [Tensor("experts", 2.0 * k * h, True), Tensor("experts", 4.0 * model.experts / sp_div)]
    gate_up, act_out = _ffn(model, fe, "moe_act")
    out += [Tensor("experts", k * gate_up.bytes), Tensor("moe_act", k * act_out.bytes, True)]
    if model.shared_experts:
        out += _ffn(model, model.shared_experts * model.expert_ffn / tp, "shared_experts")
    return out


def stored_bytes_per_token(tensors: list[Tensor], modules: frozenset[str], fp8_cache: bool) -> float:
    """Bytes per token left after recomputing ``modules`` (with ``mla_up_proj`` the
    attention's Q, K, V are dropped: the latents, kept anyway for the up-projections' weight
    gradients, regenerate them), linear inputs in FP8 when ``fp8_cache``."""
    total = 0.0
    for t in tensors:
        if t.module in modules:
            continue
        if t.module == "attention" and "mla_up_proj" in modules and not t.linear_input:
            continue
        total += t.bytes / 2.0 if (fp8_cache and t.linear_input) else t.bytes
    return total
