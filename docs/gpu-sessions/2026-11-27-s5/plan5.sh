#!/usr/bin/env bash
# GPU plan, session 5 of 2026-11-27, one 4-GPU host. Started detached by setup5.sh.
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
      sleep 40; pkill -KILL -f "python3 -m harness (compare|patches|kernels|model)"; pkill -KILL -f "sglang.launch_server"
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
for m in 31B 26B-A4B; do $PY -m harness bench -e sglang -m $m -s chat --dry-run > $L/synth-$m.log 2>&1; log "synth $m rc=$?"; done
$PY -m harness bench -e sglang -m 26B-A4B -s chat --mtp --dry-run > $L/synth-26B-assistant.log 2>&1; log "synth 26B assistant rc=$?"
# A (GPUs 0,1), #10: seeded random 31B weights (informative greedy parity), fusion on/off + custom AR on/off on
# decode-burst with parity, then vLLM TP=2 chat/summarization (dummy weights, like the earlier 31B runs)
( export CUDA_VISIBLE_DEVICES=0,1
  W=()
  if [ -f /tmp/rinit/31B/model.safetensors.index.json ] && grep -q "A init 31B ok" $L/plan-1.log; then
    W=(--model-path /tmp/rinit/31B); log "A init 31B: kept from the first start of this plan"
  elif U model synth -m 31B -o /tmp/rinit/31B > $L/A-init-31B.log 2>&1 && \
     U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/A-init-31B.log 2>&1; then
    W=(--model-path /tmp/rinit/31B); log "A init 31B ok: $(tail -1 $L/A-init-31B.log | cut -c1-200)"
  else log "A init 31B failed (the runs below use dummy weights): $(tail -1 $L/A-init-31B.log | cut -c1-200)"; fi
  U compare -m 31B --tp 2 "${W[@]}" --engines sglang-patched,sglang-patched-no-ar-fusion,sglang-patched-no-custom-ar \
    -s decode-burst --num-prompts 32 --parity "${RUN[@]}" > $L/A-31B-tp2.log 2>&1; log "A 31B fusion/custom-AR rc=$?"
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m 31B --tp 2 --engines vllm -s chat,summarization --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/A-31B-vllm.log 2>&1; log "A 31B vllm rc=$?" ) > /dev/null 2>&1 &
TA=$!
# B (GPU2), #9: 26B-A4B sglang baseline on the whole text matrix, then sglang-patched on the three new scenarios,
# then MTP on for the baseline
( export CUDA_VISIBLE_DEVICES=2
  U compare -m 26B-A4B --engines sglang -s chat,summarization,decode-burst,prefill-3k,balanced-500 --repeats 3 \
    --num-prompts 32 --no-parity "${RUN[@]}" > $L/B-26B-sglang.log 2>&1; log "B 26B sglang rc=$?"
  U compare -m 26B-A4B --engines sglang-patched -s decode-burst,prefill-3k,balanced-500 --repeats 3 \
    --num-prompts 32 --no-parity "${RUN[@]}" > $L/B-26B-patched.log 2>&1; log "B 26B sglang-patched rc=$?"
  U compare -m 26B-A4B --engines sglang -s chat --mtp on --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/B-26B-mtp.log 2>&1; log "B 26B sglang MTP rc=$?" ) > /dev/null 2>&1 &
TB=$!
# C (GPU3): 0016's updated GPU test and three-column bench (#5), vLLM on the three new 26B scenarios, MTP on for
# sglang-patched and vLLM (#9)
( export CUDA_VISIBLE_DEVICES=3
  U patches test --gpu --tree $TREE --only 0016 > $L/C-T0016.log 2>&1; log "C test 0016 rc=$?"
  U kernels run --name extend-attn-hopper-tiles --tree $TREE --patch 0016-extend-attn-hopper-tiles.patch --runs-dir /tmp/runs \
    --timeout 300 -- '{python}' benchmark/kernels/gemma4/bench_extend_attn_hopper_tiles.py --out '{out}' > $L/C-K0016.log 2>&1
  log "C kernel 0016 rc=$?"
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U compare -m 26B-A4B --engines vllm -s decode-burst,prefill-3k,balanced-500 --repeats 3 \
    --num-prompts 32 --no-parity "${RUN[@]}" > $L/C-26B-vllm.log 2>&1; log "C 26B vllm rc=$?"
  U compare -m 26B-A4B --engines sglang-patched,vllm -s chat --mtp on --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/C-26B-mtp.log 2>&1; log "C 26B MTP rc=$?" ) > /dev/null 2>&1 &
TC=$!
( while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  log "vllm installed: $(tail -1 $L/install-vllm.log)"
  $PY -m harness env check --require-gpu > $L/env-check.log 2>&1; log "env check rc=$?" ) &
wait $TA $TB $TC
kill $WATCHDOG 2>/dev/null
df -h /tmp | tail -1 >> $L/plan.log
log "plan done"
