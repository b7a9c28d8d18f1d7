#!/usr/bin/env bash
# GPU plan for the next 2-GPU lease (prepared after session 7, not run yet). Needs nvidia-h200-x2 (or x2 of H200s:
# the 31B checkpoint in float32 is ~125 GB on one GPU, and the 31B weights need the 128 GB disk of a 2-GPU host).
# Started detached by setup.sh; plan-common.sh is the shared part (installs, deadline watchdog).
# Phase 1, both GPUs (#10): the seeded random-init 31B of sessions 6-7 written again (same seed and recipe; the
#   run's manifest now records its fingerprint), then the 0018 chunk-cap control: 31B TP=2 summarization with
#   sglang-patched-chunk8192 and sglang-patched in one run (patched summarization TPOT was +9.7% / +15.4% against
#   unpatched sglang, which runs with 8192). E4B random-init weights are written on GPU 0 meanwhile.
# Phase 2:
#   GPU 1 (#10): `harness parity-reference` of the 31B parity records in one model load: fusion on vs off, vLLM vs
#          sglang-patched, sglang vs sglang-patched, sglang-patched vs its own restart (near-ties that rounding
#          flips, or one side computing something else?)
#   GPU 0 (#9): E4B on random-init weights, vLLM and sglang-patched on chat and long-prefill-7k with parity (now with
#          each answer's prompt token count: did vLLM and SGLang get the same input?), then the reference check of
#          its parity record
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; other harness jobs ran on the other GPU of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
R31=(runs/parity/parity-31B-tp2-sglang-patched-vs-no-ar-fusion.json
     runs/20261127T141228Z-31B-fff7/evals/parity-vllm-vs-sglang-patched-mtp-off.json
     runs/20261127T122303Z-31B-bda2/evals/parity-sglang-vs-sglang-patched-mtp-off.json
     runs/parity/parity-31B-tp2-sglang-patched-self-restart.json)
init() {  # init MODEL GPU
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"; return $rc
}
( init E4B 0 ) > /dev/null 2>&1 & TE=$!
OK31=0; init 31B 1 && OK31=1
wait $TE
if [ $OK31 = 1 ]; then
  U compare -m 31B --tp 2 --gpus 0,1 --model-path /tmp/rinit/31B --no-parity \
    --engines sglang-patched-chunk8192,sglang-patched -s summarization --num-prompts 32 "${RUN[@]}" \
    > $L/A-31B-chunk8192.log 2>&1; log "A 31B chunk8192 rc=$?"
fi
ref31() {
  [ $OK31 = 1 ] || return
  CUDA_VISIBLE_DEVICES=1 HARNESS_RUNS=/tmp/runs U parity-reference "${R31[@]}" --model-path /tmp/rinit/31B --env sglang \
    > $L/R-31B-reference.log 2>&1; log "R 31B reference rc=$?"
}
e4b() {
  local W=(--no-parity)
  [ -f /tmp/rinit/E4B/model.safetensors.index.json ] || [ -f /tmp/rinit/E4B/model.safetensors ] && \
    W=(--model-path /tmp/rinit/E4B --parity)
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m E4B --gpus 0 "${W[@]}" --engines vllm,sglang-patched -s chat,long-prefill-7k --num-prompts 32 \
    "${RUN[@]}" > $L/B-E4B.log 2>&1; log "B E4B rc=$?"
  local recs
  recs=$(ls /tmp/runs/*-E4B-*/evals/parity-*-mtp-off.json 2>/dev/null)
  if [ -n "$recs" ] && [ "${W[0]}" = --model-path ]; then
    CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-reference $recs --model-path /tmp/rinit/E4B --env sglang \
      > $L/R-E4B-reference.log 2>&1; log "R E4B reference rc=$?"
  fi
}
( ref31 ) > /dev/null 2>&1 & TA=$!
( e4b ) > /dev/null 2>&1 & TB=$!
finish $TA $TB
