"""Compile the patched tree's _fwd_kernel for sm_90a (no GPU) in the full-attention layer's server specialisation
(head_dim 512, no window, (32, 64, 8 warps, 1 stage), int64 qo_indptr, 32-bit token offsets) with kv_indices int64
(as the Triton backend passes them) and int32; report ptxas resources and count SASS instructions."""
import os, re, subprocess, sys, tempfile, collections
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import sglang.srt.layers.attention.triton_ops.extend_attention as ea

BIN = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")

def compile_variant(kv_idx, D=512, BM=32, BN=64, warps=8, stages=1, window=-1, i32=True):
    names = list(ea._fwd_kernel.arg_names)
    sig, const, attrs = {}, {}, {}
    ptrs = dict(Q_Extend="*bf16", K_Extend="*bf16", V_Extend="*bf16", O_Extend="*bf16", K_Buffer="*bf16",
                V_Buffer="*bf16", qo_indptr="*i64", kv_indptr="*i32", kv_indices=kv_idx)
    cv = dict(mask_ptr=None, mask_indptr=None, sink_ptr=None, window_kv_offset_ptr=None, sm_scale=1,
              SLIDING_WINDOW_SIZE=window, logit_cap=0.0, xai_temperature_len=-1, Lq=D, Lv=D, BLOCK_DMODEL=D,
              BLOCK_DPE=0, BLOCK_DV=D, BLOCK_M=BM, BLOCK_N=BN, USE_CUSTOM_MASK=False, IS_CAUSAL=True,
              SKIP_PREFIX_CUSTOM_MASK=True, STORE_TRANSPOSE=False, HAS_SINK=False, TOKEN_OFFSETS_I32=i32,
              SWA_LOOP_BOUND=False)
    for i, p in enumerate(names):
        if p in ptrs:
            sig[p] = ptrs[p]; attrs[(i,)] = [["tt.divisibility", 16]]
        elif p in cv:
            sig[p] = "constexpr"; const[(i,)] = cv[p]
        elif p in ("k_scale", "v_scale"):
            sig[p] = "fp32"
        else:
            sig[p] = "i32"
            if p.startswith("stride_"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    ck = triton.compile(ASTSource(ea._fwd_kernel, sig, constexprs=const, attrs=attrs),
                        target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    d = tempfile.mkdtemp()
    ptx = os.path.join(d, "k.ptx"); open(ptx, "w").write(ck.asm["ptx"])
    cubin = os.path.join(d, "k.cubin")
    r = subprocess.run([os.path.join(BIN, "ptxas"), "-v", "--gpu-name", "sm_90a", ptx, "-o", cubin], capture_output=True, text=True)
    regs = re.search(r"Used (\d+) registers", r.stderr); stack = re.search(r"(\d+) bytes stack frame", r.stderr)
    sass = subprocess.run([os.path.join(BIN, "nvdisasm"), "-c", cubin], capture_output=True, text=True).stdout
    ops = [m.group(1) for m in re.finditer(r"^\s+/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", sass, re.M)]
    return dict(regs=int(regs.group(1)), stack=int(stack.group(1)) if stack else None, n=len(ops),
                ops=collections.Counter(o.split(".")[0] for o in ops), wide=sum(1 for o in ops if ".WIDE" in o or o.startswith("IADD3.X") or ".X" in o),
                shared=ck.metadata.shared)

for label, kw in [("full D512 32x64 w8 s1, kv_indices i64", dict(kv_idx="*i64")),
                  ("full D512 32x64 w8 s1, kv_indices i32", dict(kv_idx="*i32")),
                  ("sliding D256 64x64 w8 s1, kv_indices i64", dict(kv_idx="*i64", D=256, BM=64, window=1024)),
                  ("sliding D256 64x64 w8 s1, kv_indices i32", dict(kv_idx="*i32", D=256, BM=64, window=1024))]:
    r = compile_variant(**kw)
    top = ", ".join(f"{k} {v}" for k, v in r["ops"].most_common(8))
    print(f"{label:42s} regs {r['regs']} stack {r['stack']} sass {r['n']} 64-bit-ish {r['wide']} | {top}", flush=True)
