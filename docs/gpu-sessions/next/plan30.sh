#!/usr/bin/env bash
# GPU plan for a one-GPU lease (`nvidia-h200`), after session 17 (whose first machine, running plan28, was lost). Started
# detached by setup.sh; plan-common.sh is the shared part. Send BOTH bundles (`vllm bench serve` is every engine's
# load generator); no vLLM server is started. Poll with peek.sh (it brings the runs back at every call).
# One question: patches 0032 + 0033 against their pair control in one lease, with greedy parity between them (session
# 16: TPOT -4.1 to -4.7% against session 15's sglang-patched across leases; parity 17/20 against session 15's
# answers, cause not settled). Timing from session 17: the first 26B-A4B server start on a fresh host took 194 s
# (CUDA-graph capture compiling Triton kernels), a decode-heavy cell 35-75 s: two engines x (decode-burst, chat) x3
# with parity fit in the ~20 minutes a one-GPU lease leaves after the transfer; (decode-burst, chat, balanced-500)
# x3 would not.
# 1. one compare of sglang-patched-qkv-per-token-router-eager (0032 and 0033 off) and sglang-patched (the current
#    code) on decode-burst, chat x3 with parity: one run, so its group's headline has the A/B (the control is a
#    column beside sglang-patched) and the run computes the parity pair itself; the control's server goes first
# 2. with 7.5 minutes left: unpatched sglang 0.5.12 on decode-burst x2
set -u
. /tmp/gpu/plan-common.sh
DC=decode-burst,chat
need() { if [ "$(left)" -lt "$1" ]; then log "skipped (needs $1 s, $(left) left): $2"; return 1; fi; }
( init 26B-A4B 0; df -h /tmp | tail -1 >> $L/plan.log; touch /tmp/init.done ) &
( waitinit; waitvllm
  m26 sglang-patched-qkv-per-token-router-eager,sglang-patched 0 $DC 3
  need 450 "26B sglang" && m26 sglang 0 decode-burst 2 ) > /dev/null 2>&1 & TA=$!
finish $TA
