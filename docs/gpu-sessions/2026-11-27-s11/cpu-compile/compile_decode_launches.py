"""Record the Triton decode-attention launches of SGLang's `decode_attention_fwd` on CPU for Gemma-4 26B-A4B's
decode (32 sequences; sliding layers: 16 q / 8 kv heads, head_dim 256; full layers: 16 q / 2 kv heads, head_dim
512; the Triton backend's dtypes: kv_indptr int32, kv_indices int64, fp32 logits), then compile each launch for
sm_90a with the recorded specialisation and print ptxas's registers and stack (no GPU). Run from the patched
tree's root with its `python/` and the CPU stubs on PYTHONPATH, as compile_moe_launches.py."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_moe_launches as M  # noqa: E402  (signature, ptxas)
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

import sglang.srt.layers.attention.triton_ops.decode_attention as da  # noqa: E402


class Rec:
    def __init__(self, fn):
        self.fn, self.launches = fn, []

    def __getitem__(self, grid):
        return lambda *a, **k: self.launches.append((grid, a, dict(k)))


def run(name, heads, kv_heads, d, bs=32, ctx=1024, splits=8):
    recs = {n: Rec(getattr(da, n)) for n in ("_fwd_grouped_kernel_stage1", "_fwd_kernel_stage1", "_fwd_kernel_stage2")}
    saved = {n: getattr(da, n) for n in recs}
    for n, r in recs.items():
        setattr(da, n, r)
    try:
        q = torch.empty(bs, heads, d, dtype=torch.bfloat16)
        kb = torch.empty(bs * ctx + 16, kv_heads, d, dtype=torch.bfloat16)
        o = torch.empty(bs, heads, d, dtype=torch.bfloat16)
        kv_indptr = torch.arange(bs + 1, dtype=torch.int32) * ctx
        kv_indices = torch.arange(bs * ctx, dtype=torch.int64)
        logits = torch.empty(bs, heads, splits, d, dtype=torch.float32)
        lse = torch.empty(bs, heads, splits, dtype=torch.float32)
        nsplits = torch.full((bs,), splits, dtype=torch.int32)
        da.decode_attention_fwd(q, kb, kb, o, kv_indptr, kv_indices, logits, lse, nsplits, splits, 1.0, 1.0, 1.0)
    finally:
        for n, fn in saved.items():
            setattr(da, n, fn)
    for n, r in recs.items():
        for grid, args, kw in r.launches:
            opts = {k: kw.pop(k) for k in ("num_warps", "num_stages") if k in kw}
            sig, const, attrs = M.signature(r.fn, args, kw)
            ck = triton.compile(ASTSource(r.fn, sig, constexprs=const, attrs=attrs), target=GPUTarget("cuda", 90, 32),
                                options=opts)
            regs, stack = M.ptxas(ck.asm["ptx"], f"decode_{name}_{n}")
            print(dict(layer=name, kernel=n, opts=opts, regs=regs, stack=stack, shared=ck.metadata.shared), flush=True)


if __name__ == "__main__":
    run("sliding", 16, 8, 256)
    run("full", 16, 2, 512)
