#!/usr/bin/env bash
# GPU plan for the lease of session 15 (nvidia-h200-x4 or h100-x4; x2 falls back). Started detached by setup.sh;
# plan-common.sh is the shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM
# bundle, is the load generator for every engine.
# The stack now ends with 0031 (no host sync in the Triton backend's CUDA-graph sliding-window decode metadata), which
# no server has run. Session 14's decode profiles (`harness profile steps`): 1.7-2.0 ms of every 15-17 ms decode step
# idle, the host 11-13 ms per step in a cudaStreamSynchronize, then ~1 ms of cudaGraphLaunch with the GPU idle;
# sglang-patched was behind vLLM on decode-burst (-2.3% tok/s, TPOT +2.7%) and balanced-500 (-2.0%, +2.4%).
# Unpatched sglang and vLLM do not depend on the stack; session 14 measured unpatched sglang on the five scenarios
# (stack 1a5e5af1 differs from this one by 0031 only). This lease spends that GPU on what is stale instead: E4B and
# MTP on the current stack.
#   GPU 0: sglang-patched with SGLang's profiles, the five 26B-A4B scenarios x3
#   GPU 1: 0031's bench and GPU test while the weights are made, then its same-stack control
#          sglang-patched-swa-metadata-sync (0031 off) on decode-burst, chat, balanced-500 x3, then (7 minutes left)
#          MTP on, chat, sglang-patched and vLLM (dummy weights: the assistant has no random-init weights)
#   GPU 2 (x4): vLLM 0.22.0 with its profiles, the five scenarios x3 (keep the raw traces: profiles.tgz)
#   GPU 3 (x4): E4B's random-init weights, then E4B sglang-patched, sglang and vLLM on long-prefill-7k and mm-images
#          x2, then (6 minutes left) unpatched sglang 26B-A4B on decode-burst, chat, balanced-500 x2
set -u
. /tmp/gpu/plan-common.sh
SC=decode-burst,chat,balanced-500,summarization,prefill-3k
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
bench() {  # bench GPU NAME PATCH SCRIPT: one patch's kernel bench
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name $2 --tree $TREE --patch $3 --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' benchmark/kernels/gemma4/$4 --out '{out}' > $L/K-$2.log 2>&1
  log "K $2 rc=$?"
}
benches() {  # benches GPU: 0031's bench and GPU test
  bench $1 swa-metadata-no-sync 0031-triton-swa-metadata-no-sync.patch bench_swa_metadata_no_sync.py
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0031 > $L/T-0031.log 2>&1
  log "T 0031 rc=$?: $(tail -1 $L/T-0031.log | cut -c1-160)"
}
mtp() {  # mtp GPU ENGINES: 26B-A4B chat with MTP on, one repeat (dummy weights, dummy assistant)
  U compare -m 26B-A4B --gpus $1 --no-parity --engines $2 -s chat --mtp on --num-prompts 32 "${RUN[@]}" \
    > $L/M-26B-${2//,/+}.log 2>&1
  log "M 26B $2 rc=$?"
}
e4b() {  # e4b GPU ENGINES: E4B on long-prefill-7k and mm-images x2 (random-init weights made on GPU 3)
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --no-parity --engines $2 \
    -s long-prefill-7k,mm-images --repeats 2 --num-prompts 32 "${RUN[@]}" > $L/E-E4B-${2//,/+}.log 2>&1
  log "E E4B $2 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile ) > /dev/null 2>&1 & TA=$!
DEC=decode-burst,chat,balanced-500
if [ "$NG" -ge 4 ]; then
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-swa-metadata-sync 1 $DEC 3
    need 420 "MTP sglang-patched,vllm" && mtp 1 sglang-patched,vllm ) > /dev/null 2>&1 & TB=$!
  ( waitinit; waitvllm; m26 vllm 2 $SC 3 --profile ) > /dev/null 2>&1 & TC=$!
  ( init E4B 3; waitvllm; e4b 3 sglang-patched,sglang,vllm; need 360 "26B sglang" && { waitinit; m26 sglang 3 $DEC 2; } ) \
    > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-swa-metadata-sync 1 $DEC 3
    m26 vllm 1 decode-burst 2 --profile ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
