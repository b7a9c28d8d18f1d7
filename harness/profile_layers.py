"""An attention kernel's GPU time of a torch-profiler trace, split by layer type (sliding window vs full attention).

Gemma-4 interleaves sliding-window and full-attention layers (the model's ``layer_types``). SGLang's Triton backend
runs one ``_fwd_kernel`` launch per layer per prefill forward, in layer order, and vLLM one
``kernel_unified_attention`` launch per layer per forward, so in time order launch i belongs to layer i % n_layers.
The split (done by hand in sessions 9-12) showed where the attention time went: which layer type, and per forward.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.profiles import _family, gpu_events, load_trace


def per_layer_kernel(launches: dict[str, list[Any]], layers: int, kernel: str | None, rank,
                     families: tuple[str, ...] = ("attention",)) -> tuple[str | None, str | None]:
    """The kernel launched once per layer per forward: ``kernel`` if named, else the kernel of ``families`` first by
    ``rank`` (a sort key of the name) among those whose launch count is a positive multiple of ``layers``. Returns
    (kernel, None), or (None, why) naming the candidates with their launch counts."""
    candidates = [kernel] if kernel is not None else sorted((k for k in launches if _family(k) in families), key=rank)
    fits = [k for k in candidates if launches.get(k) and len(launches[k]) % layers == 0]
    if fits:
        return fits[0], None
    counts = ", ".join(f"`{k}`: {len(launches.get(k, []))} launches" for k in candidates)
    return None, (f"{counts}, not a positive multiple of {layers} layers" if candidates
                  else f"no {' or '.join(families)}-family kernel in the trace")


def attention_layer_split(path: Path, layer_types: list[str], kernel: str | None = None,
                          draft: bool = False) -> dict[str, Any]:
    """Split ``kernel``'s launches (default: the attention-family kernel with the most GPU time whose launch count is
    a positive multiple of the layer count) by layer type. When no kernel fits, ``split`` is None and ``why`` says
    which kernels were considered with their launch counts. ``draft``: a speculative draft model ran in the same
    process (MTP), whose attention launches interleave with the target's: no split."""
    n = len(layer_types)
    if not n:
        raise ValueError("no layer types to split by")
    if draft:
        return {"trace": path.name, "kernel": kernel, "picked": "auto" if kernel is None else "named", "layers": n,
                "split": None, "why": "MTP on: the draft model's attention launches interleave with the target's, "
                                      "so launch i is not layer i mod the layer count"}
    launches: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for ev, dur in sorted(gpu_events(load_trace(path).get("traceEvents") or [], ("kernel",)),
                          key=lambda e: float(e[0].get("ts") or 0.0)):
        launches.setdefault(str(ev.get("name", "?")), []).append((ev, dur))
    picked, why = per_layer_kernel(launches, n, kernel, rank=lambda k: (-sum(d for _, d in launches[k]), k))
    out: dict[str, Any] = {"trace": path.name, "kernel": picked or kernel,
                           "picked": "auto" if kernel is None else "named", "layers": n, "why": why, "split": None}
    if picked is None:
        return out
    evs = launches[picked]
    forwards = len(evs) // n
    total = sum(d for _, d in evs)
    types = list(dict.fromkeys(layer_types))
    by_type: dict[str, Any] = {}
    for t in types:
        durs = [d for i, (_, d) in enumerate(evs) if layer_types[i % n] == t]
        by_type[t] = {"layers": layer_types.count(t), "launches": len(durs), "us": round(sum(durs), 1),
                      "us_per_launch": round(sum(durs) / len(durs), 1), "share": round(sum(durs) / total, 4) if total else 0.0}
    per_forward = []
    for f in range(forwards):
        chunk = evs[f * n:(f + 1) * n]
        per_forward.append({"forward": f, "grid": (chunk[0][0].get("args") or {}).get("grid"),
                            "us_per_launch": {t: round(statistics.mean(d for i, (_, d) in enumerate(chunk)
                                                                       if layer_types[i] == t), 1) for t in types}})
    out["split"] = {"launches": len(evs), "forwards": forwards, "us": round(total, 1), "by_type": by_type,
                    "per_forward": per_forward}
    return out
