# One-off listing (session 14): the kernels around a decode step boundary with the host call that launched each
# (by correlation id) and the long host calls in that window. Usage: python decode_boundary.py TRACE.json.gz
import sys, json, gzip, collections
from pathlib import Path
t = json.load(gzip.open(sys.argv[1]))
E_ = t["traceEvents"]
cats = collections.Counter(e.get("cat") for e in E_)
print(cats.most_common(12))
gpu = sorted([e for e in E_ if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")], key=lambda e: e["ts"])
rt = {e["args"].get("correlation"): e for e in E_ if e.get("cat") == "cuda_runtime" and "args" in e}
att = [i for i, e in enumerate(gpu) if e["name"] == "_fwd_grouped_kernel_stage1"]
st = att[::30]
k = len(st) // 2
seg = gpu[st[k] - 60: st[k] + 5]
t0 = seg[0]["ts"]
for e in seg:
    r = rt.get(e["args"].get("correlation"))
    print(f"{e['ts']-t0:9.1f} dur {e['dur']:7.1f}  launched {((r['ts']-t0) if r else float('nan')):9.1f} by {r['name'][:22] if r else '-':22s} {e['name'][:70]}")
print("-----")
# CPU events in the window between the last ahead-launch and the graph launch
gl = [e for e in E_ if e.get("cat") == "cuda_runtime" and e["name"] == "cudaGraphLaunch"]
gl.sort(key=lambda e: e["ts"])
durs = [e["dur"] for e in gl]
import statistics
print("cudaGraphLaunch calls", len(gl), "median dur us", statistics.median(durs), "max", max(durs))
lo, hi = t0 - 10514.7, t0 + 1300
cpu = sorted([e for e in E_ if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation", "cuda_runtime", "cuda_driver", "python_function") and lo <= e["ts"] <= hi], key=lambda e: e["ts"])
tids = collections.Counter((e["pid"], e["tid"]) for e in cpu)
print(tids)
for e in cpu:
    if e["dur"] > 100: print(f"{e['ts']-t0:9.1f} dur {e['dur']:8.1f} {e.get('cat'):14s} tid {e['tid']} {e['name'][:90]}")
