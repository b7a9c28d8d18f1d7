# Sent in session 13 as a device call (written to /tmp/gpu/w1.sh there and started with setsid) when GPU 1's
# control run was near its end with ~9 minutes to the deadline: vLLM would not have finished a scenario in that
# time (a vLLM start takes ~4 minutes), so the plan's GPU-1 track (a subshell of plan20.sh) was killed and the
# full-prefix probe ran on GPU 1 instead. The control's compare (its child) ran on to completion.
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo PYTHONUNBUFFERED=1 COLUMNS=160
cd /tmp/repo
P=$(pgrep -f "engines sglang-patched-no-swa-prefill-tile" | head -1); PP=$(ps -o ppid= -p $P | tr -d ' ')
echo "compare $P subshell $PP: $(ps -o args= -p $PP | cut -c1-80)" >> /tmp/logs/plan.log
kill -9 $PP
while kill -0 $P 2>/dev/null; do sleep 1; done
echo "$(date -u +%H:%M:%S) w1: GPU1 probe (instead of vLLM)" >> /tmp/logs/plan.log
CUDA_VISIBLE_DEVICES=1 $PY -m harness kernels run --name full-prefix --tree /tmp/state/sglang-patched/810fb356d52adddd --runs-dir /tmp/runs --timeout 400 -- '{python}' /tmp/repo/docs/gpu-sessions/next/full_prefix_probe.py --out '{out}' > /tmp/logs/K-full-prefix-gpu1.log 2>&1
echo "$(date -u +%H:%M:%S) w1: K full-prefix gpu1 rc=$?" >> /tmp/logs/plan.log
touch /tmp/w1.done
# w2 (then): CUDA_VISIBLE_DEVICES=1 $PY -m harness patches test --gpu --tree <tree> --only 0024 --only 0025
#   > /tmp/logs/T-0024-0025-gpu1.log; it ran one file: --only matched the patch that touched a test file last
#   (0026 and 0027 had edited 0024's and 0025's), fixed since. 0024's and 0025's GPU tests ran under T 0026.
