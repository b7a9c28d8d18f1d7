#!/usr/bin/env bash
# bash .work/gpu/setup.sh PLAN: the first call of a lease: stage the bundles' metadata, copy the repository, install
# the harness bundle, start /tmp/gpu/PLAN detached (it sources plan-common.sh).
set -u
mkdir -p /tmp/parts/sglang /tmp/parts/vllm /tmp/logs /tmp/gpu
cp -r .bundles/harness /tmp/parts/harness
cp .work/meta/sglang/* /tmp/parts/sglang/; cp .work/meta/vllm/* /tmp/parts/vllm/
cp .work/gpu/*.sh /tmp/gpu/
mkdir -p /tmp/repo && tar cf - --exclude=.bundles --exclude=.work --exclude=.git . | tar xf - -C /tmp/repo
echo $(( $(date +%s) + 1600 )) > /tmp/deadline
bash /tmp/parts/harness/install.sh --target /tmp/site-harness --python /opt/torch/.venv/bin/python3 > /tmp/logs/install-harness.log 2>&1
echo "harness install rc=$?"; tail -2 /tmp/logs/install-harness.log
cd /tmp/repo && setsid nohup bash /tmp/gpu/${1:?usage: setup.sh PLAN} > /tmp/logs/plan.out 2>&1 < /dev/null &
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader; nproc; df -h /tmp | tail -1
# compressed bundles (`env bundle --compress`) unpack with Python's lzma: say now whether it is there
/opt/torch/.venv/bin/python3 -c "import lzma; print('lzma ok')" || echo "NO lzma: send the uncompressed bundles' chunks"
sleep 2; cat /tmp/logs/plan.log 2>/dev/null
