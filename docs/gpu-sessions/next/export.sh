#!/usr/bin/env bash
# Bring back what exists now: runs, the plan's logs (patch-test output included), the runs' server logs and traces.
# Locally: cat profiles.tgz.part* | tar xzf - -C runs; tar xzf runlogs.tgz -C <tmp> and copy runs/<id>/logs over.
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONPATH=/tmp/site-harness:/tmp/repo
cd /tmp/repo
ids=$(ls /tmp/runs 2>/dev/null | grep -v "^parity$")
[ -n "$ids" ] && timeout 60 $PY -m harness runs export $ids --runs-dir /tmp/runs --out $OUT/runs.tgz > /tmp/logs/export.log 2>&1
tar czf $OUT/logs.tgz -C /tmp logs 2>/dev/null
[ -d /tmp/runs/parity ] && tar czf $OUT/parity.tgz -C /tmp/runs parity
# the runs' server logs and raw torch traces (git-ignored here, kept locally for `harness profile steps|layers`):
# at most 16 MiB a file comes back, so the traces travel in 15 MB parts (session 15's were 19 MB in all)
(cd /tmp && ls -d runs/*/logs > /dev/null 2>&1 && tar czf $OUT/runlogs.tgz runs/*/logs)
(cd /tmp/runs && ls -d */profiles > /dev/null 2>&1 && tar czf - */profiles | split -b 15000000 -d -a 1 - $OUT/profiles.tgz.part)
ls -la $OUT | tail -3
