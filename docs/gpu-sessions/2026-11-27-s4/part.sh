#!/usr/bin/env bash
# bash part.sh <engine> <file> [last] [deadline-seconds-from-now]
e=$1; f=$2
cp .bundles/$e/$f /tmp/parts/$e/ && echo "$f ok $(stat -c %s /tmp/parts/$e/$f)"
[ "${3:-}" = last ] && touch /tmp/parts/$e/ready && echo "$e ready"
[ -n "${4:-}" ] && echo $(( $(date +%s) + $4 )) > /tmp/deadline && echo "deadline in $4 s"
tail -3 /tmp/logs/plan.log 2>/dev/null
