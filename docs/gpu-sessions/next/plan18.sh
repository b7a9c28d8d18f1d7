#!/usr/bin/env bash
# GPU plan for session 11 (nvidia-h200-x4; x2 fallback). Started detached by setup.sh; plan-common.sh is the shared
# part (installs, deadline watchdog). plan16.sh's items, re-laid for four GPUs so that each track fits the ~16 min
# that a lease leaves after the transfers and the 26B init (session 10: 19:56 -> 20:12):
#   GPU 0: sglang-patched, chat, summarization, prefill-3k, decode-burst x3 (32 prompts, as sessions 8-10);
#   GPU 1: unpatched sglang, the same cells (the current stack's patched-vs-unpatched A/B in one lease);
#   GPU 2: the sliding-layer capture inside the server (swa_capture/sitecustomize.py, its run in /tmp/capture-runs,
#          a perturbed server, not a measurement), then 0023's same-stack control (sglang-patched-no-moe-default)
#          on chat and summarization x2;
#   GPU 3: 0023's kernel bench and GPU test (no weights needed), then 0018's dense control: E4B sglang-patched vs
#          sglang-patched-chunk8192 on long-prefill-7k x3.
# With two GPUs: GPU 0 sglang-patched then the capture; GPU 1 sglang then 0023's bench and test.
# vLLM is not run: session 10 (run 20261127T195606Z-26B-A4B-3d4d) is its figure on this stack; its bundle is not sent.
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
SC=chat,summarization,prefill-3k,decode-burst
init() {  # init MODEL GPU
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"
  [ $rc = 0 ] || rm -rf /tmp/rinit/$1
  return $rc
}
waitinit() { while [ ! -f /tmp/init.done ]; do sleep 1; done; }
m26() {  # m26 ENGINE GPU [SCENARIOS [REPEATS]]
  local W=(--no-parity)
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B --parity)
  U compare -m 26B-A4B --gpus $2 "${W[@]}" --engines $1 -s ${3:-$SC} --repeats ${4:-3} --num-prompts 32 "${RUN[@]}" \
    > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
capture() {  # capture GPU: the sliding-layer question inside the server (docs/gpu-sessions/next/swa_capture/)
  mkdir -p $L/capture /tmp/capture-runs
  SWA_CAPTURE_DIR=$L/capture PYTHONPATH=$REPO/docs/gpu-sessions/next/swa_capture:$PYTHONPATH \
    U compare -m 26B-A4B --gpus $1 --model-path /tmp/rinit/26B-A4B --no-parity --engines sglang-patched \
    -s summarization --repeats 1 --num-prompts 4 --no-mmlu --no-report --runs-dir /tmp/capture-runs \
    --note "swa capture probe: perturbed server, not a measurement" > $L/K-swa-capture.log 2>&1
  log "K swa-capture rc=$?: $(ls $L/capture | tr '\n' ' ')"
  grep -h "swa-capture\]" /tmp/capture-runs/*/logs/*.log 2>/dev/null | head -5 >> $L/plan.log
}
bench23() {  # bench23 GPU: 0023's bench and GPU test
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name moe-default-config --tree $TREE --patch 0023-moe-default-config-scaled.patch \
    --runs-dir /tmp/runs --timeout 240 -- '{python}' benchmark/kernels/gemma4/bench_moe_default_config.py --out '{out}' \
    > $L/K-moe-default-config.log 2>&1; log "K 0023 rc=$?"
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0023 > $L/T-0023.log 2>&1
  log "T 0023 rc=$?: $(tail -1 $L/T-0023.log | cut -c1-160)"
}
e4b18() {  # e4b18 GPU
  init E4B $1 || return
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --engines sglang-patched,sglang-patched-chunk8192 \
    -s long-prefill-7k --repeats 3 --no-parity "${RUN[@]}" > $L/C-E4B-chunk8192.log 2>&1; log "C E4B 0018 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
( waitinit; m26 sglang-patched 0; [ "$NG" -ge 4 ] || capture 0 ) > /dev/null 2>&1 & TA=$!
( waitinit; m26 sglang 1; [ "$NG" -ge 4 ] || bench23 1 ) > /dev/null 2>&1 & TB=$!
if [ "$NG" -ge 4 ]; then
  ( waitinit; capture 2; m26 sglang-patched-no-moe-default 2 chat,summarization 2 ) > /dev/null 2>&1 & TC=$!
  ( bench23 3; e4b18 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  finish $TA $TB
fi
