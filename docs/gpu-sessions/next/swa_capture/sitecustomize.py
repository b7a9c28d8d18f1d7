"""The sliding-layer question inside the server (sessions 9-10; plan16.sh).

The server's sliding-window launches of the Triton extend kernel take about 2.2-2.5x the isolated kernel on the
same shape (one 8000-token sequence: 5.7 ms in the server, 2.6 ms isolated, 4.6 ms isolated without a window;
swa_probe.py, run 20261127T195444Z-kernels-d11f). The window value and the server's argument list did not explain it.
This separates the server's own tensors from the server's environment.

Put this directory first on PYTHONPATH and set SWA_CAPTURE_DIR: every Python process that imports SGLang's
`extend_attention` module (the scheduler does) gets `extend_attention_fwd` wrapped. The first call of each kind
(sliding: sliding_window_size > 0; full: otherwise) with at least SWA_CAPTURE_MIN_TOKENS (4096) query tokens on a GPU
is timed inside the process, before the real call goes on:
  - "server": the call as the server made it, on its own tensors (the output buffer is written again with the
    same values; the kernel writes nothing else);
  - "clone": q, k and v copied to fresh contiguous tensors (same values, fresh layout);
  - "random": q, k and v replaced by seeded normal values of the same shapes (the server's data gone).
Each is the median of SWA_CAPTURE_REPS (20) CUDA-event timings. The record also keeps the shapes, strides, dtypes,
alignments, scalars and value statistics of the arguments, and the kernel's compiled variants (registers, spills,
warps, stages, shared memory) before and after, written to SWA_CAPTURE_DIR/capture-<pid>-<kind>.json.
Without SWA_CAPTURE_DIR nothing is installed.
"""

import os
import sys

_DIR = os.environ.get("SWA_CAPTURE_DIR")
_TARGET = "sglang.srt.layers.attention.triton_ops.extend_attention"


def _describe(x):
    import torch

    if isinstance(x, torch.Tensor):
        d = {"shape": list(x.shape), "stride": list(x.stride()), "dtype": str(x.dtype), "device": str(x.device),
             "contiguous": x.is_contiguous(), "ptr_mod_128": x.data_ptr() % 128, "numel": x.numel()}
        if x.is_floating_point() and 0 < x.numel() <= 1 << 26:  # q, k, v; not the KV pool (memory is tight)
            f = x.float()
            d.update(finite=bool(torch.isfinite(f).all()), absmax=float(f.abs().max()), std=float(f.std()))
        elif x.numel() and x.numel() <= 64:
            d["values"] = x.tolist()
        return d
    return repr(x)


def _variants(module):
    """The compiled variants of the extend kernel this process holds: Triton's per-device cache key, registers,
    spills, warps, stages and shared memory of each (Triton's cache layout is not an interface: best effort)."""
    try:
        out = []
        for dev in (getattr(module._fwd_kernel, "device_caches", None) or {}).values():
            for key, k in dev[0].items():
                md = getattr(k, "metadata", None)
                out.append({"key": repr(key)[:1500], "n_regs": getattr(k, "n_regs", None),
                            "n_spills": getattr(k, "n_spills", None), "num_warps": getattr(md, "num_warps", None),
                            "num_stages": getattr(md, "num_stages", None), "shared": getattr(md, "shared", None)})
        return out
    except Exception as e:
        return f"unavailable: {e!r}"


def _median_ms(fn, reps):
    import torch

    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def _capture(fn, module, kind, args, kw):
    import json
    import torch

    reps = int(os.environ.get("SWA_CAPTURE_REPS", "20"))
    torch.cuda.synchronize()
    rec = {"kind": kind, "pid": os.getpid(), "device": torch.cuda.get_device_name(),
           "args": [_describe(a) for a in args], "kwargs": {k: _describe(v) for k, v in kw.items()}}
    fn(*args, **kw)  # compiled and warm
    rec["variants_before"] = _variants(module)
    rec["server_ms"] = _median_ms(lambda: fn(*args, **kw), reps)
    q, k, v = args[0], args[1], args[2]
    clones = (q.clone(memory_format=torch.contiguous_format), k.clone(memory_format=torch.contiguous_format),
              v.clone(memory_format=torch.contiguous_format))
    rest = args[3:]
    fn(*clones, *rest, **kw)
    rec["clone_ms"] = _median_ms(lambda: fn(*clones, *rest, **kw), reps)
    g = torch.Generator(device=q.device).manual_seed(0)
    rand = tuple(torch.randn(t.shape, generator=g, device=t.device, dtype=torch.float32).to(t.dtype) for t in (q, k, v))
    fn(*rand, *rest, **kw)
    rec["random_ms"] = _median_ms(lambda: fn(*rand, *rest, **kw), reps)
    rec["variants_after"] = _variants(module)  # more entries: the copies or random values compiled another variant
    fn(*args, **kw)  # leave the server's output as the real call leaves it
    torch.cuda.synchronize()
    os.makedirs(_DIR, exist_ok=True)
    path = os.path.join(_DIR, f"capture-{os.getpid()}-{kind}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"[swa-capture] {kind}: server {rec['server_ms']:.3f} ms, clone {rec['clone_ms']:.3f} ms, "
          f"random {rec['random_ms']:.3f} ms -> {path}", file=sys.stderr, flush=True)


def _wrap(module):
    fn = module.extend_attention_fwd
    min_tokens = int(os.environ.get("SWA_CAPTURE_MIN_TOKENS", "4096"))
    done = set()

    def extend_attention_fwd(*args, **kw):
        q = args[0]
        window = kw.get("sliding_window_size", -1)
        kind = "sliding" if window is not None and window > 0 else "full"
        if kind not in done and getattr(q, "is_cuda", False) and q.shape[0] >= min_tokens:
            done.add(kind)
            try:
                _capture(fn, module, kind, args, kw)
            except Exception as e:  # a failed probe must not take the server down
                print(f"[swa-capture] {kind} failed: {e!r}", file=sys.stderr, flush=True)
        return fn(*args, **kw)

    module.extend_attention_fwd = extend_attention_fwd
    print(f"[swa-capture] wrapped {_TARGET}.extend_attention_fwd in pid {os.getpid()}", file=sys.stderr, flush=True)


if _DIR:
    import importlib.abc
    import importlib.util

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != _TARGET:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_wrap(module):
                exec_module(module)
                _wrap(module)

            spec.loader.exec_module = exec_and_wrap
            return spec

    sys.meta_path.insert(0, _Finder())
