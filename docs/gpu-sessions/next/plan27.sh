#!/usr/bin/env bash
# GPU plan for the lease after session 16 (nvidia-h200-x4; x2 runs GPUs 0 and 1 only). Started detached by setup.sh;
# plan-common.sh is the shared part. Send BOTH bundles (`vllm bench serve` is every engine's load generator), built
# with `harness env bundle --compress` since session 16 (24 chunk calls instead of 43).
# Three questions:
# 1. The current code (stack code bc81d51a: patches 0001-0033) on all five 26B-A4B scenarios against vLLM in one
#    lease, with profiles (session 16 ran decode-burst, chat, balanced-500 only; its profiled pass was cut).
#   GPU 0: sglang-patched, the five x3, with profiles
#   GPU 1 (x4): vLLM, the five x3
# 2. Patches 0032 + 0033 against their pair control in the same lease, and greedy parity against it (session 16:
#    -4.1 to -4.7% TPOT against session 15's patched across leases; parity 17/20, cause not settled)
#   GPU 2 (x4; x2: GPU 1): sglang-patched-qkv-per-token-router-eager on decode-burst, chat, balanced-500 x3; then
#          (x4) unpatched sglang 0.5.12 on the five x2 with 10 minutes left, the three x2 with 7.5 (x2: vLLM on the
#          three x2 with 8)
# 3. E4B: long-prefill-7k, the one cell where sglang-patched was behind vLLM (median TPOT +13.4%, session 15: its
#    decode steps ran between prefill chunks), with SGLang's mixed chunks (`sglang-patched-mixed-chunk`, an
#    experiment) against sglang-patched in one run; then unpatched sglang on the five (never measured there but chat)
#   GPU 3 (x4): E4B long-prefill-7k for sglang-patched-mixed-chunk and sglang-patched x2; then (8 minutes) E4B
#          sglang on the five x2
set -u
. /tmp/gpu/plan-common.sh
SC=decode-burst,chat,balanced-500,summarization,prefill-3k
DEC=decode-burst,chat,balanced-500
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
e4b() {  # e4b GPU ENGINES REPEATS [SCENARIOS]: E4B on random-init weights, the five by default
  while [ ! -f /tmp/init-e4b.done ]; do sleep 1; done
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --parity --engines $2 -s ${4:-$SC} --repeats $3 --num-prompts 32 \
    "${RUN[@]}" > $L/E-E4B-${2//,/+}-$1.log 2>&1
  log "E E4B $2 on GPU $1 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
if [ "$NG" -ge 4 ]; then
  ( init E4B 3; touch /tmp/init-e4b.done ) &
  ( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile ) > /dev/null 2>&1 & TA=$!
  ( waitinit; waitvllm; m26 vllm 1 $SC 3 ) > /dev/null 2>&1 & TB=$!
  ( waitinit; waitvllm; m26 sglang-patched-qkv-per-token-router-eager 2 $DEC 3
    if [ "$(left)" -ge 600 ]; then m26 sglang 2 $SC 2; else need 450 "26B sglang" && m26 sglang 2 $DEC 2; fi
  ) > /dev/null 2>&1 & TC=$!
  ( waitvllm; e4b 3 sglang-patched-mixed-chunk,sglang-patched 2 long-prefill-7k
    need 480 "E4B sglang" && e4b 3 sglang 2 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile ) > /dev/null 2>&1 & TA=$!
  ( waitinit; waitvllm; m26 sglang-patched-qkv-per-token-router-eager 1 $DEC 3
    need 480 "26B vllm" && m26 vllm 1 $DEC 2 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
