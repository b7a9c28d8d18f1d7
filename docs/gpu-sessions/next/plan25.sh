#!/usr/bin/env bash
# GPU plan for the lease after session 15 (nvidia-h200-x4 or h100-x4; x2 falls back). Started detached by setup.sh;
# plan-common.sh is the shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM
# bundle, is the load generator for every engine.
# What #9 still lacks on the current code (stack b50db9bb, code as 6f41522f): E4B's chat, summarization,
# decode-burst, prefill-3k and balanced-500 (last on stack 89270521, n=1), and unpatched sglang 26B-A4B in the same
# lease as sglang-patched and vLLM with 0031 (session 15 set them against session 14's sglang across leases).
#   GPU 0: E4B sglang-patched on the five x3, then 26B-A4B sglang-patched on decode-burst, chat, balanced-500 x2
#   GPU 1: E4B vLLM on the five x3, then 26B-A4B vLLM on the same three x2
#   GPU 2 (x4): E4B sglang 0.5.12 on the five x3, then 26B-A4B sglang on the same three x2
#   GPU 3 (x4): E4B long-prefill-7k and mm-images for the three engines x1 (a third repeat next to session 15's
#          two), then (8 minutes left) sglang-patched's profiles of the E4B five
# Every 26B-A4B compare starts only with 9 minutes left (need 540; server start about 3.5 min, 6 cells about 5): the
# E4B rows come first. Session 15's E4B compare (3 servers, 12 cells) took 16 minutes; one engine's 15 E4B cells
# should take about 10.
set -u
. /tmp/gpu/plan-common.sh
SC=decode-burst,chat,balanced-500,summarization,prefill-3k
DEC=decode-burst,chat,balanced-500
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
e4b() {  # e4b GPU ENGINES SCENARIOS REPEATS [EXTRA-FLAG]: E4B on random-init weights made on GPU 3
  while [ ! -f /tmp/init-e4b.done ]; do sleep 1; done
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --parity --engines $2 -s $3 --repeats $4 --num-prompts 32 \
    ${5:-} "${RUN[@]}" > $L/E-E4B-${2//,/+}-$1.log 2>&1
  log "E E4B $2 on GPU $1 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
( init E4B 3; touch /tmp/init-e4b.done ) &
( waitvllm; e4b 0 sglang-patched $SC 3; need 540 "26B sglang-patched" && { waitinit; m26 sglang-patched 0 $DEC 2; } ) \
  > /dev/null 2>&1 & TA=$!
( waitvllm; e4b 1 vllm $SC 3; need 540 "26B vllm" && { waitinit; m26 vllm 1 $DEC 2; } ) > /dev/null 2>&1 & TB=$!
if [ "$NG" -ge 4 ]; then
  ( waitvllm; e4b 2 sglang $SC 3; need 540 "26B sglang" && { waitinit; m26 sglang 2 $DEC 2; } ) > /dev/null 2>&1 & TC=$!
  ( waitvllm; e4b 3 sglang-patched,sglang,vllm long-prefill-7k,mm-images 1
    need 480 "E4B sglang-patched profiles" && e4b 3 sglang-patched $SC 1 --profile ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  finish $TA $TB
fi
