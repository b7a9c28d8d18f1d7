#!/usr/bin/env bash
# bash /tmp/gpu/chunk.sh <engine> <chunk-file> [last]
# One call of the transfer: copy one <=24 MB chunk of an engine bundle (carried as .bundles/h2/<chunk-file>) into
# /tmp/chunks/<engine>/. With `last`: rejoin the chunks into the bundle's 60 MB parts in /tmp/parts/<engine>/,
# verify them against the bundle's SHA256SUMS (staged by the setup call) and touch `ready` for the plan.
# Chunks are made here with: cat .bundles/<engine>/<engine>-bundle.tar.part0* | split -b 24000000 -d -a 2 - .bundles/h2/<engine>. (24 MB since session 15: a call carries the tracked tree too, 37.5 MB then, under 64 MiB in all)
set -u
e=$1; f=$2
mkdir -p /tmp/chunks/$e
cp .bundles/h2/$f /tmp/chunks/$e/ && echo "$f ok $(stat -c %s /tmp/chunks/$e/$f) ($(ls /tmp/chunks/$e | wc -l) chunks)"
if [ "${3:-}" = last ]; then
  cd /tmp/parts/$e && rm -f $e-bundle.tar.part0* && cat /tmp/chunks/$e/$e.* | split -b 60000000 -d -a 3 - $e-bundle.tar.part \
    && sha256sum -c --quiet SHA256SUMS && touch ready && echo "$e ready" && rm -rf /tmp/chunks/$e
fi
tail -3 /tmp/logs/plan.log 2>/dev/null
