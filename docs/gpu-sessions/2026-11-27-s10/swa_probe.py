"""Session 9's sliding-layer question, at kernel level: why did the server's sliding-window launches of
`_fwd_kernel` take 5.69 ms on one 8000-token sequence without a prefix (lease 1, run
20261127T175606Z-26B-A4B-d523) when 0022's bench timed the same shape at 2.66 ms in isolation?

Times SGLang's `extend_attention_fwd` (the patched tree's, first on PYTHONPATH) on that shape, 26B-A4B's sliding
layers on one GPU (16 q / 8 kv heads, head_dim 256), with the windows the server and the bench passed (1024, which
is `config.sliding_window` and what the server passes; 1023, what the bench passed) and without a window (full
causal, what the layer would cost if the window did not cut work). It also runs the server's argument list:
`layer.scaling` as sm_scale and q as a strided view into a fused qkv buffer. Inputs come from 0016's
`test/srt/layers/extend_attention_cases.py` in the tree.

Run through the harness, so the record is a kernel bench of the run:
    harness kernels run --name swa-probe --tree TREE -- {python} /tmp/repo/docs/gpu-sessions/next/swa_probe.py --out {out}
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch
import triton.testing

import sglang.srt.layers.attention.triton_ops.extend_attention as ea


def _cases():
    path = Path.cwd() / "test/srt/layers/extend_attention_cases.py"  # `harness kernels run` runs in the tree
    spec = importlib.util.spec_from_file_location("_extend_attention_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time(fn, rep_ms: int) -> float:
    return float(triton.testing.do_bench(fn, warmup=25, rep=rep_ms, return_mode="median")) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--ext", type=int, default=8000)
    ap.add_argument("--rep-ms", type=int, default=200)
    args = ap.parse_args()
    C = _cases()
    rows = []
    for window in (1024, 1023, -1):
        shape = C.Shape(name=f"26b sliding 1x{args.ext} window {window}", bs=1, ext=args.ext, prefix=0,
                        window=window, heads=16, kv_heads=8, head_dim=256, model="gemma-4-26B-A4B (TP=1)")
        case = C.build_case(shape, "cuda")
        out = torch.empty_like(case["q"])
        plain_us = _time(lambda: C.run_extend(ea, case, out), args.rep_ms)
        # the server's call: q a view into a fused [T, (16 + 8 + 8) * 256] qkv buffer, sm_scale passed explicitly
        T, H, KH, D = case["q"].shape[0], 16, 8, 256
        qkv = torch.empty(T, (H + 2 * KH) * D, dtype=case["q"].dtype, device="cuda")
        qkv[:, : H * D] = case["q"].reshape(T, H * D)
        q_view = qkv[:, : H * D].view(T, H, D)
        server_call = lambda: ea.extend_attention_fwd(  # noqa: E731
            q_view, case["k_ext"].contiguous(), case["v_ext"].contiguous(), out, case["k_buf"], case["v_buf"],
            case["qo_indptr"], case["kv_indptr"], case["kv_indices"], None, True, None, shape.ext, 1.0, 1.0,
            1.0 / D ** 0.5, sliding_window_size=window)
        server_us = _time(server_call, args.rep_ms)
        rows.append({"shape": shape.name, "window": window, "ext": shape.ext, "median_us_plain": round(plain_us, 2),
                     "median_us_server_call": round(server_us, 2)})
        print(rows[-1], flush=True)
    Path(args.out).write_text(json.dumps({
        "rows": rows, "columns": ["shape", "window", "ext", "median_us_plain", "median_us_server_call"],
        "device": torch.cuda.get_device_name(), "timing": "triton.testing.do_bench median",
        "question": "server 5.69 ms vs isolated 2.66 ms per sliding-layer launch (session 9)"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
