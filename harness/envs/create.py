"""``harness env create``: a virtual environment per engine with the pinned engine and known-good pins.

The wheel set is resolved exactly as for an offline bundle (``resolve.Resolver``: pins intersected
into every requirement, exclusions left out, packages the base interpreter already has reused through
a .pth file), downloaded with ``pip download --no-deps`` (cached), and installed with
``uv pip install --no-deps`` (or ``pip install --no-deps`` when uv is absent). A plain
``pip install sglang==0.5.12`` would instead pull flashinfer-cubin, tilelang, nvidia-cutlass-dsl and
``kernels`` (which breaks transformers 5.6.0 at import) and, on this mirror, fail on torch's
``nvidia-nccl-cu13``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness import paths
from harness.atomic import atomic_write_json
from harness.envs.hostpkgs import HostPackage, HostPackages
from harness.envs.install import create_venv, interpreter_info, pip_install_wheels
from harness.envs.pins import EnginePins
from harness.envs.registry import EnvRecord, now_iso, register
from harness.envs.resolve import Resolution, Resolver
from harness.envs.target import TargetSpec
from harness.envs.wheels import PipFetcher, default_cache_dir
from harness.errors import HarnessError


def default_env_path(engine: str) -> Path:
    return paths.state_dir() / "envs" / engine


def installed_packages(python: str) -> HostPackages:
    """What ``python`` already has (``importlib.metadata``; works without pip)."""
    code = (
        "import json; from importlib import metadata; "
        "print(json.dumps([{'name': d.metadata['Name'], 'version': d.version} for d in metadata.distributions() "
        "if d.metadata['Name']]))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise HarnessError(f"cannot list the packages of {python}: {proc.stderr.strip()[-300:]}")
    out: dict[str, HostPackage] = {}
    for item in json.loads(proc.stdout.strip().splitlines()[-1]):
        try:
            v: Optional[Version] = Version(item["version"])
        except InvalidVersion:
            v = None
        out.setdefault(canonicalize_name(item["name"]), HostPackage(item["name"], v, f"{item['name']}=={item['version']}"))
    return HostPackages(out, source=f"installed in {python}")


def target_of(info: dict) -> TargetSpec:
    libc, ver = info.get("libc") or ("", "")
    if libc != "glibc" or not ver:
        raise HarnessError(f"{info['executable']}: not a glibc Linux interpreter; cannot pick manylinux wheels")
    major, minor = ver.split(".")[:2]
    return TargetSpec(python_version=info["version"], platform=f"manylinux_{major}_{minor}_{info['machine']}")


def create_env(
    pins: EnginePins,
    python: str,
    path: Optional[Path] = None,
    host_packages: bool = True,
    pip_args: Optional[list[str]] = None,
    cache_dir: Optional[Path] = None,
    force: bool = False,
    workers: int = 6,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[EnvRecord, Resolution]:
    path = Path(path or default_env_path(pins.name)).resolve()
    if path.exists() and any(path.iterdir()):
        if not force:
            raise HarnessError(f"{path} exists and is not empty; pass --force to replace it")
        if not (path / "pyvenv.cfg").is_file():
            raise HarnessError(f"{path} is not a virtual environment; refusing to delete it")
        shutil.rmtree(path)
    info = interpreter_info(python)
    target = target_of(info)
    if host_packages:
        host = installed_packages(info["executable"])
    else:
        host = None
        pins = pins.model_copy(update={"host_provided": {}})
    fetcher = PipFetcher(target, Path(cache_dir) if cache_dir else default_cache_dir(), pip_args=pip_args or [])
    progress(f"resolving {pins.name} for Python {target.python_version} / {target.platform}")
    resolution = Resolver(target, pins, fetcher, host=host, workers=workers, progress=progress).resolve(
        pins.root_requirements()
    )
    progress(f"creating the venv {path}")
    vpy = create_venv(path, info["executable"], host_site=host_packages)
    wheels = [b.wheel.path for b in resolution.bundled.values()]
    progress(f"installing {len(wheels)} wheels")
    pip_install_wheels(wheels, info["executable"], venv_python=vpy)
    atomic_write_json(
        path / "harness-env.json",
        {
            "engine": pins.name,
            "engine_version": pins.version,
            "created": now_iso(),
            "base_python": info["executable"],
            "host_packages": host_packages,
            "wheels": sorted(b.wheel.filename for b in resolution.bundled.values()),
            "from_host": sorted(resolution.from_host),
            "excluded": {n: e.reason for n, e in resolution.excluded.items()},
        },
    )
    record = register(
        EnvRecord(
            engine=pins.name,
            python=vpy,
            pythonpath=[],
            kind="venv",
            created=now_iso(),
            source=f"env create ({pins.name} {pins.display_version}, base {info['executable']}, "
            f"{'uv' if shutil.which('uv') else 'pip'})",
        )
    )
    return record, resolution
