#!/usr/bin/env bash
# A short single-GPU lease at the end of session 8 (378 s of device time were left): `harness parity-floor` of the
# seed-0 postnorm-v1 E4B checkpoint at full size (the CPU measured the floor only at E2B depth with a 16,384-word
# vocabulary). Needs only the sglang bundle (transformers 5.6.0).
set -u
. /tmp/gpu/plan-common.sh
init() {  # init MODEL GPU
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"; return $rc
}
if init E4B 0; then
  CUDA_VISIBLE_DEVICES=0 HARNESS_RUNS=/tmp/runs U parity-floor --model-path /tmp/rinit/E4B --env sglang \
    > $L/F-floor-E4B.log 2>&1; log "F floor E4B rc=$?: $(grep -m1 'pick the same' $L/F-floor-E4B.log | cut -c1-160)"
fi
kill $WATCHDOG 2>/dev/null; log "plan done"
