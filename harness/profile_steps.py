"""A torch-profiler trace's forwards as steps: how long the GPU was busy in each, how long it sat idle, and what the
host was doing meanwhile.

A forward starts at the layer-0 launch of a kernel launched once per layer per forward (``per_layer_kernel`` of
``harness.profile_layers``, over the attention and norm families: by default the one with the most launches, e.g.
SGLang's per-layer q/k/v norm, which runs in prefill and decode forwards alike) and ends at the next one. Per step:
GPU busy time (the union of the kernel, memcpy and memset intervals), wall time, idle time and the idle gaps of at
least ``gap_us``; the time no kernel ran (``kernel_idle_us``: an asynchronous copy overlapping the step, such as
vLLM's host-to-device staging of the next step's inputs, keeps the copy engine busy, not the SMs); the host's
CUDA runtime and driver calls (``cuda_runtime`` / ``cuda_driver`` events) that overlap those gaps, by name; and the
time the host spent in synchronising calls (stream, device and event synchronise, blocking memcpy) that started in
the step. A decode step whose host spends most of it in a synchronise has no lead over the GPU: every host call after
the synchronise ends is on the critical path (session 14: 26B-A4B decode on an H200, a cudaStreamSynchronize of
11.3 ms per 15.1 ms step, then 1.3 ms of metadata and cudaGraphLaunch with the GPU idle).

Where the busy time goes: per step, the GPU time and launches of each kernel (memcpy and memset included) that
started in it, and the same by family (``harness.profiles.FAMILIES``); the median step's are the per-name medians
over the steps, so two engines' decode steps can be set side by side kernel by kernel.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.profile_layers import per_layer_kernel
from harness.profiles import _family, gpu_events, load_trace

SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy",
              "cuStreamSynchronize", "cuCtxSynchronize", "cuEventSynchronize", "cuMemcpyDtoH_v2")
HOST_CATEGORIES = ("cuda_runtime", "cuda_driver")


def _busy_intervals(gpu: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merged [start, end) intervals of GPU activity (events on several streams may overlap)."""
    out: list[list[float]] = []
    for s, e in sorted(gpu):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def forward_steps(path: Path, layers: int, kernel: str | None = None, gap_us: float = 50.0) -> dict[str, Any]:
    """Steps of ``path`` delimited by ``kernel``'s launches 0, layers, 2 x layers, ... (default: the attention- or norm-family
    kernel with the most launches whose count is a positive multiple of ``layers``; ties go to the one launched
    first). ``steps`` is None, with ``why``, when no kernel fits or it gives fewer than two forwards."""
    if layers < 1:
        raise ValueError("layers must be at least 1")
    events = load_trace(path).get("traceEvents") or []
    gpu = sorted(gpu_events(events), key=lambda e: float(e[0].get("ts") or 0.0))
    launches: dict[str, list[float]] = {}
    for ev, _ in gpu:
        if str(ev.get("cat", "")).lower() == "kernel":
            launches.setdefault(str(ev.get("name", "?")), []).append(float(ev.get("ts") or 0.0))
    # norms too: a per-layer norm runs in every forward, prefill and decode alike (SGLang's Triton attention has a
    # different kernel for each)
    picked, why = per_layer_kernel(launches, layers, kernel, rank=lambda k: (-len(launches[k]), launches[k][0], k),
                                   families=("attention", "norm"))
    out: dict[str, Any] = {"trace": path.name, "kernel": picked or kernel,
                           "picked": "auto" if kernel is None else "named", "layers": layers, "gap_us": gap_us,
                           "why": why, "steps": None, "median": None}
    if picked is None:
        return out
    starts = launches[picked][::layers]
    if len(starts) < 2:
        out["why"] = f"`{picked}` gives {len(starts)} forward: a step needs the next forward's start"
        return out
    spans = [(float(ev.get("ts") or 0.0), d, str(ev.get("cat", "")).lower() == "kernel") for ev, d in gpu]
    busy = _busy_intervals([(t, t + d) for t, d, _ in spans])
    # kernels alone: an asynchronous copy (vLLM stages the next step's inputs host-to-device during the step) keeps
    # the copy engine busy, not the SMs, and would hide the gaps between kernels
    busy_k = _busy_intervals([(t, t + d) for t, d, is_kernel in spans if is_kernel])
    host = sorted(((float(ev.get("ts") or 0.0), float(ev.get("ts") or 0.0) + float(ev.get("dur") or 0.0),
                    str(ev.get("name", "?")))
                   for ev in events
                   if isinstance(ev, dict) and ev.get("ph") == "X" and str(ev.get("cat", "")).lower() in HOST_CATEGORIES),
                  key=lambda h: h[0])
    gpu_ts = [t for t, _, _ in spans]
    steps = []
    j = 0
    for i, (t0, t1) in enumerate(zip(starts, starts[1:])):
        while j < len(gpu) and gpu_ts[j] < t0:
            j += 1
        kernels: dict[str, list[float]] = {}  # name -> [us, launches] of the GPU events that started in the step
        while j < len(gpu) and gpu_ts[j] < t1:
            rec = kernels.setdefault(str(gpu[j][0].get("name", "?")), [0.0, 0])
            rec[0] += gpu[j][1]
            rec[1] += 1
            j += 1
        families: dict[str, float] = {}
        for name, (us, _) in kernels.items():
            fam = _family(name)
            families[fam] = families.get(fam, 0.0) + us
        b = sum(_overlap(s, e, t0, t1) for s, e in busy)
        bk = sum(_overlap(s, e, t0, t1) for s, e in busy_k)
        gaps = []  # idle stretches of the step: between busy intervals, clipped to [t0, t1)
        cursor = t0
        for s, e in busy:
            if e <= t0 or s >= t1:
                continue
            if s > cursor:
                gaps.append((cursor, s))
            cursor = max(cursor, e)
        if cursor < t1:
            gaps.append((cursor, t1))
        big = [(s, e) for s, e in gaps if e - s >= gap_us]
        in_gaps: dict[str, float] = {}
        for s, e in big:
            for h0, h1, name in host:
                if h0 >= e:
                    break
                ov = _overlap(h0, h1, s, e)
                if ov > 0:
                    in_gaps[name] = in_gaps.get(name, 0.0) + ov
        syncs = [(h1 - h0, name) for h0, h1, name in host if t0 <= h0 < t1 and name in SYNC_CALLS]
        steps.append({"step": i, "wall_us": round(t1 - t0, 1), "busy_us": round(b, 1), "idle_us": round(t1 - t0 - b, 1),
                      "kernel_idle_us": round(t1 - t0 - bk, 1),
                      "gaps": len(big), "idle_in_gaps_us": round(sum(e - s for s, e in big), 1),
                      "host_in_gaps_us": {k: round(v, 1) for k, v in sorted(in_gaps.items(), key=lambda kv: -kv[1])},
                      "host_sync_us": round(sum(d for d, _ in syncs), 1), "host_syncs": len(syncs),
                      "families_us": {k: round(v, 1) for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
                      "kernels": {k: {"us": round(v[0], 1), "launches": v[1]} for k, v in kernels.items()}})
    out["steps"] = steps
    names = sorted({n for s in steps for n in s["host_in_gaps_us"]})
    med = {k: round(statistics.median(s[k] for s in steps), 1)
           for k in ("wall_us", "busy_us", "idle_us", "kernel_idle_us", "idle_in_gaps_us", "host_sync_us")}
    med["gaps"] = statistics.median(s["gaps"] for s in steps)
    med["host_syncs"] = statistics.median(s["host_syncs"] for s in steps)
    in_gaps = {n: round(statistics.median(s["host_in_gaps_us"].get(n, 0.0) for s in steps), 1) for n in names}
    med["host_in_gaps_us"] = dict(sorted(((n, v) for n, v in in_gaps.items() if v > 0), key=lambda kv: -kv[1]))
    fams = {f: round(statistics.median(s["families_us"].get(f, 0.0) for s in steps), 1)
            for f in {f for s in steps for f in s["families_us"]}}
    med["families_us"] = dict(sorted(((f, v) for f, v in fams.items() if v > 0), key=lambda kv: (-kv[1], kv[0])))
    kern = []
    for n in {n for s in steps for n in s["kernels"]}:
        us = statistics.median(s["kernels"].get(n, {}).get("us", 0.0) for s in steps)
        if us > 0:
            kern.append({"name": n, "family": _family(n), "us": round(us, 1),
                         "launches": statistics.median(s["kernels"].get(n, {}).get("launches", 0) for s in steps)})
    med["kernels"] = sorted(kern, key=lambda k: (-k["us"], k["name"]))
    out["median"] = med
    return out


def step_summary(path: Path, layers: int, draft: bool = False, gap_us: float = 50.0) -> dict[str, Any]:
    """What a --profile record keeps of ``forward_steps``: the kernel, the step count and the medians, without the
    per-step rows. ``draft``: a speculative draft model ran in the same process (MTP), whose launches interleave with
    the target's, so the forwards cannot be told apart: no steps."""
    if draft:
        return {"trace": path.name, "kernel": None, "layers": layers, "gap_us": gap_us, "steps": None, "median": None,
                "why": "MTP on: the draft model's launches interleave with the target's, so launch i is not layer i "
                       "mod the layer count"}
    r = forward_steps(path, layers, gap_us=gap_us)
    if r["median"] is not None:  # the families and the ten largest kernels of the median step
        r["median"] = {**r["median"], "kernels": r["median"]["kernels"][:10]}
    return {**r, "steps": None if r["steps"] is None else len(r["steps"])}
