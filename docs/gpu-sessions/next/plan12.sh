#!/usr/bin/env bash
# GPU plan for the next lease (prepared in session 8, not run yet; best on nvidia-h200-x4, works on x2). Started
# detached by setup.sh; plan-common.sh is the shared part (installs, deadline watchdog). #9's open GPU items:
#   GPU 0: 26B-A4B random-init (seed 0, postnorm-v1: the checkpoint of session 8, fingerprint in the manifest),
#          sglang-patched on summarization and prefill-3k x2 with --profile (SGLang's profiler now starts with stacks
#          off; in session 8 its /stop_profile with stacks ran past 4 minutes and no SGLang profile came back),
#          with parity; then the 0018 chunk-cap control (sglang-patched-chunk8192, summarization x3)
#   GPU 1: the same for unpatched sglang (profile + parity): the profile of the TTFT gap to vLLM (+44% on
#          summarization, +44% on prefill-3k in session 8), next to vLLM's profile of session 8; then unpatched
#          sglang with MTP on 26B-A4B chat (dummy weights, one run: the MTP path's cost)
#   GPU 2: vLLM on the same two scenarios x2 with parity (the patch messages of 0019/0020
#          changed in session 8, so the stack hash did: this lease's runs form a new report group, and vLLM must be
#          in it), then E4B vLLM on mm-images (random-init E4B: its vision tower is initialised too)
#   GPU 3: E4B sglang-patched and sglang on mm-images, then the seed-0 postnorm-v1 31B checkpoint and its
#          `harness parity-floor` (bf16 vs float32 transformers on the parity prompts; E4B and 26B-A4B were measured
#          in session 8b), against which the 31B TP=2 parity records of sessions 6-7 can be read
# With 2 GPUs: GPU 0 the sglang-patched and sglang profiles in turn, GPU 1 vLLM, MTP, the E4B mm-images engines and the floors (as far as the deadline allows).
set -u
. /tmp/gpu/plan-common.sh
NG=$(nvidia-smi -L | wc -l)
NOTE="host: $NG GPUs; other harness jobs ran on the other GPUs of this host at the same time"
RUN=(--no-mmlu --no-report --runs-dir /tmp/runs --note "$NOTE")
init() {  # init MODEL GPU
  CUDA_VISIBLE_DEVICES=$2 U model synth -m $1 -o /tmp/rinit/$1 > $L/init-$1.log 2>&1 && \
    CUDA_VISIBLE_DEVICES=$2 U model init-weights -m $1 --model-path /tmp/rinit/$1 --env sglang >> $L/init-$1.log 2>&1
  local rc=$?; log "init $1 rc=$rc: $(tail -1 $L/init-$1.log | cut -c1-200)"
  [ $rc = 0 ] || rm -rf /tmp/rinit/$1
  return $rc
}
waitvllm() { while ! grep -q "rc=" $L/install-vllm.log 2>/dev/null; do sleep 1; done; }
prof() {  # prof ENGINE GPU [--profile]
  local W=(--no-parity)
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B --parity)
  U compare -m 26B-A4B --gpus $2 "${W[@]}" --engines $1 -s summarization,prefill-3k --repeats 2 --num-prompts 32 \
    ${3:-} "${RUN[@]}" > $L/A-26B-$1.log 2>&1; log "A 26B $1 rc=$?"
}
chunk() {
  local W=()
  [ -d /tmp/rinit/26B-A4B ] && W=(--model-path /tmp/rinit/26B-A4B)
  U compare -m 26B-A4B --gpus "$1" "${W[@]}" --engines sglang-patched-chunk8192 -s summarization --repeats 3 \
    --num-prompts 32 --no-parity "${RUN[@]}" > $L/C-26B-chunk8192.log 2>&1; log "C 26B chunk8192 rc=$?"
}
mtp() {
  U compare -m 26B-A4B --gpus "$1" --engines sglang -s chat --mtp on --num-prompts 32 --no-parity "${RUN[@]}" \
    > $L/D-26B-sglang-mtp.log 2>&1; log "D 26B sglang mtp rc=$?"
}
mm() {  # mm ENGINES GPU
  local W=()
  while [ ! -f $L/init-E4B.log ] || ! grep -q "init E4B" $L/plan.log; do sleep 2; done
  [ -d /tmp/rinit/E4B ] && W=(--model-path /tmp/rinit/E4B)
  U compare -m E4B --gpus $2 "${W[@]}" --engines $1 -s mm-images --num-prompts 32 --no-parity "${RUN[@]}" \
    > $L/E-E4B-mm-${1//,/-}.log 2>&1; log "E E4B mm $1 rc=$?"
}
floors() {  # floors GPU: the 31B floor (E4B and 26B-A4B were measured in session 8b); float32 31B needs an H200
  local mem avail
  mem=$(nvidia-smi -i $1 --query-gpu=memory.total --format=csv,noheader,nounits)
  avail=$(df --output=avail -BG /tmp | tail -1 | tr -dc 0-9)
  if [ "$mem" -lt 130000 ] || [ "$avail" -lt 80 ]; then log "F floor 31B skipped: GPU ${mem} MiB, disk ${avail} GB"; return; fi
  init 31B $1 || return
  CUDA_VISIBLE_DEVICES=$1 HARNESS_RUNS=/tmp/runs U parity-floor --model-path /tmp/rinit/31B --env sglang \
    > $L/F-floor-31B.log 2>&1; log "F floor 31B rc=$?: $(grep -m1 'pick the same' $L/F-floor-31B.log | cut -c1-160)"
}
( init E4B $(( NG - 1 )) ) > /dev/null 2>&1 &
init 26B-A4B 0
if [ "$NG" -ge 4 ]; then
  ( prof sglang-patched 0 --profile; chunk 0 ) > /dev/null 2>&1 & TA=$!
  ( prof sglang 1 --profile; mtp 1 ) > /dev/null 2>&1 & TB=$!
  ( waitvllm; prof vllm 2; mm vllm 2 ) > /dev/null 2>&1 & TC=$!
  ( mm sglang-patched,sglang 3; floors 3 ) > /dev/null 2>&1 & TD=$!
  finish $TA $TB $TC $TD
else
  ( prof sglang-patched 0 --profile; prof sglang 0 --profile ) > /dev/null 2>&1 & TA=$!
  ( waitvllm; prof vllm 1; mtp 1; mm vllm,sglang-patched 1; floors 1 ) > /dev/null 2>&1 & TB=$!
  finish $TA $TB
fi
