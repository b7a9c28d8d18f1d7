#!/usr/bin/env bash
# Bring back what exists now: runs, the plan's logs (patch-test output included).
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo
cd /tmp/repo
ids=$(ls /tmp/runs 2>/dev/null | grep -v "^parity$")
[ -n "$ids" ] && timeout 60 $PY -m harness runs export $ids --runs-dir /tmp/runs --out $OUT/runs.tgz > /tmp/logs/export.log 2>&1
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
[ -d /tmp/runs/parity ] && tar czf $OUT/parity.tgz -C /tmp/runs parity
ls -la $OUT | tail -3
