#!/usr/bin/env bash
# The CPU tests the patches ship (test/**, files without `_gpu`), run against the patched SGLang tree in a
# CPU venv: torch 2.13.0 CPU + the light dependencies sglang's server-args/model-config imports need.
# PyPI has no CPU torchvision for this torch, so an inert stand-in (tests/support/sgl_cpu_stubs) takes its
# place; the GPU-only test files run on a GPU host with `harness patches test --gpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SGL_CPU_VENV:-/tmp/gemma4-harness-sgl-cpu-venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, transformers, triton" 2>/dev/null; then
  python3 -m venv "$VENV"
  echo "torch==2.13.0" > "$VENV/constraints.txt"
  "$VENV/bin/pip" install -q -c "$VENV/constraints.txt" torch==2.13.0 pytest numpy transformers==5.6.0 \
      openai==2.6.1 triton orjson psutil pybase64 requests pillow starlette tqdm IPython pydantic aiohttp pyzmq \
      partial_json_parser dill sentencepiece einops compressed-tensors gguf msgspec
fi
PYTHONPATH="$PWD/tests/support/sgl_cpu_stubs" harness patches test --python "$VENV/bin/python"
