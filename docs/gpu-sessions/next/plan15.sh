#!/usr/bin/env bash
# GPU plan for the next lease (prepared in session 9, not run yet; best on nvidia-h200-x4, works on x2). Started
# detached by setup.sh; plan-common.sh is the shared part (installs, deadline watchdog). #9's open GPU items after
# session 9:
#   - the stack changed (0022 dropped, 0023 added and gated): 26B-A4B sglang-patched, sglang and vLLM again, in one
#     lease, on chat, summarization, prefill-3k and decode-burst x3 (32 prompts, as sessions 8-9), SGLang with
#     --profile (the pass flushes the prefix cache first now), so the report group holds all three;
#   - 0023's same-stack control (sglang-patched-no-moe-default) on the same cells: chat and decode-burst decode at
#     M 32 (new tile), summarization prefill at 8192 (new tile); its kernel bench and GPU test first;
#   - the sliding-layer question of session 9: the server's sliding-window launches of _fwd_kernel took 2-3x the
#     isolated kernel on similar shapes; the profiles above (summarization and prefill-3k, cache flushed) give the
#     per-launch times again, next to the 0016/0022 benches' isolated numbers;
#   - 0018's control on a dense model: E4B sglang-patched vs sglang-patched-chunk8192 on long-prefill-7k x3
#     (26B-A4B is MoE, which 0018 leaves alone, as session 9 confirmed).
#   GPU 0: 26B-A4B sglang-patched   GPU 1: 26B-A4B sglang   GPU 2: 26B-A4B vLLM
#   GPU 3: the sliding-layer probe (swa_probe.py: the extend kernel on the server's shape with window 1024, 1023
#          and none, plain and with the server's call), 0023 kernel bench + GPU test, then 26B-A4B
#          sglang-patched-no-moe-default, then the E4B 0018 control
# With 2 GPUs: GPU 1 the sliding-layer probe while the weights are made; then GPU 0 sglang-patched (profiled) then
# sglang; GPU 1 vLLM then sglang-patched-no-moe-default (0023's bench and the E4B control as far as the deadline
# allows).
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
m26() {  # m26 ENGINE GPU [--profile]
  local W=(--no-parity)
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B --parity)
  U compare -m 26B-A4B --gpus $2 "${W[@]}" --engines $1 -s $SC --repeats 3 --num-prompts 32 ${3:-} "${RUN[@]}" \
    > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
probe() {  # probe GPU: the sliding-layer probe (docs/gpu-sessions/next/swa_probe.py)
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name swa-probe --tree $TREE --runs-dir /tmp/runs --timeout 240 \
    -- '{python}' $REPO/docs/gpu-sessions/next/swa_probe.py --out '{out}' > $L/K-swa-probe.log 2>&1
  log "K swa-probe rc=$?: $(grep -c median_us $L/K-swa-probe.log) rows"
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
if [ "$NG" -lt 4 ]; then ( probe 1; touch /tmp/probe.done ) & fi  # on GPU 1 while the 26B weights are made on GPU 0
init 26B-A4B 0
if [ "$NG" -ge 4 ]; then
  ( m26 sglang-patched 0 --profile ) > /dev/null 2>&1 & TA=$!
  ( m26 sglang 1 --profile ) > /dev/null 2>&1 & TB=$!
  ( waitvllm; m26 vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( probe 3; bench23 3; m26 sglang-patched-no-moe-default 3; e4b18 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( m26 sglang-patched 0 --profile; m26 sglang 0 ) > /dev/null 2>&1 & TA=$!
  ( while [ ! -f /tmp/probe.done ]; do sleep 1; done; waitvllm; m26 vllm 1; m26 sglang-patched-no-moe-default 1; bench23 1; e4b18 1 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
