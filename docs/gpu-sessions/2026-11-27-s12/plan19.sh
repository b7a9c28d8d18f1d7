#!/usr/bin/env bash
# GPU plan for the lease after session 11 (nvidia-h200-x4; x2 fallback). Started detached by setup.sh;
# plan-common.sh is the shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM
# bundle, is the load generator for every engine (session 11 lost 4 minutes to leaving it out).
# The stack now ends with 0024 (32-bit token offsets in the Triton extend kernel), which no GPU has run:
#   GPU 0: sglang-patched, chat, summarization, prefill-3k, decode-burst x3 (32 prompts, as sessions 8-11), with
#          SGLang's profiles (session 10: sliding layers 4.91 s of 11.24 s, 6.1 ms per extend launch; the isolated
#          32-bit kernel took 2.6 ms);
#   GPU 1: sglang-patched-no-i32-offsets (0024 off), the same cells: 0024's same-stack A/B;
#   GPU 2: vLLM, the same cells (the new stack's group then holds the reference engine of the same lease);
#   GPU 3: 0024's kernel bench and GPU test (no weights needed), the GPU tests of 0016, 0023 and 0025, the sliding-tile
#          probe (swa_tiles_probe.py: four SM90 tiles x 64/32-bit offsets x 0025's loop bound), then unpatched sglang on the four
#          scenarios as far as the deadline allows.
# With two GPUs: GPU 0 sglang-patched, then the GPU tests of 0016/0023/0025 and the tile probe; GPU 1 0024's bench and
# GPU test (while the weights are made and vLLM installs), then sglang-patched-no-i32-offsets.
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
m26() {  # m26 ENGINE GPU [SCENARIOS [REPEATS [EXTRA-FLAG]]]
  local W=(--no-parity)
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B --parity)
  U compare -m 26B-A4B --gpus $2 "${W[@]}" --engines $1 -s ${3:-$SC} --repeats ${4:-3} --num-prompts 32 ${5:-} "${RUN[@]}" \
    > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
bench24() { bench24a $1; bench24b $1; }
bench24a() {  # bench24a GPU: 0024's kernel bench and GPU test
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name extend-attn-i32-offsets --tree $TREE --patch 0024-extend-attn-i32-token-offsets.patch \
    --runs-dir /tmp/runs --timeout 300 -- '{python}' benchmark/kernels/gemma4/bench_extend_attn_i32_offsets.py --out '{out}' \
    > $L/K-extend-i32.log 2>&1; log "K 0024 rc=$?"
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0024 > $L/T-0024.log 2>&1
  log "T 0024 rc=$?: $(tail -1 $L/T-0024.log | cut -c1-160)"
}
bench24b() {  # bench24b GPU: the GPU tests of 0016, 0023 and 0025, then the sliding-tile probe
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0016 --only 0023 --only 0025 > $L/T-0016-0023.log 2>&1
  log "T 0016 0023 0025 rc=$?: $(tail -1 $L/T-0016-0023.log | cut -c1-160)"
  # which tile for the sliding layers now that their offsets are 32-bit (swa_tiles_probe.py's docstring)
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name swa-tiles --tree $TREE --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' $REPO/docs/gpu-sessions/next/swa_tiles_probe.py --out '{out}' > $L/K-swa-tiles.log 2>&1
  log "K swa-tiles rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
# every compare waits for the vLLM install too: `vllm bench serve` is the load generator (plan19 as first written
# raced it: init ends about 40 s before the vLLM bundle is installed)
if [ "$NG" -ge 4 ]; then
  ( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile ) > /dev/null 2>&1 & TA=$!
  ( waitinit; waitvllm; m26 sglang-patched-no-i32-offsets 1 ) > /dev/null 2>&1 & TB=$!
  ( waitinit; waitvllm; m26 vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( bench24 3; waitinit; waitvllm; m26 sglang 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else  # two GPUs: 0024's bench and test fill GPU 1's wait for the weights and the vLLM install; the rest after GPU 0's runs
  ( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile; bench24b 0 ) > /dev/null 2>&1 & TA=$!
  ( bench24a 1; waitinit; waitvllm; m26 sglang-patched-no-i32-offsets 1 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
