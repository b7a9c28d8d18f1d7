"""Facts about the machine and the engine environments, for run manifests."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess

from pathlib import Path

from harness.definitions import EngineDef
from harness.engines import Interpreter
from harness.results import EngineInfo, HostGpu, MachineInfo

_PROBE = r"""
import json, importlib.metadata as md
out = {}
for dist in ("sglang", "vllm", "torch", "transformers", "tokenizers", "flashinfer-python", "triton",
             "sglang-kernel", "xgrammar"):
    try:
        out[dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
try:
    import torch
    out["torch.cuda"] = str(torch.version.cuda)
except Exception as exc:
    out["torch.error"] = repr(exc)
try:
    import sglang, os
    out["sglang.file"] = os.path.dirname(sglang.__file__)
except Exception:
    pass
print(json.dumps(out))
"""


def visible_gpus() -> str | None:
    """CUDA_VISIBLE_DEVICES as set for this process (the servers inherit it), or None when unset."""
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    return v.strip() if v is not None else None


def machine_info() -> MachineInfo:
    """GPU facts of the GPUs this process may use: with CUDA_VISIBLE_DEVICES set, only those are counted."""
    info = MachineInfo(hostname=socket.gethostname(), python=platform.python_version(), platform=platform.platform())
    visible = visible_gpus()
    info.visible_devices = visible
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"]
    if visible == "":  # no GPU given to this process
        return info
    if visible:
        query.insert(1, f"--id={visible}")
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            rows = [r.split(", ") for r in out.stdout.strip().splitlines() if r.strip()]
            if rows:
                info.gpu_name = rows[0][0]
                info.driver = rows[0][1]
                info.gpu_memory_mib = int(float(rows[0][2])) if len(rows[0]) > 2 else None
                info.gpu_count = len(rows)
        cuda = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
        for tok in cuda.stdout.split("CUDA Version:")[1:2]:
            info.cuda = tok.split()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def host_gpu_use() -> list[HostGpu]:
    """Every GPU of the host, not only the visible ones, now: its memory in use and utilisation, and whether this
    process was given it (by CUDA_VISIBLE_DEVICES indices). What else ran on the host beside a measurement, read
    rather than written by hand in a --note. Empty where nvidia-smi does not answer."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.used,utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    visible = visible_gpus()
    ids = [x.strip() for x in (visible or "").split(",") if x.strip()]
    mine = {int(x) for x in ids} if visible is not None and all(x.isdigit() for x in ids) else None
    gpus = []
    for row in out.stdout.strip().splitlines():
        cols = [c.strip() for c in row.split(",")]
        if len(cols) < 3 or not cols[0].isdigit():
            continue
        index = int(cols[0])
        gpus.append(HostGpu(index=index, this_run=None if mine is None else index in mine,
                            memory_used_mib=_int_or_none(cols[1]), utilization_pct=_int_or_none(cols[2])))
    return gpus


def probe_engine(name: str, family: str, interp: Interpreter, env: dict[str, str]) -> EngineInfo:
    """Import-light version probe run with the engine's own interpreter and PYTHONPATH."""
    info = EngineInfo(name=name, family=family, python=interp.python, pythonpath=list(interp.pythonpath))
    try:
        out = subprocess.run([interp.python, "-c", _PROBE], capture_output=True, text=True, timeout=120, env=env)
        data = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else {}
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError):
        data = {}
    info.version = data.get(family)
    info.packages = {k: str(v) for k, v in data.items() if k != family}
    return info


def engine_info(name: str, engine: EngineDef, patched_tree: Path | None, stack_hash: str | None = None) -> EngineInfo:
    """Versions an engine profile imports (its interpreter, with the patch-stack overlay in front) and, for a
    patched profile, the stack hash of its tree (else ``stack_hash``). One definition for run manifests and for
    the records of evaluations against a harness-started server."""
    from harness.engines import overlay_path, resolve_interpreter

    interp = resolve_interpreter(engine.env, engine.python, list(engine.pythonpath))
    interp.pythonpath = overlay_path(engine, patched_tree) + interp.pythonpath
    env = dict(os.environ)
    if interp.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(interp.pythonpath)
    info = probe_engine(name, engine.family, interp, env)
    if engine.overlay == "patch-stack":
        from harness.patchstack import read_marker

        info.patch_stack = (read_marker(patched_tree) or {}).get("stack_hash") if patched_tree else stack_hash
    return info
