"""Record fused_moe_kernel's two launches of fused_experts_impl on CPU (26B-A4B shape, M tokens), then compile each
for sm_90a with the recorded specialisation and report ptxas's registers / stack (no GPU)."""
import sys, os, re, subprocess, tempfile
sys.path.insert(0, "test/srt/layers")  # run from the patched tree's root (0023 adds this test module)
import pytest
mp = pytest.MonkeyPatch()
import torch
import test_moe_default_config_scaled as T
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

DT = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.int32: "i32", torch.int64: "i64"}

def signature(fn, args, kwargs):
    sig, const, attrs = {}, {}, {}
    for i, p in enumerate(fn.params):
        v = args[i] if i < len(args) else kwargs.get(p.name, p.default)
        if p.is_constexpr:
            sig[p.name] = "constexpr"; const[(i,)] = v; continue
        if v is None:
            sig[p.name] = "constexpr"; const[(i,)] = None
        elif isinstance(v, torch.Tensor):
            sig[p.name] = "*" + DT[v.dtype]; attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, bool):
            sig[p.name] = "i1"
        elif isinstance(v, int):
            if v == 1:
                sig[p.name] = "constexpr"; const[(i,)] = 1
            else:
                sig[p.name] = "i32" if -2**31 <= v < 2**31 else "i64"
                if v % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, float):
            sig[p.name] = "fp32"
        else:
            raise TypeError((p.name, type(v)))
    return sig, const, attrs

def ptxas(ptx_text, tag):
    bindir = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
    path = os.path.join(tempfile.gettempdir(), f"moe_{tag}.ptx"); open(path, "w").write(ptx_text)
    for exe in ("ptxas", "ptxas-blackwell"):
        r = subprocess.run([os.path.join(bindir, exe), "-v", "--gpu-name", "sm_90a", path, "-o", "/dev/null"], capture_output=True, text=True)
        if r.returncode == 0:
            regs = re.search(r"Used (\d+) registers", r.stderr); st = re.search(r"(\d+) bytes (?:stack frame|cumulative stack size)", r.stderr)
            return int(regs.group(1)), int(st.group(1)) if st else None
    return None, None

def main(M, scaled):
    mp.setattr(T.cfg_mod, "get_moe_configs", lambda *a, **k: None)
    mp.setattr(T.fm, "moe_align_block_size", T._torch_align)
    for flag in ("_is_cuda", "_is_hip", "_is_xpu", "_is_musa", "_has_vllm_ops"):
        mp.setattr(T.fm, flag, False, raising=False)
    rec = T._RecordingKernel(); mp.setattr(T.kern_mod, "fused_moe_kernel", rec)
    mp.setattr(T.fm, "moe_sum_reduce_triton", lambda x, out, scale: out.copy_(x.sum(dim=1) * scale), raising=False)
    E, H, I = 128, 2816, 704
    x, w, ids = T.cases.build_inputs(M, "cpu")
    w1 = torch.empty(E, 2 * I, H, dtype=torch.bfloat16, device="meta"); w2 = torch.empty(E, H, I, dtype=torch.bfloat16, device="meta")
    with T.cases.scaled_default(T.cfg_mod, scaled):
        T.fm.fused_experts_impl(x, w1, w2, w, ids, activation="gelu", filter_expert=False)
    mp.undo()
    fn = T.kern_mod.fused_moe_kernel
    out = []
    for j, (grid, args, kw) in enumerate(rec.launches):
        opts = {k: kw.pop(k) for k in ("num_warps", "num_stages") if k in kw}
        sig, const, attrs = signature(fn, args, kw)
        ck = triton.compile(ASTSource(fn, sig, constexprs=const, attrs=attrs), target=GPUTarget("cuda", 90, 32), options=opts)
        regs, stack = ptxas(ck.asm["ptx"], f"M{M}_{scaled}_{j}")
        tile = tuple(kw[k] for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M"))
        out.append(dict(M=M, scaled=scaled, gemm=("gate_up", "down")[j], tile=tile, opts=opts, regs=regs, stack=stack, shared=ck.metadata.shared))
        print(out[-1], flush=True)
    return out

if __name__ == "__main__":
    for M in (32, 8000):
        for scaled in (False, True):
            main(M, scaled)
