#!/usr/bin/env bash
# GPU plan for a 2-GPU lease (#10: 31B TP=2, all three engines, chat/summarization, greedy parity on seeded
# random-init weights; the fusion-off control last). Started detached by setup.sh; the shared part (environment, deadline watchdog,
# installs, patched tree) is plan-common.sh. Every GPU step is a harness command.
set -u
. /tmp/gpu/plan-common.sh
NOTE="host: 2 GPUs, this job alone on them; FlashInfer JIT builds (harness env warm-jit, CPU only) may have overlapped the first cells"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
export CUDA_VISIBLE_DEVICES=0,1
# CPU, in the background: the trtllm_comm nvcc builds both fusion-enabled servers would do at their first start
( U env warm-jit -e sglang-patched --tp 2 > $L/warm-jit-sglang.log 2>&1; log "warm-jit sglang-patched rc=$?"
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U env warm-jit -e vllm --tp 2 > $L/warm-jit-vllm.log 2>&1; log "warm-jit vllm rc=$?" ) > /dev/null 2>&1 &
TW=$!
$PY -m harness bench -e sglang -m 31B -s chat --dry-run > $L/synth-31B.log 2>&1; log "synth 31B rc=$?"
# GPU 0 while the vLLM parts arrive: seeded random 31B weights (recipe postnorm-v1)
W=()
if U model synth -m 31B -o /tmp/rinit/31B > $L/init-31B.log 2>&1 && \
   U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/init-31B.log 2>&1; then
  W=(--model-path /tmp/rinit/31B); log "init 31B ok: $(tail -1 $L/init-31B.log | cut -c1-200)"
else log "init 31B failed: $(tail -3 $L/init-31B.log | cut -c1-300)"; fi
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
# One compare: the three engines at TP=2 on chat/summarization, on the seeded random weights (31B is dense, so the
# weights' values do not change the work: throughput as with dummy weights, and greedy parity that means something);
# sglang first (it needs no fusion module while the builds finish), the fusion-off control last (cut first).
if [ ${#W[@]} -gt 0 ]; then
  U compare -m 31B --tp 2 "${W[@]}" --engines sglang,sglang-patched,vllm,sglang-patched-no-ar-fusion -s chat,summarization \
    --num-prompts 32 --parity "${RUN[@]}" > $L/A-31B-tp2.log 2>&1; log "A 31B tp2 rinit rc=$?"
else
  U compare -m 31B --tp 2 --engines sglang,sglang-patched,vllm -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/A-31B-tp2.log 2>&1; log "A 31B tp2 dummy rc=$?"
fi
finish $TW
