#!/usr/bin/env bash
# GPU plan for the #9 lease (prepared after session 6, not run yet). Best on 4 GPUs (single-GPU slots through
# `compare --gpus`, harness/fanout.py: engines dealt round-robin over the slots, one run per slot, parity across
# slots under runs/parity/). Started detached by setup.sh; plan-common.sh is the shared part.
# Durations used (26B-A4B, H200, sessions 5-6): starts sglang 175 s, sglang-patched ~100 s, vLLM ~270 s; chat
# warmup 34 s + load 33 s, summarization 50 + 47 s, prefill-3k 28 + 27 s (32 prompts; repeats skip the warmup).
#   GPUs 0,1: 26B-A4B sglang-patched + sglang (slot 0, ~1,180 s) and vLLM (slot 1, ~790 s), chat/summarization/
#             prefill-3k x3 with --profile (the profile of the TTFT gap; --profile has not run on a GPU yet: check
#             its first record in the first poll)
#   GPUs 2,3: E4B on seeded random-init weights: vLLM + sglang (slot 2), sglang-patched + the 0018 chunk-cap
#             control (slot 3), chat/summarization/long-prefill-7k with greedy parity (logprob margins); then GPU 3:
#             26B-A4B unpatched sglang with MTP on chat (the MTP path's cost, one run)
# 2 GPUs: the 26B-A4B part only (then the E4B part if time is left).
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
moe() {
  # random-init weights when they can be written (~52 GB; not on a 64 GB single-GPU disk): under --load-format dummy
  # each engine fills the router with its own layout of small uniform values, so routing (and the expert load per
  # step) differs between engines; one seeded checkpoint gives every engine the same routing. Session 4's dummy
  # 26B-A4B summarization had vLLM at a median TPOT of 74 ms against sglang-patched's 14.6 ms (run 6879).
  local W=() g0=${1%%,*}
  if CUDA_VISIBLE_DEVICES=$g0 U model synth -m 26B-A4B -o /tmp/rinit/26B-A4B > $L/init-26B.log 2>&1 && \
     CUDA_VISIBLE_DEVICES=$g0 U model init-weights -m 26B-A4B --model-path /tmp/rinit/26B-A4B --env sglang >> $L/init-26B.log 2>&1; then
    W=(--model-path /tmp/rinit/26B-A4B); log "init 26B-A4B ok: $(tail -1 $L/init-26B.log | cut -c1-160)"
  else log "init 26B-A4B failed (dummy weights): $(tail -2 $L/init-26B.log | cut -c1-300)"; rm -rf /tmp/rinit/26B-A4B; fi
  U compare -m 26B-A4B --gpus "$1" "${W[@]}" --engines sglang-patched,vllm,sglang -s chat,summarization,prefill-3k --repeats 3 \
    --num-prompts 32 --profile --no-parity "${RUN[@]}" > $L/A-26B.log 2>&1; log "A 26B rc=$?"
}
dense() {
  local W=(--no-parity) g0=${1%%,*}
  if CUDA_VISIBLE_DEVICES=$g0 U model synth -m E4B -o /tmp/rinit/E4B > $L/init-E4B.log 2>&1 && \
     CUDA_VISIBLE_DEVICES=$g0 U model init-weights -m E4B --model-path /tmp/rinit/E4B --env sglang >> $L/init-E4B.log 2>&1; then
    W=(--model-path /tmp/rinit/E4B --parity); log "init E4B ok"
  else log "init E4B failed (dummy weights, no parity): $(tail -2 $L/init-E4B.log | cut -c1-300)"; fi
  U compare -m E4B --gpus "$1" "${W[@]}" --engines vllm,sglang-patched,sglang,sglang-patched-chunk8192 \
    -s chat,summarization,long-prefill-7k --num-prompts 32 "${RUN[@]}" > $L/B-E4B.log 2>&1; log "B E4B rc=$?"
}
mtp() {
  U compare -m 26B-A4B --gpus "$1" --engines sglang -s chat --mtp on --num-prompts 32 --no-parity "${RUN[@]}" \
    > $L/C-26B-sglang-mtp.log 2>&1; log "C 26B sglang mtp rc=$?"
}
if [ "$NG" -ge 4 ]; then
  ( moe 0,1 ) > /dev/null 2>&1 & TA=$!
  ( dense 2,3; mtp 3 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
else
  ( moe 0,1; dense 0,1 ) > /dev/null 2>&1 & TA=$!
  finish $TA
fi
