"""Why does the full-attention layers' extend call slow down when a prompt's tail is chunked in with the next prompt?

Session 12's profile (`../2026-11-27-s12/full_by_forward.out`, 26B-A4B summarization, 32 x 8000-token prompts in
8192-token chunks): the full layers' `_fwd_kernel` (head_dim 512, 16 q / 2 kv heads, no window) takes 9.3 ms in the
one prefix-free forward and grows to 25.9 ms in forward 30, which carries the tail of one prompt (2432 new tokens on
a 5568-token prefix) and the head of the next (5760 new tokens). The last forward, that prompt's tail alone (2240 on
5760), takes 8.4 ms. The key-query work of forward 30 is about that of the first forward.

Times the patched tree's `extend_attention_fwd` (first on PYTHONPATH) in bf16 with an int64 qo_indptr, on:
  fresh 8000             one sequence, 8000 new tokens (the first forward);
  tail 2432 on 5568      forward 30's first sequence alone;
  head 5760              forward 30's second sequence alone;
  forward 30             both in one launch, as the server runs them;
  tail 2240 on 5760      the last forward;
each with the prefix's KV slots contiguous (as a fresh server allocates them) and shuffled, with the slot indices
(kv_indices) int64 as the Triton backend passes them and int32 (then the prefix loop's K/V addresses are 32-bit
arithmetic, as 0024 made the extend loop's), and with four tiles for head_dim 512 ((32, 64, 8, 1) is SM90's
default). So: is the two-sequence launch slower than its parts (grid or cache interplay), is the prefix loop slower
per key than the extend loop and is that its 64-bit addressing, does the slot layout matter, does a tile help.
Checks every output against an fp32 reference.

    harness kernels run --name full-prefix --tree TREE -- {python} /tmp/repo/docs/gpu-sessions/next/full_prefix_probe.py --out {out}
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch
import triton
import triton.testing

import sglang.srt.layers.attention.triton_ops.extend_attention as ea

TILES = [(32, 64, 8, 1), (32, 32, 4, 2), (64, 32, 8, 1), (16, 64, 4, 2)]
H, KH, D = 16, 2, 512  # 26B-A4B full-attention layer at TP=1
DEV, DTYPE = "cuda", torch.bfloat16


def _cases():
    path = Path.cwd() / "test/srt/layers/extend_attention_cases.py"  # `harness kernels run` runs in the tree
    spec = importlib.util.spec_from_file_location("_extend_attention_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(C, seqs, contiguous, seed=0, index_dtype=torch.int64):
    """One extend batch of sequences [(prefix, ext), ...] in one paged buffer, as the Triton backend passes it
    (extend_attention_cases.build_batch, patch 0027: prefix slots scattered over the buffer); `contiguous` lays the
    prefix rows out in slot order instead. Returns (case dict for run_extend, fp32 reference [T, H, D])."""
    case, ref = C.build_batch(seqs, H, KH, D, -1, DEV, dtype=DTYPE, seed=seed)
    if contiguous:  # only the prefix rows are read from the buffer (the extend's K/V come from k_ext / v_ext)
        idx = case["kv_indices"]
        case["k_buf"], case["v_buf"] = case["k_buf"][idx], case["v_buf"][idx]
        case["kv_indices"] = torch.arange(len(idx), device=DEV)
    case["kv_indices"] = case["kv_indices"].to(index_dtype)
    return case, ref


SHAPES = {
    "fresh 8000": [(0, 8000)],
    "tail 2432 on 5568": [(5568, 2432)],
    "head 5760": [(0, 5760)],
    "forward 30": [(5568, 2432), (0, 5760)],
    "tail 2240 on 5760": [(5760, 2240)],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rep-ms", type=int, default=50)
    args = ap.parse_args()
    C = _cases()
    real = ea._get_block_sizes_for_extend_attention
    rows = []
    try:
        for name, seqs in SHAPES.items():
            for contiguous, index_dtype in ((True, torch.int64), (True, torch.int32), (False, torch.int64),
                                            (False, torch.int32)):
                case, ref = build(C, seqs, contiguous, index_dtype=index_dtype)
                out = torch.empty_like(case["q"])
                base = dict(shape=name, seqs=seqs, slots="contiguous" if contiguous else "shuffled",
                            kv_indices=str(index_dtype).replace("torch.", ""))
                for tile in TILES:
                    def forced(Lq, Lv, *a, _tile=tile, **kw):
                        d, dpe, dv, *_ = real(Lq, Lv, *a, **kw)
                        return (d, dpe, dv, *_tile)

                    ea._get_block_sizes_for_extend_attention = forced
                    try:
                        C.run_extend(ea, case, out)
                        torch.cuda.synchronize()
                        err = C.rel_err(out, ref)
                        ms = triton.testing.do_bench(lambda: C.run_extend(ea, case, out), warmup=25, rep=args.rep_ms,
                                                     return_mode="median")
                        row = dict(base, tile="({},{},w{},s{})".format(*tile), median_us=round(ms * 1000.0, 2),
                                   rel_err=float(f"{err:.3e}"),
                                   err_check="ok" if err < C.BF16_REL_ERR_BOUND else f"error {err:.3e}")
                    except Exception as exc:  # noqa: BLE001 - a tile that does not compile (shared memory)
                        row = dict(base, tile="({},{},w{},s{})".format(*tile), median_us=None, rel_err=None,
                                   err_check=f"{type(exc).__name__}: {str(exc)[:200]}")
                    finally:
                        ea._get_block_sizes_for_extend_attention = real
                    rows.append(row)
                    print(row, flush=True)
                del case, ref, out
                torch.cuda.empty_cache()
    finally:
        ea._get_block_sizes_for_extend_attention = real
    Path(args.out).write_text(json.dumps({
        "rows": rows,
        "columns": ["shape", "seqs", "slots", "kv_indices", "tile", "median_us", "rel_err", "err_check"],
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
        "dtype": "bfloat16", "qo_indptr": "int64", "heads": [H, KH, D],
        "timing": f"triton.testing.do_bench median, warmup 25 ms, rep {args.rep_ms} ms",
        "error_metric": "max|out-ref|/max|ref| vs fp32 torch reference",
    }, indent=2))
    # a tile that does not compile is a finding, not a failure; a wrong output is
    return 0 if all(r["err_check"] == "ok" or r["median_us"] is None for r in rows) else 3


if __name__ == "__main__":
    raise SystemExit(main())
