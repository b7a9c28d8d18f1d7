#!/usr/bin/env bash
# GPU plan, template for the next lease (#10 on one 4-GPU host), Started detached by setup6.sh.
# Every GPU step is a harness command; this file only orders them over the GPUs and stops them at the deadline
# (/tmp/deadline, epoch seconds; SIGTERM lets the harness record the cell in flight as interrupted).
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
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
log "phase0 start"
( while sleep 3; do
    if [ $(date +%s) -ge $(cat /tmp/deadline) ]; then
      log "deadline: SIGTERM to harness commands"; pkill -TERM -f "python3 -m harness (compare|patches|kernels|model)"
      sleep 90; pkill -KILL -f "python3 -m harness (compare|patches|kernels|model)"; pkill -KILL -f "sglang.launch_server"
      pkill -KILL -f "vllm.entrypoints"; pkill -KILL -f pytest; pkill -KILL -f "harness.weights_init"; log "deadline: killed what was left"; break
    fi
  done ) &
WATCHDOG=$!
for e in sglang vllm; do
  ( while [ ! -f /tmp/parts/$e/ready ]; do sleep 1; done
    log "install $e start"
    $PY -m harness env install-bundle /tmp/parts/$e --target /tmp/site-$e --python $PY --require-gpu > $L/install-$e.log 2>&1
    echo "rc=$?" >> $L/install-$e.log ) &
done
while ! grep -q "rc=" $L/install-sglang.log 2>/dev/null; do sleep 1; done
log "sglang installed: $(tail -1 $L/install-sglang.log)"
$PY -m harness patches apply --source /tmp/site-sglang > $L/apply.log 2>&1; log "apply rc=$?"
TREE=$($PY -c "from harness.engines import patched_tree_default; print(patched_tree_default())")
log "tree $TREE"
$PY -m harness bench -e sglang -m 31B -s chat --dry-run > $L/synth-31B.log 2>&1; log "synth 31B rc=$?"
# P01 (GPUs 0,1): seeded random 31B weights (recipe postnorm-v1), vLLM TP=2 chat/summarization (dummy weights),
# then fusion on/off greedy parity on the random weights (check each record's signal)
( export CUDA_VISIBLE_DEVICES=0,1
  W=()
  if U model synth -m 31B -o /tmp/rinit/31B > $L/P01-init-31B.log 2>&1 && \
     U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/P01-init-31B.log 2>&1; then
    W=(--model-path /tmp/rinit/31B); log "P01 init 31B ok: $(tail -1 $L/P01-init-31B.log | cut -c1-200)"
  else log "P01 init 31B failed: $(tail -1 $L/P01-init-31B.log | cut -c1-200)"; fi
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m 31B --tp 2 --engines vllm -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/P01-31B-vllm.log 2>&1; log "P01 31B vllm rc=$?"
  if [ ${#W[@]} -gt 0 ]; then
    U compare -m 31B --tp 2 "${W[@]}" --engines sglang-patched,sglang-patched-no-ar-fusion -s decode-burst \
      --num-prompts 32 --parity "${RUN[@]}" > $L/P01-31B-fusion-parity.log 2>&1; log "P01 31B fusion parity rc=$?"
  fi ) > /dev/null 2>&1 &
TA=$!
# P23 (GPUs 2,3): SGLang patched and unpatched TP=2 chat/summarization (dummy weights), the same lease as vLLM
( export CUDA_VISIBLE_DEVICES=2,3
  U compare -m 31B --tp 2 --engines sglang-patched,sglang -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/P23-31B-sglang.log 2>&1; log "P23 31B sglang rc=$?" ) > /dev/null 2>&1 &
TB=$!
( while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  log "vllm installed: $(tail -1 $L/install-vllm.log)"
  $PY -m harness env check --require-gpu > $L/env-check.log 2>&1; log "env check rc=$?" ) &
wait $TA $TB
kill $WATCHDOG 2>/dev/null
df -h /tmp | tail -1 >> $L/plan.log
log "plan done"
