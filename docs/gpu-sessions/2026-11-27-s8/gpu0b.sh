#!/usr/bin/env bash
# Session 8, by hand during the lease, GPU 0 once its track was done: unpatched sglang on the same random-init E4B
# (chat, long-prefill-7k, parity answers), its parity against vLLM and sglang-patched of this lease; then the
# reference check of the 26B-A4B parity records once the 26B-A4B run has written them.
set -u
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; cd /tmp/repo
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
left() { echo $(( $(cat /tmp/deadline) - $(date +%s) )); }
U() { local t; t=$(left); if [ "$t" -lt 100 ]; then log "skipped (deadline): $*"; return 124; fi; $PY -m harness "$@"; }
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time; started by hand on GPU 0 after its track"
CUDA_VISIBLE_DEVICES=0 U compare -m E4B --gpus 0 --model-path /tmp/rinit/E4B --parity --engines sglang -s chat,long-prefill-7k \
  --num-prompts 32 --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/F-E4B-sglang.log 2>&1; log "F E4B sglang rc=$?"
S=$(ls -t /tmp/runs/*-E4B-*/evals/generations-sglang__mtp-off* 2>/dev/null | head -1)
A=$(ls -t /tmp/runs/*-E4B-*/evals/generations-vllm__mtp-off* 2>/dev/null | head -1)
B=$(ls -t /tmp/runs/*-E4B-*/evals/generations-sglang-patched__mtp-off* 2>/dev/null | head -1)
if [ -n "$S" ]; then
  HARNESS_RUNS=/tmp/runs U parity --from-generations $S --from-generations $B --a sglang --b sglang-patched --model E4B \
    --out /tmp/runs/parity/parity-E4B-sglang-vs-sglang-patched.json > $L/F-E4B-parity.log 2>&1
  HARNESS_RUNS=/tmp/runs U parity --from-generations $A --from-generations $S --a vllm --b sglang --model E4B \
    --out /tmp/runs/parity/parity-E4B-vllm-vs-sglang.json >> $L/F-E4B-parity.log 2>&1; log "F E4B parity rc=$?"
fi
while ! grep -q "A 26B rc" $L/plan.log; do sleep 2; done
R=$(ls /tmp/runs/parity/parity-*26B-A4B*.json /tmp/runs/*-26B-A4B-*/evals/parity-*-mtp-off.json 2>/dev/null | grep -v reference)
log "26B parity records: $(echo $R | tr '\n' ' ')"
[ -n "$R" ] && { CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-reference $R --model-path /tmp/rinit/26B-A4B --env sglang \
  > $L/R-26B-reference.log 2>&1; log "R 26B reference rc=$?"; }
log "gpu0b done"
