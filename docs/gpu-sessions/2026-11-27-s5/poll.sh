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
bash /tmp/gpu/export.sh
echo "--- plan.log"; tail -40 /tmp/logs/plan.log
echo "--- deadline in $(( $(cat /tmp/deadline) - $(date +%s) )) s"
nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader
