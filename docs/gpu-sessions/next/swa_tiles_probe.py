"""After patches 0024 and 0025: which SM90 tile, and the bounded sliding-window loop or not, should the
sliding-window layers' prefill use, now that their token offsets are 32-bit?

Session 11 compiled `_fwd_kernel` for sm_90a on a CPU (`../2026-11-27-s11/cpu-compile/`): with the server's 64-bit
offsets the stack frame (spills) was 2568 bytes for the (128, 64, 8 warps, 1 stage) tile SGLang 0.5.12 picks for
head_dim 256 on SM90, 1664 for (64, 64, 4, 2), 440 for (64, 64, 8, 1) and 336 for (32, 64, 4, 2); 0024 brings
(128, 64) to 1352. Upstream's main picks (64, 64) for head_dim 256 on SM90, where bounding the sliding-window KV
loop (sgl-project/sglang#34462; our 0022, which lost 24-57% with the (128, 64) tile, back as the opt-in 0025)
measured 1.72x at 8192 tokens on an H200.

Times the patched tree's `extend_attention_fwd` (first on PYTHONPATH) with an int64 qo_indptr, as the Triton backend
passes it, with 32-bit and 64-bit offsets (0024's switch), the loop bound off and on (0025's switch) and each tile
forced, on 26B-A4B's sliding layers at
TP=1 (16 q / 8 kv heads, head_dim 256, window 1024): one 8000-token sequence; 4096 new tokens on a 4096-token
prefix (the window-truncated 1024 passed, as the backend does); 4 sequences of 1000. Checks every output against an
fp32 reference (extend_attention_cases.py's bf16 bound) and records Triton's registers and spills per variant.

    harness kernels run --name swa-tiles --tree TREE -- {python} /tmp/repo/docs/gpu-sessions/next/swa_tiles_probe.py --out {out}
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch
import triton
import triton.testing

import sglang.srt.layers.attention.triton_ops.extend_attention as ea

TILES = [(128, 64, 8, 1), (64, 64, 8, 1), (64, 64, 4, 2), (32, 64, 4, 2)]


def _cases():
    path = Path.cwd() / "test/srt/layers/extend_attention_cases.py"  # `harness kernels run` runs in the tree
    spec = importlib.util.spec_from_file_location("_extend_attention_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rep-ms", type=int, default=200)
    args = ap.parse_args()
    C = _cases()
    S, G = C.Shape, "gemma-4-26B-A4B (TP=1)"
    shapes = [S("sliding 1x8000", 1, 8000, 0, 1024, 16, 8, 256, G),
              S("sliding 4096 on 4096 prefix", 1, 4096, 4096, 1024, 16, 8, 256, G),
              S("sliding 4x1000", 4, 1000, 0, 1024, 16, 8, 256, G)]
    real = ea._get_block_sizes_for_extend_attention
    saved = ea._I32_TOKEN_OFFSETS, ea._SWA_LOOP_BOUND
    # patch 0026 bounds SM90's (64, 64, 8, 1) sliding prefill launch whatever the switch says: keep it off so that
    # "loop_bound False" rows are unbounded (session 12 ran this before 0026 existed)
    saved_tile = getattr(ea, "_SWA_PREFILL_TILE", None)
    if saved_tile is not None:
        ea._SWA_PREFILL_TILE = False
    rows = []
    try:
        for shape in shapes:
            case = C.build_case(shape, "cuda", dtype=torch.bfloat16, seed=0)
            case["qo_indptr"] = case["qo_indptr"].to(torch.int64)
            ref = C.reference(case)
            out = torch.empty_like(case["q"])
            for tile in TILES:
                def forced(Lq, Lv, *a, _tile=tile, **kw):
                    d, dpe, dv, *_ = real(Lq, Lv, *a, **kw)
                    return (d, dpe, dv, *_tile)
                ea._get_block_sizes_for_extend_attention = forced
                for flag, bound in ((False, False), (True, False), (False, True), (True, True)):
                    ea._I32_TOKEN_OFFSETS, ea._SWA_LOOP_BOUND = flag, bound
                    C.run_extend(ea, case, out)
                    torch.cuda.synchronize()
                    err = C.rel_err(out, ref)
                    ms = triton.testing.do_bench(lambda c=case, o=out: C.run_extend(ea, c, o), warmup=25, rep=args.rep_ms,
                                                 return_mode="median")
                    found = C.compiled_variants(ea, SLIDING_WINDOW_SIZE=1024, BLOCK_M=tile[0], BLOCK_N=tile[1],
                                                TOKEN_OFFSETS_I32=flag, SWA_LOOP_BOUND=bound)
                    regs, spills = found[-1] if found else (None, None)
                    rows.append(dict(shape=shape.name, tile="({},{},w{},s{})".format(*tile),
                                     offsets="i32" if flag else "i64", loop_bound=bound,
                                     median_us=round(ms * 1000.0, 2),
                                     rel_err=float(f"{err:.3e}"), regs=regs, spills=spills,
                                     err_check="ok" if err < C.BF16_REL_ERR_BOUND else f"error {err:.3e}"))
                    print(rows[-1], flush=True)
                ea._get_block_sizes_for_extend_attention = real
            del case, ref, out
            torch.cuda.empty_cache()
    finally:
        ea._get_block_sizes_for_extend_attention = real
        ea._I32_TOKEN_OFFSETS, ea._SWA_LOOP_BOUND = saved
        if saved_tile is not None:
            ea._SWA_PREFILL_TILE = saved_tile
    Path(args.out).write_text(json.dumps({
        "rows": rows,
        "columns": ["shape", "tile", "offsets", "loop_bound", "median_us", "rel_err", "regs", "spills", "err_check"],
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
        "dtype": "bfloat16", "qo_indptr": "int64",
        "timing": f"triton.testing.do_bench median, warmup 25 ms, rep {args.rep_ms} ms",
        "error_metric": "max|out-ref|/max|ref| vs fp32 torch reference",
    }, indent=2))
    return 0 if all(r["err_check"] == "ok" for r in rows) else 3


if __name__ == "__main__":
    raise SystemExit(main())
