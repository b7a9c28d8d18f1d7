# Started by hand in lease 2 (18:39 UTC) after plan14.sh was stopped: the kernel bench had shown 0022 slower, so
# the A/B compares 0023 alone (sglang-patched-no-swa-bound: 0022's switch off, 0023 on) with both off
# (sglang-patched-no-0022-0023). Both control profiles left the repository with 0022 (commit 1159772).
set -u
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo PYTHONUNBUFFERED=1 COLUMNS=160
L=/tmp/logs; cd /tmp/repo
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
log "plan14b: 0022 is slower in its kernel bench; A/B of 0023 alone (no-swa-bound) vs both off"
$PY -m harness compare -m 26B-A4B --gpus 0 --model-path /tmp/rinit/26B-A4B --engines sglang-patched-no-swa-bound,sglang-patched-no-0022-0023 \
  -s summarization --repeats 2 --num-prompts 32 --no-parity --no-mmlu --no-report --runs-dir /tmp/runs \
  --note "host: 1 GPU; patch 0023 A/B (sglang-patched-no-swa-bound: 0023 on, 0022 off; sglang-patched-no-0022-0023: both off)" > $L/A-26B-ab2.log 2>&1
log "A2 rc=$?"; log "plan done"
