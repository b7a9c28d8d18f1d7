#!/usr/bin/env bash
# GPU plan for a 4-GPU lease (session 8; nvidia-h200-x4). Started detached by setup.sh; plan-common.sh is the
# shared part (installs, deadline watchdog). Three tracks at once:
#   GPU 0 (#10, then #9): the seeded random-init 31B of sessions 6-7 written again (same seed and recipe), then
#          `harness parity-reference` over the four 31B TP=2 parity records in one float32 load (~125 GB: only on a
#          GPU with >= 130 GB; fusion on vs off, vLLM vs sglang-patched, sglang vs sglang-patched, sglang-patched vs
#          its own restart); then E4B on seeded random-init weights, vLLM and sglang-patched on chat and
#          long-prefill-7k with parity (each answer's prompt token count), then the reference of its parity record
#   GPUs 1,2,3 (#9): 26B-A4B on seeded random-init weights (one router for every engine: under --load-format dummy
#          each engine draws its own), sglang-patched / vLLM / sglang one per GPU, chat, summarization, prefill-3k
#          x3 with --profile and greedy parity; then, on the freed GPUs, the 0018 chunk-cap control
#          (sglang-patched-chunk8192, summarization x3, same checkpoint: joins the same report table) and unpatched
#          sglang with MTP on chat (dummy weights, one run: the MTP path's cost)
# With 2 GPUs: GPU 0 as above, GPU 1 the 26B-A4B matrix (x2) with the three engines in turn.
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
MEM0=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 | tr -d ' ')
NOTE="host: $NG GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
R31=(runs/parity/parity-31B-tp2-sglang-patched-vs-no-ar-fusion.json
     runs/20261127T141228Z-31B-fff7/evals/parity-vllm-vs-sglang-patched-mtp-off.json
     runs/20261127T122303Z-31B-bda2/evals/parity-sglang-vs-sglang-patched-mtp-off.json
     runs/parity/parity-31B-tp2-sglang-patched-self-restart.json)
init() {  # init MODEL GPU
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"
  [ $rc = 0 ] || rm -rf /tmp/rinit/$1
  return $rc
}
waitvllm() { while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done; }
track0() {
  ( init E4B 0 ) & local te=$!
  if [ "$MEM0" -ge 130000 ]; then
    init 31B 0 && { CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-reference "${R31[@]}" --model-path /tmp/rinit/31B \
      --env sglang > $L/R-31B-reference.log 2>&1; log "R 31B reference rc=$?"; }
  else log "31B reference skipped: GPU 0 has $MEM0 MiB (31B float32 needs ~125 GB)"; fi
  wait $te
  local W=(--no-parity)
  [ -d /tmp/rinit/E4B ] && W=(--model-path /tmp/rinit/E4B --parity)
  waitvllm
  U compare -m E4B --gpus 0 "${W[@]}" --engines vllm,sglang-patched -s chat,long-prefill-7k --num-prompts 32 \
    "${RUN[@]}" > $L/B-E4B.log 2>&1; log "B E4B rc=$?"
  local recs
  recs=$(ls /tmp/runs/*-E4B-*/evals/parity-*-mtp-off.json 2>/dev/null)
  if [ -n "$recs" ] && [ "${W[0]}" = --model-path ]; then
    CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-reference $recs --model-path /tmp/rinit/E4B --env sglang \
      > $L/R-E4B-reference.log 2>&1; log "R E4B reference rc=$?"
  fi
}
moe() {  # moe GPUS REPEATS
  local W=(--no-parity) g0=${1%%,*}
  init 26B-A4B $g0 && W=(--model-path /tmp/rinit/26B-A4B --parity)
  waitvllm
  U compare -m 26B-A4B --gpus "$1" "${W[@]}" --engines sglang-patched,vllm,sglang -s chat,summarization,prefill-3k \
    --repeats $2 --num-prompts 32 --profile "${RUN[@]}" > $L/A-26B.log 2>&1; log "A 26B rc=$?"
}
chunk() {
  local W=()
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B)
  U compare -m 26B-A4B --gpus "$1" "${W[@]}" --engines sglang-patched-chunk8192 -s summarization --repeats 3 \
    --num-prompts 32 --no-parity "${RUN[@]}" > $L/C-26B-chunk8192.log 2>&1; log "C 26B chunk8192 rc=$?"
}
mtp() {
  U compare -m 26B-A4B --gpus "$1" --engines sglang -s chat --mtp on --num-prompts 32 --no-parity "${RUN[@]}" \
    > $L/D-26B-sglang-mtp.log 2>&1; log "D 26B sglang mtp rc=$?"
}
log "GPUs: $NG, GPU 0 memory $MEM0 MiB"
( track0 ) > /dev/null 2>&1 & TA=$!
if [ "$NG" -ge 4 ]; then
  ( moe 1,2,3 3; ( chunk 1 ) & ( mtp 3 ) & wait ) > /dev/null 2>&1 & TB=$!
else
  ( moe 1 2; chunk 1 ) > /dev/null 2>&1 & TB=$!
fi
finish $TA $TB
