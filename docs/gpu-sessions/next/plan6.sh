#!/usr/bin/env bash
# GPU plan for the next lease (#10 on one 4-GPU host). Started detached by setup.sh; the shared part (environment,
# deadline watchdog, installs, patched tree) is plan-common.sh. Every GPU step is a harness command.
set -u
. /tmp/gpu/plan-common.sh
$PY -m harness bench -e sglang -m 31B -s chat --dry-run > $L/synth-31B.log 2>&1; log "synth 31B rc=$?"
# P01 (GPUs 0,1): seeded random 31B weights (recipe postnorm-v1), vLLM TP=2 chat/summarization (dummy weights),
# then fusion on/off greedy parity on the random weights (check each record's signal)
( export CUDA_VISIBLE_DEVICES=0,1
  W=()
  if U model synth -m 31B -o /tmp/rinit/31B > $L/P01-init-31B.log 2>&1 && \
     U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/P01-init-31B.log 2>&1; then
    W=(--model-path /tmp/rinit/31B); log "P01 init 31B ok: $(tail -1 $L/P01-init-31B.log | cut -c1-200)"
  else log "P01 init 31B failed: $(tail -1 $L/P01-init-31B.log | cut -c1-200)"; fi
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m 31B --tp 2 --engines vllm -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/P01-31B-vllm.log 2>&1; log "P01 31B vllm rc=$?"
  if [ ${#W[@]} -gt 0 ]; then
    U compare -m 31B --tp 2 "${W[@]}" --engines sglang-patched,sglang-patched-no-ar-fusion -s decode-burst \
      --num-prompts 32 --parity "${RUN[@]}" > $L/P01-31B-fusion-parity.log 2>&1; log "P01 31B fusion parity rc=$?"
  fi ) > /dev/null 2>&1 &
TA=$!
# P23 (GPUs 2,3): SGLang patched and unpatched TP=2 chat/summarization (dummy weights), the same lease as vLLM
( export CUDA_VISIBLE_DEVICES=2,3
  U compare -m 31B --tp 2 --engines sglang-patched,sglang -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/P23-31B-sglang.log 2>&1; log "P23 31B sglang rc=$?" ) > /dev/null 2>&1 &
TB=$!
finish $TA $TB
