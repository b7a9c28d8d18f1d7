#!/usr/bin/env bash
# GPU plan for the lease after session 15 (nvidia-h200-x4 or h100-x4; x2 falls back). Started detached by setup.sh;
# plan-common.sh is the shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM
# bundle, is the load generator for every engine.
# Two questions:
# 1. Patches 0032 and 0033 cut the norms of a 26B-A4B decode step, where session 15's profiles put sglang-patched's
#    remaining kernel time over vLLM's (norms 0.69 vs 0.34 ms a step): 0032, the q/k/v RMSNorm with one program per
#    (token, head) (bench on one H200 at the end of session 15: 13.35 -> 1.94 us a sliding layer at 32 tokens); 0033,
#    the MoE router input from the post-attention norm kernel by default (8.94 -> 3.19 us a layer; routing agreement
#    within noise on 2026-11-27). Neither has run in a server: the decode rows against each one's same-stack
#    control, and against vLLM in the same lease.
# 2. What issue #9 still lacks on the current code: E4B's chat, summarization, decode-burst, prefill-3k and
#    balanced-500 (last on stack 89270521, n=1) for sglang-patched, vLLM and sglang.
#   GPU 0: 0032's bench and the GPU tests of 0032 and 0012 (0033 changes 0012's default) while the weights are made;
#          26B-A4B sglang-patched on decode-burst, chat, balanced-500 x3 with profiles; then (10 minutes left) vLLM
#          on the same three x2
#   GPU 1: 0032's control sglang-patched-qkv-norm-per-token on the same three x3; then (9 minutes) 0033's control
#          sglang-patched-router-input-eager on them x3
#   GPU 2 (x4): E4B sglang-patched on the five x3; then (10 minutes) E4B sglang 0.5.12 on the five x3
#   GPU 3 (x4): E4B vLLM on the five x3; then (8 minutes) E4B long-prefill-7k and mm-images for the three x1
set -u
. /tmp/gpu/plan-common.sh
SC=decode-burst,chat,balanced-500,summarization,prefill-3k
DEC=decode-burst,chat,balanced-500
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
bench() {  # bench GPU NAME PATCH SCRIPT: one patch's kernel bench
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name $2 --tree $TREE --patch $3 --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' benchmark/kernels/gemma4/$4 --out '{out}' > $L/K-$2.log 2>&1
  log "K $2 rc=$?"
}
benches() {  # benches GPU: 0032's bench, the GPU tests of 0032 and of 0012 (whose default 0033 changes)
  bench $1 qkv-rmsnorm-per-head 0032-gemma4-qkv-rmsnorm-per-head.patch bench_gemma4_qkv_rmsnorm.py
  for p in 0032 0012; do
    CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only $p > $L/T-$p.log 2>&1
    log "T $p rc=$?: $(tail -1 $L/T-$p.log | cut -c1-160)"
  done
}
e4b() {  # e4b GPU ENGINES SCENARIOS REPEATS: E4B on random-init weights made on GPU 3
  while [ ! -f /tmp/init-e4b.done ]; do sleep 1; done
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --parity --engines $2 -s $3 --repeats $4 --num-prompts 32 \
    "${RUN[@]}" > $L/E-E4B-${2//,/+}-$1.log 2>&1
  log "E E4B $2 on GPU $1 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
[ "$NG" -ge 4 ] && ( init E4B 3; touch /tmp/init-e4b.done ) &
( benches 0; waitinit; waitvllm; m26 sglang-patched 0 $DEC 3 --profile
  need 600 "26B vllm" && m26 vllm 0 $DEC 2 ) > /dev/null 2>&1 & TA=$!
( waitinit; waitvllm; m26 sglang-patched-qkv-norm-per-token 1 $DEC 3
  need 540 "26B router-input-eager" && m26 sglang-patched-router-input-eager 1 $DEC 3 ) > /dev/null 2>&1 & TB=$!
if [ "$NG" -ge 4 ]; then
  ( waitvllm; e4b 2 sglang-patched $SC 3; need 600 "E4B sglang" && e4b 2 sglang $SC 3 ) > /dev/null 2>&1 & TC=$!
  ( waitvllm; e4b 3 vllm $SC 3; need 480 "E4B long-prefill-7k, mm-images" && \
      e4b 3 sglang-patched,sglang,vllm long-prefill-7k,mm-images 1 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  finish $TA $TB
fi
