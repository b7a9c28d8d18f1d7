"""Compile SGLang's extend-attention _fwd_kernel for sm_90a without a GPU (triton 3.6 + its ptxas -v) in the
argument specialisations seen in the server (capture-9001) and in the isolated probe (capture-26088), and in
variants that change one difference at a time. Prints registers and spill bytes per variant."""
import sys, subprocess, re, os, json, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
sys.path.insert(0, os.path.dirname(__file__))
import kern  # written by extract_kernel.py (pristine or 0023 tree: the session-11 server kernel)

PARAMS = list(kern._fwd_kernel.arg_names)
PTXAS = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/ptxas")

def compile_variant(name, *, qo="*i32", window_ptr=False, sm_scale_one=False, BLOCK_M=128, BLOCK_N=64, warps=8, stages=1,
                    window=1024, D=256, stride_q_div=True):
    sig = {}
    const = {}
    ptr_types = dict(Q_Extend="*bf16", K_Extend="*bf16", V_Extend="*bf16", O_Extend="*bf16", K_Buffer="*bf16",
                     V_Buffer="*bf16", qo_indptr=qo, kv_indptr="*i32", kv_indices="*i64")
    for p in PARAMS:
        if p in ptr_types:
            sig[p] = ptr_types[p]
        elif p in ("mask_ptr", "mask_indptr", "sink_ptr"):
            sig[p] = "constexpr"; const[(PARAMS.index(p),)] = None
        elif p == "window_kv_offset_ptr":
            if window_ptr:
                sig[p] = "*i32"
            else:
                sig[p] = "constexpr"; const[(PARAMS.index(p),)] = None
        elif p == "sm_scale":
            if sm_scale_one:
                sig[p] = "constexpr"; const[(PARAMS.index(p),)] = 1
            else:
                sig[p] = "fp32"
        elif p in ("k_scale", "v_scale"):
            sig[p] = "fp32"
        elif p.startswith("stride_") or p == "kv_group_num":
            sig[p] = "i32"
        else:
            sig[p] = "constexpr"
    cv = dict(SLIDING_WINDOW_SIZE=window, logit_cap=0.0, xai_temperature_len=-1, Lq=D, Lv=D, BLOCK_DMODEL=D, BLOCK_DPE=0,
              BLOCK_DV=D, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, USE_CUSTOM_MASK=False, IS_CAUSAL=True,
              SKIP_PREFIX_CUSTOM_MASK=True, STORE_TRANSPOSE=False, HAS_SINK=False)
    for k, v in cv.items():
        const[(PARAMS.index(k),)] = v
    # divisibility by 16 on every pointer and stride (as the capture's 'D' marks), kv_group_num not
    attrs = {}
    for i, p in enumerate(PARAMS):
        t = sig[p]
        if t.startswith("*") or (p.startswith("stride_")):
            attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(kern._fwd_kernel, sig, constexprs=const, attrs=attrs)
    ck = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    ptx = ck.asm["ptx"]
    ptx_path = os.path.join(tempfile.gettempdir(), f"extend_{name}.ptx")
    open(ptx_path, "w").write(ptx)
    r = subprocess.run([PTXAS, "-v", "--gpu-name", "sm_90a", ptx_path, "-o", "/dev/null"],
                       capture_output=True, text=True)
    info = r.stderr
    regs = re.search(r"Used (\d+) registers", info)
    sp = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", info)
    stack = re.search(r"(\d+) bytes stack frame", info)
    return dict(name=name, regs=int(regs.group(1)) if regs else None, spill_st=int(sp.group(1)) if sp else None,
                spill_ld=int(sp.group(2)) if sp else None, stack=int(stack.group(1)) if stack else None,
                shared=ck.metadata.shared)

if __name__ == "__main__":
    rows = []
    V = [
        ("probe (isolated, capture-26088)", {}),
        ("server (capture-9001)", dict(qo="*i64", window_ptr=True, sm_scale_one=True)),
        ("server but qo_indptr int32", dict(window_ptr=True, sm_scale_one=True)),
        ("probe + qo_indptr int64 only", dict(qo="*i64")),
        ("probe + window_kv_offset ptr only", dict(window_ptr=True)),
        ("probe + sm_scale constexpr 1 only", dict(sm_scale_one=True)),
        ("server, tile 64x64 w4 s2", dict(qo="*i64", window_ptr=True, sm_scale_one=True, BLOCK_M=64, BLOCK_N=64, warps=4, stages=2)),
        ("server, tile 64x64 w8 s1", dict(qo="*i64", window_ptr=True, sm_scale_one=True, BLOCK_M=64, BLOCK_N=64, warps=8, stages=1)),
        ("server, tile 32x64 w4 s2", dict(qo="*i64", window_ptr=True, sm_scale_one=True, BLOCK_M=32, BLOCK_N=64, warps=4, stages=2)),
        ("server, tile 64x32 w4 s2", dict(qo="*i64", window_ptr=True, sm_scale_one=True, BLOCK_M=64, BLOCK_N=32, warps=4, stages=2)),
        ("full D512 server tile 32x64 w8 s1", dict(qo="*i64", sm_scale_one=True, BLOCK_M=32, BLOCK_N=64, window=-1, D=512)),
    ]
    for i, (label, kw) in enumerate(V):
        r = compile_variant(f"v{i}", **kw); r["label"] = label; rows.append(r)
        print(f"{label:40s} regs {r['regs']:4} spill st/ld {r['spill_st']:6}/{r['spill_ld']:6} stack {r['stack']:6} shared {r['shared']}", flush=True)
    json.dump(rows, open("rows.json", "w"), indent=1)
