"""``harness env warm-jit``: build the FlashInfer JIT modules an engine compiles at its first start, ahead of it.

FlashInfer compiles some CUDA modules with nvcc the first time a process needs them and caches the library under
``~/.cache/flashinfer/<flashinfer version>/<GPU archs>/cached_ops``. The all-reduce + RMSNorm fusion's
``trtllm_comm`` module (vLLM 0.22 at TP>1; sglang-patched at TP>1 through patch 0019) took 3 minutes of a
31B TP=2 server start on an H200 host (runs 20261127T101641Z-31B-861c and ...103002Z-31B-909b, server logs).
Building it ahead (while the GPUs do something else) keeps that out of the server's start. Which modules an
engine needs is data: the ``jit_warmup`` list of its definition (scenarios/engines/*.yaml).

The build runs in the engine's own environment (its interpreter, PYTHONPATH and ``env_vars``, as the server gets
them), so it lands in the cache directory of the FlashInfer version that engine imports.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.definitions import EngineDef
from harness.engines import pythonpath_env, resolve_interpreter
from harness.envs.jit_warm_probe import MARK
from harness.envs.script import run_marked

SCRIPT = Path(__file__).with_name("jit_warm_probe.py")


def generators_for(engine: EngineDef, tp: int) -> list[str]:
    """The engine's ``jit_warmup`` generators that apply at tensor-parallel size ``tp``."""
    return [w.generator for w in engine.jit_warmup if tp >= w.min_tp]


def warm_jit(engine: EngineDef, generators: list[str], *, timeout: float = 3600) -> list[dict]:
    """Build ``generators`` in ``engine``'s environment; one result dict per generator (see jit_warm_probe.py).
    Raises HarnessError when the script gives no result (interpreter missing, killed, timed out)."""
    interp = resolve_interpreter(engine.env, engine.python, list(engine.pythonpath))
    env = dict(os.environ)
    env.update(engine.env_vars)
    env.update(pythonpath_env(interp))
    cmd = [interp.python, str(SCRIPT)]
    for g in generators:
        cmd += ["--generator", g]
    return run_marked(cmd, env=env, mark=MARK, who=f"engine {engine.name!r}", what="the JIT build", timeout=timeout,
                      tail_lines=15)
