"""Profiled passes: the engine's own torch-profiler endpoints around a short load, and what the trace says.

``harness bench|compare --profile`` starts each server with its profiler configured (the engine definition's
``profile_args`` / ``profile_env_vars``, e.g. SGLang's ``SGLANG_TORCH_PROFILER_DIR``, vLLM's ``--profiler-config``),
and after the session's measured cells (and its parity/MMLU step) runs, per scenario, one *profiled pass*:
``profile_start`` (POST /start_profile, with the definition's JSON body: SGLang gets stacks and shapes off, as vLLM's
``--profiler-config`` has them; SGLang's default stacks made a 32-step chat pass's /stop_profile run past 4 minutes
on 26B-A4B, session 8), a short ``vllm bench serve`` load with the scenario's shapes (its prompt count capped at the
scenario's concurrency, its output length capped, so the trace stays small), ``profile_stop`` (POST /stop_profile,
which writes the traces; given ``profile_stop_timeout_s``). The pass runs last, so profiling never touches a
measured number and a stalled profiler costs no parity answer.

The record ``profiles/<engine>__<scenario>__mtp-<on|off>.json`` holds the commands, the trace files (they stay in
``profiles/<session>/<scenario>/``, git-ignored like the logs: traces run to hundreds of MB) and a summary of the
rank-0 trace: GPU time per kernel name and per coarse kernel family (attention, GEMM, MoE, norm, communication,
memory, other), and its attention kernel's time split by layer type (harness.profile_layers). The report shows the
summaries next to the numbers they explain.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

TRACE_SUFFIXES = (".json", ".json.gz")

# (family, regex over the kernel name, case-insensitive); first match wins. Norms come before the families whose
# words fused norm kernels carry (Gemma-4's `_gemma4_post_attn_triple_rmsnorm_kernel`, FlashInfer's
# `flashinfer::norm::RMSNormKernel`, vLLM's compiled `..._moe_forward_mul_rms_norm_0`), and "gemm" must not match
# "gemma" (`_gemma_qkv_rmsnorm_kernel`); records written before session 15 counted those as attention, gemm or moe.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("communication", r"allreduce|all_reduce|all_gather|allgather|reduce_scatter|nccl|cross_device|custom_ar|trtllm_allreduce|lamport"),
    ("norm", r"norm"),
    ("moe", r"moe|expert|topk|routing|grouped_gemm"),
    # SGLang's Triton decode attention is _fwd_grouped_kernel_stage1 + _fwd_kernel_stage2 (counted as "other" by
    # records written before 2026-11-28)
    ("attention", r"attn|attention|fmha|flash|mha|_fwd_kernel|_fwd_grouped_kernel|extend|decode_grouped|paged|rope|rotary"),
    ("gemm", r"gemm(?!a)|cutlass|xmma|nvjet|matmul|cublas|sm90_|wgmma|splitk"),
    ("memory", r"memcpy|memset|copy|cat_|index|gather|scatter|fill"),
)


def _family(name: str) -> str:
    for fam, pattern in FAMILIES:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return fam
    return "other"


def load_trace(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else {"traceEvents": data}


GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


def gpu_events(events: list[Any], categories: tuple[str, ...] = GPU_CATEGORIES) -> list[tuple[dict[str, Any], float]]:
    """(event, ``dur`` in microseconds) of the complete events (``ph == 'X'``) of the given categories."""
    out = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get("ph") != "X" or str(ev.get("cat", "")).lower() not in categories:
            continue
        try:
            out.append((ev, float(ev.get("dur") or 0.0)))
        except (TypeError, ValueError):
            continue
    return out


def summarize_trace(path: Path, top: int = 15) -> dict[str, Any]:
    """GPU time per kernel name and per family from a Chrome/Kineto trace: complete events (``ph == 'X'``) of
    category ``kernel``, ``gpu_memcpy`` or ``gpu_memset``; ``dur`` is in microseconds."""
    by_name: dict[str, list[float]] = {}
    for ev, dur in gpu_events(load_trace(path).get("traceEvents") or []):
        rec = by_name.setdefault(str(ev.get("name", "?")), [0.0, 0])
        rec[0] += dur
        rec[1] += 1
    total = sum(v[0] for v in by_name.values())
    families: dict[str, float] = {}
    for name, (us, _) in by_name.items():
        fam = _family(name)
        families[fam] = families.get(fam, 0.0) + us
    ranked = sorted(by_name.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return {
        "trace": path.name,
        "gpu_time_us": round(total, 1),
        "kernels": sum(v[1] for v in by_name.values()),
        "distinct_kernels": len(by_name),
        "families": {k: {"us": round(v, 1), "share": round(v / total, 4) if total else 0.0}
                     for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
        "top": [{"name": n, "family": _family(n), "us": round(us, 1), "count": c,
                 "share": round(us / total, 4) if total else 0.0} for n, (us, c) in ranked[:top]],
    }


def trace_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name.endswith(TRACE_SUFFIXES))


def rank0_trace(files: list[Path]) -> Path | None:
    """The trace of tensor-parallel rank 0 when the names say (SGLang ``-TP-0``, vLLM ``rank0``/``_dp0_tp0``),
    else the first."""
    for f in files:
        if re.search(r"(TP-0|rank[-_]?0|tp0)(\D|$)", f.name):
            return f
    return files[0] if files else None


def rank0_pick(files: list[Path]) -> tuple[Path, dict[str, Any]] | None:
    """Rank 0's GPU trace among the traces of one pass, and its summary. Traces without GPU events (vLLM also writes
    its API front end's CPU-only trace into the same directory) are passed over."""
    summaries = {f: summarize_trace(f) for f in files}
    with_gpu = [f for f in files if summaries[f]["gpu_time_us"] > 0]
    pick = rank0_trace(with_gpu) or rank0_trace(files)
    return (pick, summaries[pick]) if pick else None


def rank0_summary(files: list[Path]) -> dict[str, Any] | None:
    """The summary of :func:`rank0_pick`'s trace."""
    picked = rank0_pick(files)
    return picked[1] if picked else None
