#!/usr/bin/env bash
# Session 11's relaunch: plan18.sh's compare tracks exited at once (rc 2) because the vLLM bundle, which holds the
# load generator (`vllm bench serve`), had not been sent. Sent after; plan18.sh's background installer installs it.
# This waits for that install, starts its own deadline watchdog (plan18.sh's ends with its last track) and runs the
# tracks that had failed. 0023's bench and GPU test had run (rc 0); the E4B init ran on GPU 3.
set -u
REPO=/tmp/repo
export PY=/opt/torch/.venv/bin/python3
export HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:$REPO PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; cd $REPO
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
left() { echo $(( $(cat /tmp/deadline) - $(date +%s) )); }
U() { local t; t=$(left); if [ "$t" -lt 100 ]; then log "skipped (deadline): $*"; return 124; fi; $PY -m harness "$@"; }
( while sleep 3; do
    if [ $(date +%s) -ge $(cat /tmp/deadline) ]; then
      log "deadline (18b): SIGTERM to harness commands"; pkill -TERM -f "python3 -m harness (compare|parity|patches|kernels|model)"
      sleep 90; pkill -KILL -f "python3 -m harness (compare|parity|patches|kernels|model)"; pkill -KILL -f "sglang.launch_server"
      pkill -KILL -f "vllm.entrypoints"; log "deadline (18b): killed what was left"; break
    fi
  done ) &
WATCHDOG=$!
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
SC=chat,summarization,prefill-3k,decode-burst
m26() {
  U compare -m 26B-A4B --gpus $2 --model-path /tmp/rinit/26B-A4B --parity --engines $1 -s ${3:-$SC} --repeats ${4:-3} \
    --num-prompts 32 "${RUN[@]}" > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
capture() {
  mkdir -p $L/capture /tmp/capture-runs
  SWA_CAPTURE_DIR=$L/capture PYTHONPATH=$REPO/docs/gpu-sessions/next/swa_capture:$PYTHONPATH \
    U compare -m 26B-A4B --gpus $1 --model-path /tmp/rinit/26B-A4B --no-parity --engines sglang-patched \
    -s summarization --repeats 1 --num-prompts 4 --no-mmlu --no-report --runs-dir /tmp/capture-runs \
    --note "swa capture probe: perturbed server, not a measurement" > $L/K-swa-capture.log 2>&1
  log "K swa-capture rc=$?: $(ls $L/capture | tr '\n' ' ')"
  grep -h "swa-capture\]" /tmp/capture-runs/*/logs/*.log 2>/dev/null | head -5 >> $L/plan.log
}
e4b() {
  while pgrep -f "harness model" > /dev/null; do sleep 2; done
  [ -d /tmp/rinit/E4B ] || { log "E4B: no weights"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --engines sglang-patched,sglang-patched-chunk8192 \
    -s long-prefill-7k --repeats 3 --no-parity "${RUN[@]}" > $L/C-E4B-chunk8192.log 2>&1; log "C E4B 0018 rc=$?"
}
sleep 10  # plan18.sh's installer, if still alive, has started by now; else install here
if [ ! -f $L/install-vllm.log ]; then
  log "18b: install vllm start"
  $PY -m harness env install-bundle /tmp/parts/vllm --target /tmp/site-vllm --python $PY --require-gpu > $L/install-vllm.log 2>&1
  echo "rc=$?" >> $L/install-vllm.log
fi
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
log "18b: vllm installed: $(tail -1 $L/install-vllm.log)"
( m26 sglang-patched 0 ) & A=$!
( m26 sglang 1 ) & B=$!
( capture 2; m26 sglang-patched-no-moe-default 2 chat,summarization 2 ) & C=$!
( e4b 3 ) & D=$!
wait $A $B $C $D; kill $WATCHDOG 2>/dev/null; log "plan done (18b)"
