#!/usr/bin/env bash
# GPU plan, session 4 of 2026-11-27, one 4-GPU host. Started detached by setup4.sh.
# Every GPU step is a harness command; this file only orders them over the GPUs and stops them at the deadline
# (/tmp/deadline, epoch seconds; SIGTERM lets the harness record the cell in flight as interrupted; SIGINT would
# not do: background jobs of a non-interactive shell ignore it).
set -u
REPO=/tmp/repo
export PY=/opt/torch/.venv/bin/python3
export HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:$REPO PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; mkdir -p $L /tmp/runs
cd $REPO
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
left() { echo $(( $(cat /tmp/deadline) - $(date +%s) )); }
# U: a harness command, not started with less than 100 s to the deadline
U() { local t; t=$(left); if [ "$t" -lt 100 ]; then log "skipped (deadline): $*"; return 124; fi; $PY -m harness "$@"; }
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
log "phase0 start"
# watchdog: at the deadline, SIGTERM every harness command (they record interrupted cells and stop their servers)
( while sleep 3; do
    if [ $(date +%s) -ge $(cat /tmp/deadline) ]; then
      log "deadline: SIGTERM to harness commands"; pkill -TERM -f "python3 -m harness (compare|patches|kernels)"
      sleep 40; pkill -KILL -f "python3 -m harness (compare|patches|kernels)"; pkill -KILL -f "sglang.launch_server"
      pkill -KILL -f "vllm.entrypoints"; pkill -KILL -f pytest; log "deadline: killed what was left"; break
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
for m in 31B 26B-A4B E4B E2B; do $PY -m harness bench -e sglang -m $m -s chat --dry-run > $L/synth-$m.log 2>&1; log "synth $m rc=$?"; done
# C part 1 needs only sglang: patch GPU tests and the gated 0016 bench (#5, #6)
( export CUDA_VISIBLE_DEVICES=3
  U patches test --gpu --tree $TREE --only 0009 --only 0014 --only 0016 > $L/C-tests.log 2>&1; log "C tests rc=$?"
  U kernels run --name extend-attn-hopper-tiles --tree $TREE --patch 0016-extend-attn-hopper-tiles.patch --runs-dir /tmp/runs \
    --timeout 240 -- '{python}' benchmark/kernels/gemma4/bench_extend_attn_hopper_tiles.py --out '{out}' > $L/C-K0016.log 2>&1
  log "C kernel 0016 rc=$?" ) > /dev/null 2>&1 &
CPART1=$!
# A part 1: the 2-GPU all-reduce fusion test (its timed pre-build also warms FlashInfer's JIT cache for 31B TP=2)
( export CUDA_VISIBLE_DEVICES=0,1 SGLANG_TEST_ARF_WORKER_TIMEOUT=300
  U patches test --gpu --tree $TREE --only 0020 > $L/A-T0020.log 2>&1; log "A test 0020 rc=$?" ) > /dev/null 2>&1 &
APART1=$!
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
log "vllm installed: $(tail -1 $L/install-vllm.log)"
$PY -m harness env check --require-gpu > $L/env-check.log 2>&1; log "env check rc=$?"
# B (GPU2): 26B-A4B, 3 engines x chat/summarization x 3 repeats (#9); greedy parity under the same dummy weights
( export CUDA_VISIBLE_DEVICES=2
  U compare -m 26B-A4B --engines sglang-patched,vllm,sglang -s chat,summarization --repeats 3 --num-prompts 32 --parity \
    "${RUN[@]}" > $L/B-26B.log 2>&1; log "B 26B rc=$?"
  U compare -m 26B-A4B --engines sglang-patched,vllm,sglang -s decode-burst --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/B-26B-db.log 2>&1; log "B 26B decode-burst rc=$?" ) > /dev/null 2>&1 &
TB=$!
# A (GPU0,1): 31B TP=2 (#10)
( export CUDA_VISIBLE_DEVICES=0,1
  while kill -0 $APART1 2>/dev/null; do sleep 2; done
  U compare -m 31B --tp 2 --engines sglang-patched,sglang-patched-no-ar-fusion,sglang,vllm -s chat,summarization \
    --num-prompts 32 --parity "${RUN[@]}" > $L/A-31B.log 2>&1; log "A 31B rc=$?"
  U compare -m 31B --tp 2 --engines sglang-patched-no-custom-ar,sglang-patched -s decode-burst --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/A-31B-car.log 2>&1; log "A 31B custom-AR rc=$?" ) > /dev/null 2>&1 &
TA=$!
# C part 2 (GPU3): YOCO off/on on long-prefill-7k (E4B, E2B) with parity, mm-images before/after (#6, #9)
( export CUDA_VISIBLE_DEVICES=3
  while kill -0 $CPART1 2>/dev/null; do sleep 2; done
  U compare -m E4B --engines sglang,sglang-patched,sglang-patched-yoco -s long-prefill-7k --num-prompts 32 --parity \
    "${RUN[@]}" > $L/C-E4B-lp.log 2>&1; log "C E4B long-prefill rc=$?"
  U compare -m E2B --engines sglang-patched,sglang-patched-yoco -s long-prefill-7k --num-prompts 32 --parity \
    "${RUN[@]}" > $L/C-E2B-lp.log 2>&1; log "C E2B long-prefill rc=$?"
  U compare -m E4B --engines sglang,sglang-patched,vllm -s mm-images --num-prompts 32 --no-parity \
    "${RUN[@]}" > $L/C-E4B-mm.log 2>&1; log "C E4B mm-images rc=$?" ) > /dev/null 2>&1 &
TC=$!
wait $TA $TB $TC
kill $WATCHDOG 2>/dev/null
log "plan done"
