#!/usr/bin/env bash
# CPU checks of the MTP draft-config path of SGLang 0.5.12 and vLLM 0.22.0 on the synthetic 26B-A4B assistant
# (docs/mtp.md section 2). No GPU: the engines' own Python code from the unpacked wheels, imported on PYTHONPATH.
#   SGLang: the CPU venv of .ci/patch-cpu-tests.sh (torch 2.13.0 CPU, transformers 5.6.0) + tests/support/sgl_cpu_stubs.
#   vLLM:   a venv that sees the same packages (a .pth file) plus the few vLLM imports it lacks.
# Usage (repository root): bash docs/mtp-cpu-checks/run.sh 2>&1 | tee /tmp/mtp-cpu-checks.log
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=docs/mtp-cpu-checks
W="${MTP_WHEELS:-/tmp/mtp-wheels}"             # unpacked wheels: $W/sg (sglang), $W/vl (vllm), $W/tf58 (transformers 5.8.0)
SGL_VENV="${SGL_CPU_VENV:-/tmp/gemma4-harness-sgl-cpu-venv}"
VL_VENV="${MTP_VL_VENV:-/tmp/mtp-vl-venv}"
OUT="${MTP_SYNTH:-/tmp/mtp-cpu-checks/26B-A4B}"
export HF_HOME="${HF_HOME:-/tmp/mtp-cpu-checks/hf-home}"   # the HF modules cache the remote code is copied into

unpack() {  # unpack NAME==VERSION into DIR
  [ -d "$2" ] && return
  mkdir -p "$W/dl" "$2"
  pip download -q --no-deps "$1" -d "$W/dl"
  unzip -q "$W/dl/$(echo "$1" | sed 's/==/-/')"-*.whl -d "$2"
}
unpack sglang==0.5.12 "$W/sg"
unpack vllm==0.22.0 "$W/vl"
unpack transformers==5.8.0 "$W/tf58"
if [ ! -x "$SGL_VENV/bin/python" ] || ! "$SGL_VENV/bin/python" -c "import torch, transformers, triton" 2>/dev/null; then
  echo "creating $SGL_VENV as .ci/patch-cpu-tests.sh does"
  python3 -m venv "$SGL_VENV"
  echo "torch==2.13.0" > "$SGL_VENV/constraints.txt"
  "$SGL_VENV/bin/pip" install -q -c "$SGL_VENV/constraints.txt" torch==2.13.0 pytest numpy transformers==5.6.0 \
      openai==2.6.1 triton orjson psutil pybase64 requests pillow starlette tqdm IPython pydantic aiohttp pyzmq \
      partial_json_parser dill sentencepiece einops compressed-tensors gguf msgspec
fi
if [ ! -x "$VL_VENV/bin/python" ]; then
  python3 -m venv "$VL_VENV"
  echo "$("$SGL_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
      > "$("$VL_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz-sgl-cpu-venv.pth"
  "$VL_VENV/bin/pip" install -q cbor2 openai-harmony cloudpickle cachetools uvloop py-cpuinfo prometheus-client
fi

HARNESS_STATE=/tmp/mtp-cpu-checks/state harness model synth -m 26B-A4B -o "$OUT" --assistant --force
A="$OUT/assistant"
SG="$W/sg:$PWD/tests/support/sgl_cpu_stubs"
quiet() { grep -v -E "^\[20|^(INFO|WARNING|DEBUG) |UserWarning|warnings.warn|^\s*$" || true; }

echo "== SGLang: get_config, NEXTN alias, ModelConfig (target; draft with the target's context length)"
PYTHONPATH="$SG" "$SGL_VENV/bin/python" -W ignore "$HERE/sglang_config.py" "$OUT" "$A" 2>&1 | quiet
echo "== SGLang: ServerArgs with the harness's MTP arguments, with and without --trust-remote-code"
PYTHONPATH="$SG" "$SGL_VENV/bin/python" -W ignore "$HERE/sglang_server_args.py" "$OUT" "$A" 2>&1 | grep "^ServerArgs"
PYTHONPATH="$SG" "$SGL_VENV/bin/python" -W ignore "$HERE/sglang_server_args.py" "$OUT" "$A" --no-trust 2>&1 | grep "^ServerArgs"
echo "== SGLang: target tokenizer and generation config with and without trust_remote_code"
PYTHONPATH="$SG" "$SGL_VENV/bin/python" -W ignore "$HERE/sglang_tokenizer.py" "$OUT" 2>&1 | grep -E "^trust|^identical"
echo "== SGLang on transformers 5.8.0: remote-code class vs built-in Gemma4AssistantConfig"
PYTHONPATH="$W/tf58:$SG" SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1 "$SGL_VENV/bin/python" -W ignore "$HERE/sglang_parity.py" "$OUT" "$A" 2>&1 \
  | grep -E "^built-in|^DIFF|^compared"
echo "== vLLM: HFConfigParser.parse / get_config with SpeculativeConfig.hf_config_override, draft ModelConfig"
PYTHONPATH="$W/vl" "$VL_VENV/bin/python" -W ignore "$HERE/vllm_config.py" "$OUT" "$A" 2>&1 | quiet
echo "== vLLM: SpeculativeConfig(method=mtp) with the target ModelConfig, trust_remote_code True / False"
PYTHONPATH="$W/vl" "$VL_VENV/bin/python" -W ignore "$HERE/vllm_speculative_config.py" "$OUT" "$A" 2>&1 | quiet
echo "== vLLM: target tokenizer with and without trust_remote_code"
PYTHONPATH="$W/vl" "$VL_VENV/bin/python" -W ignore "$HERE/vllm_tokenizer.py" "$OUT" 2>&1 | grep -E "^trust|^identical"
echo "== vLLM on transformers 5.8.0: remote-code class vs built-in Gemma4AssistantConfig"
PYTHONPATH="$W/tf58:$W/vl" "$VL_VENV/bin/python" -W ignore "$HERE/vllm_parity.py" "$OUT" "$A" 2>&1 | grep -E "^built-in|^DIFF|^compared"
