#!/usr/bin/env bash
# Sourced by a lease plan (plan6.sh and later): the environment, the deadline watchdog (SIGTERM, then SIGKILL 90 s
# later: a vLLM TP=2 stop took more than 40 s), the engine installs as their bundles arrive, the patched tree.
# Defines log, left, U (a harness command, not started with less than 100 s to the deadline), NG, RUN, SC, TREE,
# WATCHDOG, init MODEL GPU (random-init weights), waitinit, waitvllm, m26 ENGINE GPU [SCENARIOS [REPEATS [FLAG]]]
# (a 26B-A4B compare) and finish PID... (wait for the tracks, stop the watchdog, log "plan done").
set -u
REPO=/tmp/repo
export PY=/opt/torch/.venv/bin/python3
export HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:$REPO PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; mkdir -p $L /tmp/runs /tmp/rinit
cd $REPO
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
left() { echo $(( $(cat /tmp/deadline) - $(date +%s) )); }
# U: a harness command, not started with less than 100 s to the deadline
U() { local t; t=$(left); if [ "$t" -lt 100 ]; then log "skipped (deadline): $*"; return 124; fi; $PY -m harness "$@"; }
NG=$(nvidia-smi -L | wc -l)
if [ "$NG" -ge 2 ]; then NOTE="host: $NG GPUs; other harness jobs ran on the other GPUs of this host at the same time"
else NOTE="host: 1 GPU; the plan's harness jobs ran on it one after another"; fi  # session 17's run carried the first text
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
SC=chat,summarization,prefill-3k,decode-burst
log "phase0 start"
( while sleep 3; do
    if [ $(date +%s) -ge $(cat /tmp/deadline) ]; then
      log "deadline: SIGTERM to harness commands"; pkill -TERM -f "python3 -m harness (compare|parity|patches|kernels|model)"
      sleep 90; pkill -KILL -f "python3 -m harness (compare|parity|patches|kernels|model)"; pkill -KILL -f "sglang.launch_server"
      pkill -KILL -f "vllm.entrypoints"; pkill -KILL -f pytest; pkill -KILL -f "harness.weights_init"; pkill -KILL -f "harness.reference_logprobs"; log "deadline: killed what was left"; break
    fi
  done ) &
WATCHDOG=$!
for e in sglang vllm; do
  ( while [ ! -f /tmp/parts/$e/ready ]; do sleep 1; done
    log "install $e start"
    $PY -m harness env install-bundle /tmp/parts/$e --target /tmp/site-$e --python $PY --require-gpu > $L/install-$e.log 2>&1
    echo "rc=$?" >> $L/install-$e.log
    rm -rf /tmp/parts/$e ) &  # one-GPU kinds have 64 GB of disk; the 26B-A4B checkpoint alone takes 52 GB
done
while ! grep -q "rc=" $L/install-sglang.log 2>/dev/null; do sleep 1; done
log "sglang installed: $(tail -1 $L/install-sglang.log)"
$PY -m harness patches apply --source /tmp/site-sglang > $L/apply.log 2>&1; log "apply rc=$?"
TREE=$($PY -c "from harness.engines import patched_tree_default; print(patched_tree_default())")
log "tree $TREE"
( while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  log "vllm installed: $(tail -1 $L/install-vllm.log)"
  $PY -m harness env check --require-gpu > $L/env-check.log 2>&1; log "env check rc=$?" ) &
init() {  # init MODEL GPU: synthetic config and seeded random-init weights under /tmp/rinit/MODEL
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"
  [ $rc = 0 ] || rm -rf /tmp/rinit/$1
  return $rc
}
waitinit() { while [ ! -f /tmp/init.done ]; do sleep 1; done; }
# `vllm bench serve` is every engine's load generator: a compare waits for the vLLM install too
waitvllm() { while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done; }
m26() {  # m26 ENGINE GPU [SCENARIOS [REPEATS [EXTRA-FLAG]]]: 26B-A4B, 32 prompts, random-init weights if made
  local W=(--no-parity)
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B --parity)
  U compare -m 26B-A4B --gpus $2 "${W[@]}" --engines $1 -s ${3:-$SC} --repeats ${4:-3} --num-prompts 32 ${5:-} "${RUN[@]}" \
    > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
finish() {
  wait "$@"
  kill $WATCHDOG 2>/dev/null
  df -h /tmp | tail -1 >> $L/plan.log
  log "plan done"
}
