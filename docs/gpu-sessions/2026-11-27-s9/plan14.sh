#!/usr/bin/env bash
# GPU plan for a single H200 (session 9, second lease): patches 0022 (the sliding-window loop bound of SGLang's
# Triton extend kernel) and 0023 (an M-scaled default fused-MoE tile where no tuned config exists), the two causes
# session 9's profiles gave for sglang-patched's +44% TTFT behind vLLM on 26B-A4B. Cheapest first, so the
# deadline cuts the least valuable part:
#   1. the 26B-A4B random-init checkpoint (seed 0, postnorm-v1: sessions 8-9's) while the vllm bundle arrives;
#   2. both kernel benchmarks (each patch on vs off in one process, which splits the effect between them);
#   3. 26B-A4B summarization x2: sglang-patched (both on), then the same-stack control sglang-patched-no-0022-0023
#      (both off; one server start, the budget allows no more);
#   4. both patches' GPU tests (their benchmarks already check outputs against an fp32 reference).
# Needs the sglang bundle, and the vllm bundle for the load client (vllm bench serve).
set -u
. /tmp/gpu/plan-common.sh
NOTE="host: 1 GPU; patches 0022+0023 A/B (sglang-patched: both on; sglang-patched-no-0022-0023: both off)"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
kb() {  # kb NAME PATCH SCRIPT
  U kernels run --name $1 --tree $TREE --patch $2 --runs-dir /tmp/runs --timeout 240 \
    -- '{python}' $3 --out '{out}' > $L/K-$1.log 2>&1
  log "K $1 rc=$?: $(tail -2 $L/K-$1.log | tr '\n' ' ' | cut -c1-200)"
}
CUDA_VISIBLE_DEVICES=0 U model synth -m 26B-A4B -o /tmp/rinit/26B-A4B > $L/init-26B-A4B.log 2>&1 && \
  CUDA_VISIBLE_DEVICES=0 U model init-weights -m 26B-A4B --model-path /tmp/rinit/26B-A4B --env sglang >> $L/init-26B-A4B.log 2>&1
rc=$?; log "init 26B-A4B rc=$rc: $(tail -1 $L/init-26B-A4B.log | cut -c1-160)"
W=(--model-path /tmp/rinit/26B-A4B); [ $rc = 0 ] || W=()
kb extend-attn-swa-bound 0022-extend-attn-swa-loop-bound.patch benchmark/kernels/gemma4/bench_extend_attn_swa_bound.py
kb moe-default-config 0023-moe-default-config-scaled.patch benchmark/kernels/gemma4/bench_moe_default_config.py
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
U compare -m 26B-A4B --gpus 0 "${W[@]}" --engines sglang-patched,sglang-patched-no-0022-0023 \
  -s summarization --repeats 2 --num-prompts 32 --no-parity "${RUN[@]}" > $L/A-26B-ab.log 2>&1
log "A 26B A/B rc=$?"
U patches test --gpu --tree $TREE --only 0022 --only 0023 > $L/T-0022-0023.log 2>&1
log "T 0022 0023 rc=$?: $(tail -1 $L/T-0022-0023.log | cut -c1-160)"
kill $WATCHDOG 2>/dev/null; log "plan done"
