#!/usr/bin/env bash
# Bring back what exists now: runs (without full logs), the plan's logs, the MMLU records.
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo
cd /tmp/repo
ids=$(ls /tmp/runs 2>/dev/null)
[ -n "$ids" ] && $PY -m harness runs export $ids --runs-dir /tmp/runs --out $OUT/runs.tgz > /tmp/logs/export.log 2>&1
tar czf $OUT/logs.tgz -C /tmp logs $( [ -d /tmp/runs-evals ] && echo runs-evals ) 2>/dev/null
# server logs' first lines of interest (log patterns are in the cells; these are for the TP=2 findings)
ls -la $OUT
