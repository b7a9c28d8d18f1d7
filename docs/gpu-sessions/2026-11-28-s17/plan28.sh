#!/usr/bin/env bash
# GPU plan for a one-GPU lease (`nvidia-h200`, the only kind lent on 2026-11-28 after session 16). Started detached by
# setup.sh; plan-common.sh is the shared part. Send BOTH bundles (`vllm bench serve` is every engine's load
# generator), no vLLM server is started: its 26B-A4B figures of sessions 15 and 16 stand, across leases.
# On the one GPU, in this order:
# 1. Patches 0032 + 0033 against their pair control `sglang-patched-qkv-per-token-router-eager` on decode-burst, chat,
#    balanced-500 x3 with parity (session 16: -4.1 to -4.7% TPOT against session 15's patched across leases; parity
#    17/20 against session 15's answers, cause not settled).
# 2. The current code (patches 0001-0033, code hash bc81d51a) on all five 26B-A4B scenarios x3, with parity and the
#    profiled pass (session 16 ran decode-burst, chat and balanced-500 only; its profiled pass was cut): the A side
#    of 1, and summarization and prefill-3k on the current code.
# 3. With 7.5 minutes left: unpatched sglang 0.5.12 on decode-burst, chat, balanced-500 x2.
# A host with 2+ GPUs runs 1 on GPU 1 beside 2 on GPU 0, then 3 on GPU 1.
set -u
. /tmp/gpu/plan-common.sh
SC5=decode-burst,chat,balanced-500,summarization,prefill-3k
DEC=decode-burst,chat,balanced-500
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
df -h /tmp | tail -1 >> $L/plan.log
( init 26B-A4B 0; df -h /tmp | tail -1 >> $L/plan.log; touch /tmp/init.done ) &
if [ "$NG" -ge 2 ]; then
  ( waitinit; waitvllm; m26 sglang-patched 0 $SC5 3 --profile ) > /dev/null 2>&1 & TA=$!
  ( waitinit; waitvllm; m26 sglang-patched-qkv-per-token-router-eager 1 $DEC 3
    need 450 "26B sglang" && m26 sglang 1 $DEC 2 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
else
  ( waitinit; waitvllm
    m26 sglang-patched-qkv-per-token-router-eager 0 $DEC 3
    m26 sglang-patched 0 $SC5 3 --profile
    need 450 "26B sglang" && m26 sglang 0 $DEC 2 ) > /dev/null 2>&1 & TA=$!
  finish $TA
fi
