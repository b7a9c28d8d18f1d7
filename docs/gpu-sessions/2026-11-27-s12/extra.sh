# Started by hand during the lease (one call, detached) once GPU 1's control run had finished: vLLM on the two
# long-prompt scenarios x2, so the new stack's group holds the reference engine of the same lease.
set -u
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo PYTHONUNBUFFERED=1 COLUMNS=160
L=/tmp/logs; cd /tmp/repo
log() { echo "$(date -u +%H:%M:%S) $*" >> $L/plan.log; }
while ! grep -q "A 26B sglang-patched-no-i32-offsets rc=" $L/plan.log; do sleep 2; done
log "extra: vllm summarization,prefill-3k x2 on GPU 1 (left $(( $(cat /tmp/deadline) - $(date +%s) )) s)"
$PY -m harness compare -m 26B-A4B --gpus 1 --model-path /tmp/rinit/26B-A4B --no-parity --engines vllm -s summarization,prefill-3k --repeats 2 --num-prompts 32 --no-mmlu --no-report --runs-dir /tmp/runs --note "host: 2 GPUs; other harness jobs ran on the other GPU of this host at the same time" > $L/A-26B-vllm.log 2>&1
log "A 26B vllm (extra) rc=$?"
