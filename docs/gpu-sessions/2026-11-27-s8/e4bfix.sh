#!/usr/bin/env bash
# Session 8, by hand during the lease: vLLM 0.22.0 refused the random-init E4B checkpoint ("Following weights were
# not initialized from checkpoint": self_attn.k_norm.weight of the 18 KV-shared layers 24-41, which transformers'
# Gemma-4 does not save). Add those tensors (ones, the shape of the same layer type's k_norm; a KV-shared layer
# computes no keys, so they are never read) as one extra shard, then run vLLM on E4B alone and compare its stored
# greedy answers with sglang-patched's of this lease, then the reference check of that record.
set -u
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; cd /tmp/repo
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
left() { echo $(( $(cat /tmp/deadline) - $(date +%s) )); }
U() { local t; t=$(left); if [ "$t" -lt 100 ]; then log "skipped (deadline): $*"; return 124; fi; $PY -m harness "$@"; }
PYTHONPATH=/tmp/site-sglang $PY - > $L/E-knorm.log 2>&1 <<'PYEOF'
import json, torch
from pathlib import Path
from safetensors import safe_open
from safetensors.torch import save_file
d = Path("/tmp/rinit/E4B"); idx = json.loads((d / "model.safetensors.index.json").read_text()); wm = idx["weight_map"]
cfg = json.loads((d / "config.json").read_text())["text_config"]
n, shared, types = cfg["num_hidden_layers"], cfg["num_kv_shared_layers"], cfg["layer_types"]
key = lambda i: next(k for k in wm if k.endswith(f"layers.{i}.self_attn.k_norm.weight"))
add = {}
for i in range(n - shared, n):
    if any(k.endswith(f"layers.{i}.self_attn.k_norm.weight") for k in wm):
        continue
    j = max(j for j in range(n - shared) if types[j] == types[i])
    src = key(j)
    with safe_open(str(d / wm[src]), "pt") as f:
        t = f.get_tensor(src)
    add[src.replace(f"layers.{j}.", f"layers.{i}.")] = torch.ones_like(t)
name = "model-kv-shared-k-norm.safetensors"
save_file(add, str(d / name), metadata={"format": "pt"})
for k in add: wm[k] = name
(d / "model.safetensors.index.json").write_text(json.dumps(idx, indent=2))
print(json.dumps({"added": sorted(add), "shapes": sorted({tuple(v.shape) for v in add.values()})}))
PYEOF
log "E4B k_norm added rc=$?: $(tail -1 $L/E-knorm.log | cut -c1-160)"
while ! grep -q "B E4B rc" $L/plan.log; do sleep 2; done
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time; started by hand after the E4B run whose vLLM start failed"
CUDA_VISIBLE_DEVICES=0 U compare -m E4B --gpus 0 --model-path /tmp/rinit/E4B --parity --engines vllm -s chat,long-prefill-7k \
  --num-prompts 32 --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/E-E4B-vllm.log 2>&1; log "E E4B vllm rc=$?"
A=$(ls -t /tmp/runs/*-E4B-*/evals/generations-vllm__mtp-off* 2>/dev/null | head -1)
B=$(ls -t /tmp/runs/*-E4B-*/evals/generations-sglang-patched__mtp-off* 2>/dev/null | head -1)
log "E4B generations: $A | $B"
if [ -n "$A" ] && [ -n "$B" ]; then
  HARNESS_RUNS=/tmp/runs U parity --from-generations $A --from-generations $B --a vllm --b sglang-patched --model E4B \
    --out /tmp/runs/parity/parity-E4B-vllm-vs-sglang-patched.json > $L/E-E4B-parity.log 2>&1; log "E E4B parity rc=$?"
  CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-reference /tmp/runs/parity/parity-E4B-vllm-vs-sglang-patched.json \
    --model-path /tmp/rinit/E4B --env sglang > $L/R-E4B-reference.log 2>&1; log "R E4B reference rc=$?"
fi
log "e4bfix done"
