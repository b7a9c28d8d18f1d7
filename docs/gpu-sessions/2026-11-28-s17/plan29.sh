#!/usr/bin/env bash
# One-GPU plan after plan28's lease was lost mid-run (the machine went back after 30 s idle between two calls, with
# the pair control's first cell done): what fits in the ~14 minutes left: the current code (patches 0001-0033) on
# decode-burst, summarization and prefill-3k x2 with the profiled pass (summarization and prefill-3k were never
# measured on this code; no step profile of it exists). No parity (time).
set -u
. /tmp/gpu/plan-common.sh
( init 26B-A4B 0; df -h /tmp | tail -1 >> $L/plan.log; touch /tmp/init.done ) &
( waitinit; waitvllm
  U compare -m 26B-A4B --gpus 0 --model-path /tmp/rinit/26B-A4B --no-parity --engines sglang-patched \
    -s decode-burst,summarization,prefill-3k --repeats 2 --num-prompts 32 --profile "${RUN[@]}" > $L/A-26B-sglang-patched.log 2>&1
  log "A 26B sglang-patched rc=$?" ) > /dev/null 2>&1 & TA=$!
finish $TA
