#!/usr/bin/env bash
# GPU plan for the next 2-GPU lease (prepared after session 7, not run yet). Needs nvidia-h200-x2 (or x2 of H200s:
# the 31B checkpoint in float32 is ~125 GB on one GPU, and the 31B weights need the 128 GB disk of a 2-GPU host).
# Started detached by setup.sh; plan-common.sh is the shared part (installs, deadline watchdog).
#   GPU 1: seeded random-init 31B (same seed and recipe as sessions 6-7: their parity records were answered from
#          it), then `harness parity-reference` of the 31B parity records in one model load: fusion on vs off,
#          vLLM vs sglang-patched, sglang vs sglang-patched, sglang-patched vs its own restart (#10's open question:
#          near-ties that rounding flips, or one side computing something else?)
#   GPU 0: E4B on random-init weights, vLLM / sglang-patched / sglang on chat and long-prefill-7k with parity (now
#          with each answer's prompt token count: did vLLM and SGLang get the same input?), then parity-reference
#          of its records (#9)
#   then, with >= 700 s left: 31B TP=2 on both GPUs, the 0018 chunk-cap control sglang-patched-chunk8192 on
#          summarization (#10's open finding: patched summarization TPOT +9.7% / +15.4% vs sglang)
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; other harness jobs ran on the other GPU of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
R31=(runs/parity/parity-31B-tp2-sglang-patched-vs-no-ar-fusion.json
     runs/20261127T141228Z-31B-fff7/evals/parity-vllm-vs-sglang-patched-mtp-off.json
     runs/20261127T122303Z-31B-bda2/evals/parity-sglang-vs-sglang-patched-mtp-off.json
     runs/parity/parity-31B-tp2-sglang-patched-self-restart.json)
ref31() {
  if CUDA_VISIBLE_DEVICES=1 U model synth -m 31B -o /tmp/rinit/31B > $L/init-31B.log 2>&1 && \
     CUDA_VISIBLE_DEVICES=1 U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/init-31B.log 2>&1; then
    log "init 31B ok: $(tail -1 $L/init-31B.log | cut -c1-160)"
    CUDA_VISIBLE_DEVICES=1 HARNESS_RUNS=/tmp/runs U parity-reference "${R31[@]}" --model-path /tmp/rinit/31B --env sglang \
      > $L/R-31B-reference.log 2>&1; log "R 31B reference rc=$?"
  else log "init 31B failed: $(tail -3 $L/init-31B.log | cut -c1-300)"; fi
}
e4b() {
  local W=(--no-parity)
  if CUDA_VISIBLE_DEVICES=0 U model synth -m E4B -o /tmp/rinit/E4B > $L/init-E4B.log 2>&1 && \
     CUDA_VISIBLE_DEVICES=0 U model init-weights -m E4B --model-path /tmp/rinit/E4B --env sglang >> $L/init-E4B.log 2>&1; then
    W=(--model-path /tmp/rinit/E4B --parity); log "init E4B ok"
  else log "init E4B failed (dummy weights, no parity): $(tail -2 $L/init-E4B.log | cut -c1-300)"; fi
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m E4B --gpus 0 "${W[@]}" --engines vllm,sglang-patched,sglang -s chat,long-prefill-7k --num-prompts 32 \
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
wait $TA $TB
if [ "$(left)" -ge 700 ] && [ -f /tmp/rinit/31B/config.json ]; then
  U compare -m 31B --tp 2 --gpus 0,1 --model-path /tmp/rinit/31B --no-parity --engines sglang-patched-chunk8192 \
    -s summarization --num-prompts 32 "${RUN[@]}" > $L/C-31B-chunk8192.log 2>&1; log "C 31B chunk8192 rc=$?"
else log "C 31B chunk8192 skipped: $(left) s left"; fi
finish $TA $TB
