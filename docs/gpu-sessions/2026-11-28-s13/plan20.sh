#!/usr/bin/env bash
# GPU plan for the lease after session 12 (nvidia-h200-x2 or x4). Started detached by setup.sh; plan-common.sh is the
# shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM bundle, is the load
# generator for every engine.
# The stack now ends with 0026 (SM90 sliding-window prefill tile (64, 64, 8, 1) with the bounded loop), which no
# server has run (session 12's tile probe: -49/-43/-33% on the 26B sliding shapes):
#   GPU 0: sglang-patched, chat, summarization, prefill-3k, decode-burst x3 (32 prompts, as sessions 8-12), with
#          SGLang's profiles (session 12: sliding layers 2.71 ms per extend launch; the probe's tile: 1.32 ms);
#          then 0027's bench and GPU test (the opt-in sequence-major grid, for the full layers' chunked batches), the
#          full-layer probe (full_prefix_probe.py) and the GPU tests of 0024 and 0025 (0026 changed them);
#   GPU 1: 0026's kernel bench and GPU test (while the weights are made), then sglang-patched-no-swa-prefill-tile
#          (0026 off), the same cells: 0026's same-stack A/B; with two GPUs then vLLM on chat and decode-burst x2
#          as far as the deadline allows;
#   GPU 2 (x4): vLLM, the same cells (the reference engine of the same lease on all four scenarios);
#   GPU 3 (x4): 0027's bench and GPU test, the full-layer probe, then unpatched sglang as far as the deadline allows.
set -u
. /tmp/gpu/plan-common.sh
bench26() {  # bench26 GPU: 0026's kernel bench and GPU test
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name extend-attn-swa-prefill-tile --tree $TREE \
    --patch 0026-extend-attn-swa-prefill-tile.patch --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' benchmark/kernels/gemma4/bench_extend_attn_swa_prefill_tile.py --out '{out}' > $L/K-swa-tile.log 2>&1
  log "K 0026 rc=$?"
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0026 > $L/T-0026.log 2>&1
  log "T 0026 rc=$?: $(tail -1 $L/T-0026.log | cut -c1-160)"
}
probe() {  # probe GPU: the full-attention layers' chunked-prompt slowdown (full_prefix_probe.py's docstring)
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name full-prefix --tree $TREE --runs-dir /tmp/runs --timeout 400 \
    -- '{python}' $REPO/docs/gpu-sessions/next/full_prefix_probe.py --out '{out}' > $L/K-full-prefix.log 2>&1
  log "K full-prefix rc=$?"
}
bench27() {  # bench27 GPU: 0027's (opt-in sequence-major grid) bench on the chunked-prefill batches, and its GPU test
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name extend-attn-seq-major-grid --tree $TREE \
    --patch 0027-extend-attn-seq-major-grid.patch --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' benchmark/kernels/gemma4/bench_extend_attn_seq_major_grid.py --out '{out}' > $L/K-seq-major.log 2>&1
  log "K 0027 rc=$?"
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0027 > $L/T-0027.log 2>&1
  log "T 0027 rc=$?: $(tail -1 $L/T-0027.log | cut -c1-160)"
}
tests2425() {  # tests2425 GPU: the GPU tests 0026 changed
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0024 --only 0025 > $L/T-0024-0025.log 2>&1
  log "T 0024 0025 rc=$?: $(tail -1 $L/T-0024-0025.log | cut -c1-160)"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
# every compare waits for the vLLM install too: `vllm bench serve` is the load generator
( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile; [ "$NG" -ge 4 ] || { bench27 0; probe 0; }; tests2425 0 ) \
  > /dev/null 2>&1 & TA=$!
( bench26 1; waitinit; waitvllm; m26 sglang-patched-no-swa-prefill-tile 1
  # two GPUs: the minutes left before the deadline (session 12: 10) go to vLLM on the scenarios it has not run on
  # this stack's predecessor in a lease with sglang-patched (session 12 ran it on summarization and prefill-3k)
  [ "$NG" -ge 4 ] || m26 vllm 1 chat,decode-burst 2 ) > /dev/null 2>&1 & TB=$!
if [ "$NG" -ge 4 ]; then
  ( waitinit; waitvllm; m26 vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( bench27 3; probe 3; waitinit; waitvllm; m26 sglang 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  finish $TA $TB
fi
