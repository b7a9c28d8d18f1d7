#!/usr/bin/env bash
# GPU plan for session 14 (nvidia-h200-x4 or h100-x4; x2 falls back to plan21's split). Started detached by
# setup.sh; plan-common.sh is the shared part (installs, deadline watchdog). Send BOTH bundles: `vllm bench serve`,
# in the vLLM bundle, is the load generator for every engine.
# The stack now ends with 0028-0030 (the full-attention layers' prefill: empty query blocks return, 32-bit KV slot
# offsets, SM90's head_dim-512 tile (32, 32, 4, 2)), which no server has run. With four GPUs this lease measures
# the whole 26B-A4B matrix in one lease: every engine on chat, summarization, prefill-3k, decode-burst and
# balanced-500 x3 (32 prompts, as sessions 8-13), one engine per GPU:
#   GPU 0: sglang-patched with SGLang's profiles, then the full-prefix probe again
#   GPU 1: 0028-0030's kernel benches and GPU tests while the weights are made, then their same-stack control
#          sglang-patched-no-full-attn-prefill (the three switched off)
#   GPU 2: vLLM 0.22.0, then (if 7 minutes are left) vLLM on E4B long-prefill-7k and mm-images x2
#   GPU 3: E4B's random-init weights while 26B-A4B's are made (GPU 0), then unpatched sglang 0.5.12, then (if
#          6 minutes are left) E4B sglang-patched and sglang on long-prefill-7k and mm-images x2
set -u
. /tmp/gpu/plan-common.sh
SC=chat,summarization,prefill-3k,decode-burst,balanced-500
# need SECONDS WHAT: true if at least SECONDS are left before the deadline (a tail not worth starting is logged)
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
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
e4b() {  # e4b GPU ENGINES: E4B on long-prefill-7k and mm-images x2 (random-init weights made on GPU 3)
  [ -d /tmp/rinit/E4B ] || { log "skipped (no E4B weights): E4B $2"; return; }
  U compare -m E4B --gpus $1 --model-path /tmp/rinit/E4B --no-parity --engines $2 \
    -s long-prefill-7k,mm-images --repeats 2 --num-prompts 32 "${RUN[@]}" > $L/E-E4B-${2//,/+}.log 2>&1
  log "E E4B $2 rc=$?"
}
( init 26B-A4B 0; touch /tmp/init.done ) &
# every compare waits for the vLLM install too: `vllm bench serve` is the load generator
( waitinit; waitvllm; m26 sglang-patched 0 $SC 3 --profile; probe 0 ) > /dev/null 2>&1 & TA=$!
if [ "$NG" -ge 4 ]; then
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-no-full-attn-prefill 1 $SC 3 ) > /dev/null 2>&1 & TB=$!
  ( waitinit; waitvllm; m26 vllm 2 $SC 3; need 420 "E4B vllm" && e4b 2 vllm ) > /dev/null 2>&1 & TC=$!
  ( init E4B 3; waitinit; waitvllm; m26 sglang 3 $SC 3; need 360 "E4B sglang-patched,sglang" && e4b 3 sglang-patched,sglang ) \
    > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( benches 1; waitinit; waitvllm; m26 sglang-patched-no-full-attn-prefill 1 summarization,prefill-3k 3
    m26 vllm 1 chat,decode-burst 3 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
