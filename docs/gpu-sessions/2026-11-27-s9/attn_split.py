"""Split the Triton extend-attention kernel time of a SGLang rank-0 trace by layer type (session 9).

Gemma-4 26B-A4B has 30 layers, five sliding-window layers then one full-attention layer, repeated; SGLang runs one
`_fwd_kernel` launch per layer per prefill forward, in layer order, so launch i belongs to layer i % 30 and is a
full-attention layer when (i % 30) % 6 == 5. Usage: python attn_split.py TRACE.json.gz [...]
"""
import collections
import gzip
import json
import sys

for path in sys.argv[1:]:
    events = json.load(gzip.open(path))["traceEvents"]
    kernels = sorted((e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_kernel")),
                     key=lambda e: e["ts"])
    attn = [e for e in kernels if e["name"] == "_fwd_kernel"]
    split = collections.defaultdict(list)
    for i, e in enumerate(attn):
        split["full (head_dim 512)" if (i % 30) % 6 == 5 else "sliding (head_dim 256, window 1024)"].append(e["dur"])
    print(path)
    print(f"  _fwd_kernel launches: {len(attn)} ({len(attn) / 30:.0f} prefill forwards of 30 layers)")
    for k, v in sorted(split.items()):
        print(f"  {k:36s} {len(v):4d} launches {sum(v) / 1e6:7.3f} s  {sum(v) / len(v):8.0f} us per launch")
