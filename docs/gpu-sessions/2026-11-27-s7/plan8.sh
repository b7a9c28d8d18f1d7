#!/usr/bin/env bash
# GPU plan for the next lease (#10 first): 31B TP=2, vLLM with sglang and sglang-patched in the same lease, greedy
# parity (with logprob margins at each divergence) on seeded random-init weights. Started detached by setup.sh;
# the shared part (environment, deadline watchdog, installs, patched tree) is plan-common.sh.
# Session 6 showed the order matters: a vLLM 31B TP=2 start takes more than 6 minutes even with FlashInfer's
# trtllm_comm built ahead (torch.compile 132 s, then KV sizing and CUDA graphs), so vLLM goes first in its slot.
# 4 GPUs: `compare --gpus 0,1,2,3 --tp 2` deals the engines round-robin over two TP=2 slots (harness/fanout.py):
#   slot 0,1: vllm then sglang (parity vllm vs sglang: two independent implementations, the natural divergence)
#   slot 2,3: sglang-patched then sglang-patched-no-ar-fusion (parity: fusion on vs off)
# 2 GPUs: vllm then sglang-patched (the pair that decides "where is the patched engine behind vLLM"), then, if at
#   least 300 s are left, `harness parity` sglang-patched vs sglang-patched-no-ar-fusion at TP=2 (fusion on vs off).
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; FlashInfer JIT builds (harness env warm-jit, CPU only) may have overlapped the first cells"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
( U env warm-jit -e sglang-patched --tp 2 > $L/warm-jit-sglang.log 2>&1; log "warm-jit sglang-patched rc=$?" ) > /dev/null 2>&1 &
TW1=$!
( while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
  U env warm-jit -e vllm --tp 2 > $L/warm-jit-vllm.log 2>&1; log "warm-jit vllm rc=$?" ) > /dev/null 2>&1 &
TW2=$!
W=()
if CUDA_VISIBLE_DEVICES=0 U model synth -m 31B -o /tmp/rinit/31B > $L/init-31B.log 2>&1 && \
   CUDA_VISIBLE_DEVICES=0 U model init-weights -m 31B --model-path /tmp/rinit/31B --env sglang >> $L/init-31B.log 2>&1; then
  W=(--model-path /tmp/rinit/31B --parity); log "init 31B ok: $(tail -1 $L/init-31B.log | cut -c1-200)"
else W=(--no-parity); log "init 31B failed (dummy weights, no parity): $(tail -3 $L/init-31B.log | cut -c1-300)"; fi
while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done
if [ "$NG" -ge 4 ]; then
  U compare -m 31B --tp 2 --gpus 0,1,2,3 "${W[@]}" --engines vllm,sglang-patched,sglang,sglang-patched-no-ar-fusion \
    -s chat,summarization --num-prompts 32 "${RUN[@]}" > $L/A-31B-tp2.log 2>&1; log "A 31B tp2 x2 slots rc=$?"
else
  U compare -m 31B --tp 2 --gpus 0,1 "${W[@]}" --engines vllm,sglang-patched -s chat,summarization --num-prompts 32 \
    "${RUN[@]}" > $L/A-31B-tp2.log 2>&1; log "A 31B tp2 rc=$?"
  # fusion on vs off on the same random weights (0019/0020): a standalone parity record, when time is left for two
  # more server starts (the second start of a patched server took 60-90 s with warm caches)
  if [ "${W[0]}" = --model-path ] && [ "$(left)" -ge 300 ]; then
    mkdir -p /tmp/runs/parity
    CUDA_VISIBLE_DEVICES=0,1 U parity --a sglang-patched --b sglang-patched-no-ar-fusion --model 31B --tp 2 \
      --model-path /tmp/rinit/31B --out /tmp/runs/parity/parity-31B-tp2-sglang-patched-vs-no-ar-fusion.json \
      > $L/B-parity-fusion.log 2>&1; log "B parity fusion on/off rc=$?"
  else log "B parity fusion on/off skipped: $(left) s left"; fi
fi
finish $TW1 $TW2
