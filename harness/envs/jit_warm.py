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
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from harness.definitions import EngineDef
from harness.engines import pythonpath_env, resolve_interpreter
from harness.envs.jit_warm_probe import MARK
from harness.envs.script import kill_group, run_marked
from harness.errors import HarnessError
from harness.runs import utcnow

SCRIPT = Path(__file__).with_name("jit_warm_probe.py")


def generators_for(engine: EngineDef, tp: int) -> list[str]:
    """The engine's ``jit_warmup`` generators that apply at tensor-parallel size ``tp``."""
    return [w.generator for w in engine.jit_warmup if tp >= w.min_tp]


def describe(result: dict) -> str:
    """One module's outcome (a jit_warm_probe.py result), e.g. 'trtllm_comm built in 219.61 s'."""
    return f"{result.get('module') or result['generator']} {result['status']} in {result['seconds']} s"


def warm_jit(engine: EngineDef, generators: list[str], *, timeout: float = 3600,
             started: Callable[[subprocess.Popen], None] | None = None) -> list[dict]:
    """Build ``generators`` in ``engine``'s environment; one result dict per generator (see jit_warm_probe.py).
    Raises HarnessError when the script gives no result (interpreter missing, killed, timed out). ``started``
    gets the build's process (see run_marked)."""
    interp = resolve_interpreter(engine.env, engine.python, list(engine.pythonpath))
    env = dict(os.environ)
    env.update(engine.env_vars)
    env.update(pythonpath_env(interp))
    cmd = [interp.python, str(SCRIPT)]
    for g in generators:
        cmd += ["--generator", g]
    return run_marked(cmd, env=env, mark=MARK, who=f"engine {engine.name!r}", what="the JIT build", timeout=timeout,
                      tail_lines=15, started=started)


class BackgroundWarmup:
    """``compare --warm-jit``: the matrix's ``jit_warmup`` builds in a thread from the start of the run, one engine
    environment after another (engines that share an environment share its FlashInfer and cache: built once),
    while the servers start and the cells run. A server that needs a module still being built waits on
    FlashInfer's build lock. :meth:`stop` kills what is still building (the run is over or interrupted);
    :attr:`results` and :meth:`notes` say what was built, when, and what was cut."""

    def __init__(self, engines: list[EngineDef], tp: int, *, timeout: float = 3600) -> None:
        by_env: dict[tuple, tuple[EngineDef, list[str]]] = {}
        for e in engines:
            gens = generators_for(e, tp)
            if not gens:
                continue
            key = (e.env, e.python, tuple(e.pythonpath), tuple(sorted(e.env_vars.items())))
            _, have = by_env.setdefault(key, (e, []))
            have += [g for g in gens if g not in have]
        self.jobs = list(by_env.values())
        self.timeout = timeout
        self.results: list[dict] = []
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jit-warmup", daemon=True)

    def start(self) -> "BackgroundWarmup":
        if self.jobs:
            self._thread.start()
        return self

    def _keep(self, proc: subprocess.Popen) -> None:
        self._proc = proc
        if self._stopping.is_set():
            kill_group(proc)

    def _run(self) -> None:
        for eng, gens in self.jobs:
            entry = {"engine": eng.name, "env": eng.env, "generators": gens, "started_at": utcnow()}
            if self._stopping.is_set():
                entry.update(status="not started", finished_at=utcnow())
                self.results.append(entry)
                continue
            t0 = time.monotonic()
            try:
                entry["modules"] = warm_jit(eng, gens, timeout=self.timeout, started=self._keep)
                failed = [m for m in entry["modules"] if m.get("status") == "failed"]
                entry["status"] = "failed" if failed else "ok"
            except HarnessError as exc:
                entry.update(status="stopped" if self._stopping.is_set() else "failed", error=str(exc))
            entry.update(seconds=round(time.monotonic() - t0, 1), finished_at=utcnow())
            self.results.append(entry)

    def stop(self) -> None:
        """Kill a build still running (and skip those not started); return once the thread has recorded it."""
        if not self._thread.is_alive():
            return
        self._stopping.set()
        if self._proc is not None:
            kill_group(self._proc)
        self._thread.join(timeout=30)

    def notes(self) -> list[str]:
        out = []
        for r in self.results:
            mods = ", ".join(describe(m) for m in r.get("modules", []))
            what = mods or r.get("error") or r["status"]
            out.append(f"FlashInfer JIT warm-up (compare --warm-jit) for {r['engine']} ({r['env']} environment), "
                       f"on the CPUs while the run went on, {r['started_at']} to {r['finished_at']}: {r['status']}: {what}")
        return out
