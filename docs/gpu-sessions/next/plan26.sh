#!/usr/bin/env bash
# GPU plan for session 16 on nvidia-h200-x2 (x4 was not lent; plan25.sh is the x4 plan). Started detached by
# setup.sh; plan-common.sh is the shared part. Send BOTH bundles (`vllm bench serve` is every engine's load generator).
# Two questions, one GPU each:
#   GPU 0: patches 0032 and 0033 in a server. 0032's bench and the GPU tests of 0032 and 0012 (0033 changes 0012's
#          default) while the weights are made; 26B-A4B sglang-patched on decode-burst, chat, balanced-500 x3 with
#          profiles; then their pair control sglang-patched-qkv-per-token-router-eager (both switches off: the decode
#          path sglang-patched ran in session 15, so it also gives the offset from that lease) on the same three, x3
#          with 9.5 minutes left, x2 with 7, skipped below.
#   GPU 1: E4B's five base scenarios on the current code: sglang-patched then vLLM in one run, x2 (one server each).
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
pair() {  # the pair control on GPU 0 with as many repeats as the time left allows
  local t; t=$(left)
  if [ "$t" -ge 570 ]; then m26 sglang-patched-qkv-per-token-router-eager 0 $DEC 3
  elif [ "$t" -ge 420 ]; then m26 sglang-patched-qkv-per-token-router-eager 0 $DEC 2
  else log "skipped (needs 420 s, $t left): 26B pair control"; fi
}
( init 26B-A4B 0; touch /tmp/init.done ) &
( init E4B 1; touch /tmp/init-e4b.done ) &
( benches 0; waitinit; waitvllm; m26 sglang-patched 0 $DEC 3 --profile; pair ) > /dev/null 2>&1 & TA=$!
( waitvllm; while [ ! -f /tmp/init-e4b.done ]; do sleep 1; done
  if [ -d /tmp/rinit/E4B ]; then
    U compare -m E4B --gpus 1 --model-path /tmp/rinit/E4B --parity --engines sglang-patched,vllm -s $SC --repeats 2 \
      --num-prompts 32 "${RUN[@]}" > $L/E-E4B-sglang-patched+vllm.log 2>&1
    log "E E4B sglang-patched,vllm rc=$?"
  else log "skipped (no E4B weights): E4B"; fi ) > /dev/null 2>&1 & TB=$!
finish $TA $TB
