#!/usr/bin/env bash
# bash /tmp/gpu/peek.sh [seconds]: one polling call of a lease: wait, show the plan's progress, and bring back the runs
# and logs as they stand now (export.sh), so that a machine lost before the last export still left its latest state
# here (session 17 lost its first machine, and a run with it, between two polls that exported nothing).
sleep ${1:-240}
tail -4 /tmp/logs/plan.log
grep -h "^ok\|^failed\|healthy after" /tmp/logs/A-*.log /tmp/logs/E-*.log 2>/dev/null | cut -c1-150 | tail -12
echo "deadline in $(( $(cat /tmp/deadline) - $(date +%s) )) s"
bash /tmp/gpu/export.sh > /dev/null 2>&1; ls $OUT
