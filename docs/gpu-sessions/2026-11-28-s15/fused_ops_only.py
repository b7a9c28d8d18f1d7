"""Run a script or module that imports sglang.srt.layers.gemma4_fused_ops on a host without sglang's dependencies.

Session 15's last 6 device minutes had no room for the engine bundles: this loads the patched tree's
python/sglang/srt/layers/gemma4_fused_ops.py (it needs only torch and triton) under empty stand-in parent packages,
so `from sglang.srt.layers import gemma4_fused_ops` works and sglang's own __init__ (transformers, the lang API,
...) never runs. Anything else from sglang fails to import, loudly.

    cd TREE && python fused_ops_only.py benchmark/kernels/gemma4/bench_gemma4_qkv_rmsnorm.py --out x.json
    cd TREE && python fused_ops_only.py -m pytest -q test/srt/layers/test_gemma4_qkv_rmsnorm_per_head_gpu.py
"""

import importlib.util
import runpy
import sys
import types
from pathlib import Path

path = Path("python/sglang/srt/layers/gemma4_fused_ops.py").resolve()
if not path.is_file():
    sys.exit(f"{path}: run this from a patched SGLang tree")
for name in ("sglang", "sglang.srt", "sglang.srt.layers"):
    pkg = types.ModuleType(name)
    pkg.__path__ = []  # a package with nothing else in it
    sys.modules[name] = pkg
spec = importlib.util.spec_from_file_location("sglang.srt.layers.gemma4_fused_ops", path)
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
sys.modules["sglang.srt.layers"].gemma4_fused_ops = mod
if len(sys.argv) > 2 and sys.argv[1] == "-m":
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
