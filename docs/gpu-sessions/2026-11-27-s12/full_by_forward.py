"""Per prefill forward of a SGLang rank-0 trace: the full-attention and sliding layers' `_fwd_kernel` time (session 12).

Same layer rule as session 9's attn_split.py (26B-A4B: launch i is layer i % 30, full when (i % 30) % 6 == 5). Prints,
per forward, the grid of its full-layer launches (sequences, heads, query blocks) and the mean time per launch of
either kind, so forwards that carry a chunked prompt's tail (a second sequence with a prefix) show apart from the
first, prefix-free one. Usage: python full_by_forward.py TRACE.json.gz
"""
import gzip
import json
import statistics
import sys

events = json.load(gzip.open(sys.argv[1]))["traceEvents"]
kernels = sorted((e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_kernel")),
                 key=lambda e: e["ts"])
attn = [e for e in kernels if e["name"] == "_fwd_kernel"]
print("forward  full grid        full ms/launch  sliding ms/launch")
for f in range(len(attn) // 30):
    layer = attn[f * 30:(f + 1) * 30]
    full = [e for i, e in enumerate(layer) if i % 6 == 5]
    sliding = [e for i, e in enumerate(layer) if i % 6 != 5]
    grid = full[0].get("args", {}).get("grid")
    print(f"{f:7d}  {str(grid):15s} {statistics.mean(e['dur'] for e in full) / 1e3:14.2f}"
          f"  {statistics.mean(e['dur'] for e in sliding) / 1e3:17.2f}")
