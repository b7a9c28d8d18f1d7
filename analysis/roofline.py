"""Decode roofline: the HBM-bandwidth lower bound on the time per output token.

At batch size 1, every decode step must stream each weight it uses from HBM at least once, so

    bound_ms_per_token = active_parameter_bytes / memory_bandwidth

What is counted (from the model's ``text_config``, bf16 = 2 bytes per parameter):

- attention projections of every layer: q, k, v, o with the per-layer head geometry (sliding layers:
  ``num_key_value_heads`` x ``head_dim``; full layers: ``num_global_key_value_heads`` x ``global_head_dim`` when
  set); no v projection on full layers with ``attention_k_eq_v`` (K is reused as V); no k/v projections on the
  last ``num_kv_shared_layers`` layers (they reuse an earlier layer's KV cache);
- the dense MLP (gate, up, down: 3 x hidden x intermediate), doubled in width on KV-shared layers with
  ``use_double_wide_mlp``;
- MoE (``enable_moe_block``): the router (hidden x num_experts) and only ``top_k_experts`` of ``num_experts``
  experts (3 x hidden x moe_intermediate each); the dense MLP beside it is counted as above;
- per-layer embeddings (``hidden_size_per_layer_input`` > 0): the model-level projection
  (hidden x layers x ple) and each layer's input gate and projection (2 x hidden x ple);
- embeddings: the lm_head matmul reads the whole vocab x hidden matrix (tied or not); the input embedding and
  per-layer embedding lookups read one row each per token, counted as such;
- not counted: norm weights and scalars (vectors, omitting them keeps this a lower bound), the KV cache (grows
  with context; a bound that ignores it is still a lower bound), the vision/audio towers (not run in text
  decode), the MTP draft model.

This is a **batch-1 bound**. Under concurrent decode one weight read serves every sequence in the batch, so
the measured per-request TPOT of a concurrent scenario can be *below* the bound (achieved fraction > 1).
With speculative decoding one verify step emits ``accept_length`` tokens per weight read on average, so the
report also shows ``bound / accept_length`` for MTP cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

BF16_BYTES = 2


class RooflineUnavailable(ValueError):
    """The config lacks a field the count needs (the message names it)."""


# Datasheet HBM bandwidths (NVIDIA product datasheets), matched against nvidia-smi's GPU name in order.
# (pattern, label, terabytes per second)
DATASHEET_BANDWIDTH_TBPS: tuple[tuple[str, str, float], ...] = (
    (r"H200", "H200 141GB HBM3e (SXM and NVL)", 4.8),
    (r"H100.*NVL", "H100 NVL 94GB HBM3", 3.9),
    (r"H100.*PCIe", "H100 PCIe 80GB HBM2e", 2.0),
    (r"H100", "H100 SXM 80GB HBM3", 3.35),
    (r"B200", "B200 HBM3e", 8.0),
    (r"A100.*80GB.*PCIe", "A100 80GB PCIe HBM2e", 1.935),
    (r"A100.*80GB", "A100 SXM 80GB HBM2e", 2.039),
    (r"A100", "A100 40GB HBM2", 1.555),
)


@dataclass(frozen=True)
class Bandwidth:
    gpu_name: str
    label: str
    tb_per_s: float

    @property
    def bytes_per_s(self) -> float:
        return self.tb_per_s * 1e12


def datasheet_bandwidth(gpu_name: str | None) -> Bandwidth | None:
    """The datasheet HBM bandwidth for an nvidia-smi GPU name, or ``None`` when the table has no entry."""
    if not gpu_name:
        return None
    for pattern, label, tbps in DATASHEET_BANDWIDTH_TBPS:
        if re.search(pattern, gpu_name, flags=re.IGNORECASE):
            return Bandwidth(gpu_name=gpu_name, label=label, tb_per_s=tbps)
    return None


@dataclass(frozen=True)
class ActiveParams:
    """Parameters read per decoded token, by component (in a fixed order)."""

    components: tuple[tuple[str, int], ...]
    dtype_bytes: int = BF16_BYTES

    @property
    def total(self) -> int:
        return sum(n for _, n in self.components)

    @property
    def total_bytes(self) -> int:
        return self.total * self.dtype_bytes


def _get(tc: Mapping[str, Any], key: str, default: Any = ...) -> Any:
    value = tc.get(key)
    if value is None:
        if default is ...:
            raise RooflineUnavailable(f"text_config.{key} is missing")
        return default
    return value


def text_config_of(hf_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``hf_config['text_config']`` when present, else the config itself (a text-only config.json)."""
    tc = hf_config.get("text_config")
    return tc if isinstance(tc, Mapping) else hf_config


def active_params(text_config: Mapping[str, Any], dtype_bytes: int = BF16_BYTES) -> ActiveParams:
    """Count the parameters one batch-1 decode step reads (see the module docstring for what is counted)."""
    tc = text_config
    hidden = int(_get(tc, "hidden_size"))
    layers = int(_get(tc, "num_hidden_layers"))
    heads = int(_get(tc, "num_attention_heads"))
    kv_heads = int(_get(tc, "num_key_value_heads"))
    head_dim = int(_get(tc, "head_dim", hidden // heads))
    global_kv = int(_get(tc, "num_global_key_value_heads", kv_heads))
    global_head_dim = int(_get(tc, "global_head_dim", head_dim))
    intermediate = int(_get(tc, "intermediate_size"))
    vocab = int(_get(tc, "vocab_size"))
    k_eq_v = bool(tc.get("attention_k_eq_v") or False)
    double_wide = bool(tc.get("use_double_wide_mlp") or False)
    kv_shared = int(tc.get("num_kv_shared_layers") or 0)
    ple = int(tc.get("hidden_size_per_layer_input") or 0)
    layer_types = tc.get("layer_types")
    if layer_types is None:
        layer_types = ["sliding_attention"] * layers
        if (global_kv, global_head_dim) != (kv_heads, head_dim):
            raise RooflineUnavailable("text_config.layer_types is missing (needed: full layers have other head dims)")
    if len(layer_types) != layers:
        raise RooflineUnavailable(f"text_config.layer_types has {len(layer_types)} entries, num_hidden_layers is {layers}")
    first_shared = layers - kv_shared if kv_shared > 0 else layers

    attn = mlp = 0
    for i, kind in enumerate(layer_types):
        full = kind == "full_attention"
        hd = global_head_dim if full else head_dim
        nkv = global_kv if full else kv_heads
        attn += hidden * heads * hd * 2  # q and o
        if i < first_shared:
            attn += hidden * nkv * hd  # k
            if not (full and k_eq_v):
                attn += hidden * nkv * hd  # v
        width = intermediate * (2 if double_wide and i >= first_shared else 1)
        mlp += 3 * hidden * width

    comps: list[tuple[str, int]] = [("attention q/k/v/o", attn), ("dense MLP gate/up/down", mlp)]
    if tc.get("enable_moe_block"):
        experts = int(_get(tc, "num_experts"))
        top_k = int(_get(tc, "top_k_experts"))
        moe_i = int(tc.get("moe_intermediate_size") or _get(tc, "expert_intermediate_size"))
        comps.append(("MoE router", layers * hidden * experts))
        comps.append((f"MoE experts ({top_k} of {experts})", layers * top_k * 3 * hidden * moe_i))
    if ple > 0:
        comps.append(("per-layer-embedding projections", hidden * layers * ple + layers * 2 * hidden * ple))
    comps.append(("embedding rows looked up", hidden + (layers * ple if ple > 0 else 0)))
    comps.append(("lm_head (vocab x hidden)", vocab * hidden))
    return ActiveParams(components=tuple(comps), dtype_bytes=dtype_bytes)


def bound_ms_per_token(param_bytes: float, bandwidth: Bandwidth, gpus: int = 1) -> float:
    """Milliseconds to stream ``param_bytes`` once at the datasheet bandwidth, split evenly over ``gpus`` GPUs
    (tensor parallel: each GPU reads its 1/gpus shard; the all-reduces between them are not counted)."""
    return param_bytes / (bandwidth.bytes_per_s * max(1, gpus)) * 1e3
