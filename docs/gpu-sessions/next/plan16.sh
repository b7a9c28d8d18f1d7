#!/usr/bin/env bash
# GPU plan for the next lease (prepared in session 10, not run yet; nvidia-h200-x2 or x4). Started detached by
# setup.sh; plan-common.sh is the shared part (installs, deadline watchdog). #9's open GPU items after session 10:
#   - the sliding-layer question, now inside the server: swa_capture/sitecustomize.py wraps SGLang's
#     extend_attention_fwd in the server process and times its first large sliding and full calls there on the
#     server's own tensors, on fresh copies and on random values (session 10's probe, run kernels-d11f, showed
#     that neither the window value nor the argument list explains 5.7 against 2.6 ms). Its run goes to
#     /tmp/capture-runs (a perturbed server: not a measurement), its records to /tmp/logs/capture/;
#   - unpatched sglang on the current stack's lease: sglang and sglang-patched on chat, summarization, prefill-3k
#     and decode-burst x3 (32 prompts, as sessions 8-10);
#   - 0023's same-stack control (sglang-patched-no-moe-default) on chat and summarization x2 (decode at M 32 and
#     8192-token prefill, where the gated tile applies; about 6 min), its kernel bench and GPU test;
#   - 0018's control on a dense model: E4B sglang-patched vs sglang-patched-chunk8192 on long-prefill-7k x3.
#   2 GPUs: GPU 0 the capture (about 5 min), then sglang-patched (about 16 min); GPU 1 sglang (about 16 min), then
#           sglang-patched-no-moe-default, then 0023's bench and GPU test and the E4B control as far as the deadline
#           allows (session 10: about 23 min from the end of the transfers to the deadline).
#   4 GPUs: the same on GPUs 0-1; GPU 2 vLLM (so that the group holds all three engines again); GPU 3 0023's bench
#           and GPU test, then the E4B control.
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
waitvllm() { while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done; }
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
( waitinit; capture 0; m26 sglang-patched 0 ) > /dev/null 2>&1 & TA=$!
( waitinit; m26 sglang 1; m26 sglang-patched-no-moe-default 1 chat,summarization 2; [ "$NG" -ge 4 ] || { bench23 1; e4b18 1; } ) \
  > /dev/null 2>&1 & TB=$!
if [ "$NG" -ge 4 ]; then
  ( waitinit; waitvllm; m26 vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( bench23 3; e4b18 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  finish $TA $TB
fi
