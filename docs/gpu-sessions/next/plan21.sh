#!/usr/bin/env bash
# GPU plan for the lease after session 13 (nvidia-h200-x2 or x4). Started detached by setup.sh; plan-common.sh is the
# shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`, in the vLLM bundle, is the load
# generator for every engine.
# The stack now ends with 0028-0030 (the full-attention layers' prefill: empty query blocks return, 32-bit KV slot
# offsets, SM90's head_dim-512 tile (32, 32, 4, 2)), which no server has run. Session 13's profile: the five full
# layers were 2.44 s of the summarization pass's 3.64 s of extend attention, 9.5 -> 26.3 ms per launch as the
# chunked tail's empty blocks grew; the probe put forward 30 at 25.5 ms, its parts at 9.3 + 4.9 ms, and the three
# patches' figures together at about 8.7 ms.
#   GPU 0: sglang-patched, chat, summarization, prefill-3k, decode-burst x3 (32 prompts, as sessions 8-13), with
#          SGLang's profiles; then the full-prefix probe again (the patched tree's launch is now the probe's default)
#   GPU 1: 0028-0030's kernel benches and GPU tests while the weights are made, then their same-stack control
#          sglang-patched-no-full-attn-prefill (the three switched off) on summarization and prefill-3k x3 (where
#          the full layers' prefill matters; with four GPUs all four scenarios), then with two GPUs vLLM on chat and
#          decode-burst x3 (vLLM has not run those in a lease with sglang-patched since session 10)
#   GPU 2 (x4): vLLM, the four scenarios x3 (the reference engine of the same lease)
#   GPU 3 (x4): unpatched sglang, the four scenarios x3
set -u
. /tmp/gpu/plan-common.sh
bench() {  # bench GPU NAME PATCH SCRIPT: one patch's kernel bench
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name $2 --tree $TREE --patch $3 --runs-dir /tmp/runs --timeout 300 \
    -- '{python}' benchmark/kernels/gemma4/$4 --out '{out}' > $L/K-$2.log 2>&1
  log "K $2 rc=$?"
}
benches() {  # benches GPU: 0028-0030's kernel benches and GPU tests
  bench $1 extend-attn-skip-empty-blocks 0028-extend-attn-skip-empty-blocks.patch bench_extend_attn_skip_empty_blocks.py
  bench $1 extend-attn-i32-kv-slots 0029-extend-attn-i32-kv-slots.patch bench_extend_attn_i32_kv_slots.py
  bench $1 extend-attn-hd512-prefill-tile 0030-extend-attn-hd512-prefill-tile.patch bench_extend_attn_hd512_prefill_tile.py
  CUDA_VISIBLE_DEVICES=$1 U patches test --gpu --tree $TREE --only 0028 --only 0029 --only 0030 > $L/T-0028-0030.log 2>&1
  log "T 0028-0030 rc=$?: $(tail -1 $L/T-0028-0030.log | cut -c1-160)"
}
probe() {  # probe GPU: the full-attention layers' chunked-prefill shapes (full_prefix_probe.py's docstring)
  CUDA_VISIBLE_DEVICES=$1 U kernels run --name full-prefix --tree $TREE --runs-dir /tmp/runs --timeout 400 \
    -- '{python}' $REPO/docs/gpu-sessions/next/full_prefix_probe.py --out '{out}' > $L/K-full-prefix.log 2>&1
  log "K full-prefix rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
# every compare waits for the vLLM install too: `vllm bench serve` is the load generator
( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile; probe 0 ) > /dev/null 2>&1 & TA=$!
if [ "$NG" -ge 4 ]; then
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-no-full-attn-prefill 1 ) > /dev/null 2>&1 & TB=$!
  ( waitinit; waitvllm; m26 vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( waitinit; waitvllm; m26 sglang 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-no-full-attn-prefill 1 summarization,prefill-3k 3
    m26 vllm 1 chat,decode-burst 3 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
