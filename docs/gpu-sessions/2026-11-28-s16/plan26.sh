#!/usr/bin/env bash
# GPU plan for session 16 (nvidia-h200-x4; x2 runs GPUs 0 and 1 only, with E4B on GPU 1). Started detached by
# setup.sh; plan-common.sh is the shared part. Send BOTH bundles (`vllm bench serve` is every engine's load generator).
# Two questions:
# 1. Patches 0032 and 0033 in a server (26B-A4B, decode-burst, chat, balanced-500), against their pair control
#    sglang-patched-qkv-per-token-router-eager (both switches off: the decode path sglang-patched ran in session 15,
#    so it also gives the offset from that lease), and the current code against vLLM and sglang 0.5.12 in one lease.
#   GPU 0: 0032's bench and the GPU tests of 0032 and 0012 (0033 changes 0012's default) while the weights are made;
#          sglang-patched x3 with profiles; then (8 minutes left) sglang 0.5.12 x2 (x4 only)
#   GPU 1 (x4): vLLM x3; then the pair control, x3 with 9.5 minutes left, x2 with 7, skipped below
#   x2: the pair control on GPU 0 after sglang-patched, as above
# 2. E4B's five base scenarios on the current code (last on stack 89270521, n=1):
#   GPU 2 (x4): sglang-patched x3; then (8 minutes) sglang 0.5.12 x2
#   GPU 3 (x4): vLLM x3
#   x2: GPU 1: sglang-patched then vLLM in one run, x2
set -u
. /tmp/gpu/plan-common.sh
SC=decode-burst,chat,balanced-500,summarization,prefill-3k
DEC=decode-burst,chat,balanced-500
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
pair() {  # pair GPU: the pair control with as many repeats as the time left allows
  local t; t=$(left)
  if [ "$t" -ge 570 ]; then m26 sglang-patched-qkv-per-token-router-eager $1 $DEC 3
  elif [ "$t" -ge 420 ]; then m26 sglang-patched-qkv-per-token-router-eager $1 $DEC 2
  else log "skipped (needs 420 s, $t left): 26B pair control"; fi
}
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
e4b() {  # e4b GPU ENGINES REPEATS: E4B's five on random-init weights
  while [ ! -f /tmp/init-e4b.done ]; do sleep 1; done
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --parity --engines $2 -s $SC --repeats $3 --num-prompts 32 \
    "${RUN[@]}" > $L/E-E4B-${2//,/+}-$1.log 2>&1
  log "E E4B $2 on GPU $1 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
if [ "$NG" -ge 4 ]; then
  ( init E4B 3; touch /tmp/init-e4b.done ) &
  ( benches 0; waitinit; waitvllm; m26 sglang-patched 0 $DEC 3 --profile
    need 480 "26B sglang" && m26 sglang 0 $DEC 2 ) > /dev/null 2>&1 & TA=$!
  ( waitinit; waitvllm; m26 vllm 1 $DEC 3; pair 1 ) > /dev/null 2>&1 & TB=$!
  ( waitvllm; e4b 2 sglang-patched 3; need 480 "E4B sglang" && e4b 2 sglang 2 ) > /dev/null 2>&1 & TC=$!
  ( waitvllm; e4b 3 vllm 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( init E4B 1; touch /tmp/init-e4b.done ) &
  ( benches 0; waitinit; waitvllm; m26 sglang-patched 0 $DEC 3 --profile; pair 0 ) > /dev/null 2>&1 & TA=$!
  ( waitvllm; e4b 1 sglang-patched,vllm 2 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
