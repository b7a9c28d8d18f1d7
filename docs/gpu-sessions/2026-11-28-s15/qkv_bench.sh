#!/usr/bin/env bash
# Session 15's last device minutes (no room for the engine bundles): patch 0032's bench and GPU test on one GPU.
# The harness bundle and the sglang 0.5.12 wheel (patched tree only; none of sglang's dependencies) travel; the
# kernel module loads under docs/gpu-sessions/next/fused_ops_only.py's stand-in packages.
# (It ran with the shim at docs/gpu-sessions/next/fused_ops_only.py, archived beside this script as fused_ops_only.py.)
set -u
REPO=$PWD
export PY=/opt/torch/.venv/bin/python3 HARNESS_STATE=/tmp/state PYTHONUNBUFFERED=1
bash .bundles/harness/install.sh --target /tmp/site-harness --python $PY > $OUT/install-harness.log 2>&1; echo "harness rc=$?"
export PYTHONPATH=/tmp/site-harness:$REPO
$PY -m harness patches apply --source .whl/sglang-0.5.12-cp312-cp312-manylinux_2_34_x86_64.whl --out /tmp/tree > $OUT/apply.log 2>&1
echo "apply rc=$?: $(tail -1 $OUT/apply.log)"
$PY -m harness env register --engine sglang --python $PY --no-check > $OUT/register.log 2>&1; echo "register rc=$?"
SHIM=$REPO/docs/gpu-sessions/next/fused_ops_only.py
timeout 200 $PY -m harness kernels run --name qkv-rmsnorm-per-head --tree /tmp/tree \
  --patch 0032-gemma4-qkv-rmsnorm-per-head.patch --runs-dir /tmp/runs --timeout 180 \
  -- '{python}' $SHIM benchmark/kernels/gemma4/bench_gemma4_qkv_rmsnorm.py --out '{out}' > $OUT/K-qkv.log 2>&1
echo "bench rc=$?"; tail -3 $OUT/K-qkv.log
(cd /tmp/tree && timeout 120 $PY $SHIM -m pytest -q -p no:cacheprovider \
  test/srt/layers/test_gemma4_qkv_rmsnorm_per_head_gpu.py > $OUT/T-0032-gpu.log 2>&1); echo "gpu test rc=$?"
tail -3 $OUT/T-0032-gpu.log
ids=$(ls /tmp/runs 2>/dev/null)
[ -n "$ids" ] && $PY -m harness runs export $ids --runs-dir /tmp/runs --out $OUT/runs.tgz > $OUT/export.log 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/gpu.txt; cat $OUT/gpu.txt
ls $OUT
