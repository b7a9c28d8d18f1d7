#!/usr/bin/env bash
# bash /tmp/gpu/poll.sh <max-seconds>: wait (until the plan is done, or max seconds, or the deadline + 75 s), then export
max=$1; t0=$(date +%s)
while :; do
  now=$(date +%s)
  grep -q "plan done" /tmp/logs/plan.log 2>/dev/null && break
  [ $((now - t0)) -ge $max ] && break
  [ $now -ge $(( $(cat /tmp/deadline) + 75 )) ] && break
  sleep 5
done
# harness commands the deadline's SIGTERM reached close their runs (status interrupted) before they exit: wait for
# them (at most 90 s) so that the export carries the closed runs (session 8's first export came too early)
for i in $(seq 1 45); do pgrep -f "python3 -m harness (compare|parity)" > /dev/null || break; sleep 2; done
bash /tmp/gpu/export.sh
echo "--- plan.log"; tail -40 /tmp/logs/plan.log
echo "--- deadline in $(( $(cat /tmp/deadline) - $(date +%s) )) s"
nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader
