"""Installing wheels (from a bundle or a resolution) into a target directory or a virtual environment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional

from harness.atomic import atomic_write_json
from harness.envs.bundle import load_manifest, verify_and_extract
from harness.envs.registry import EnvRecord, now_iso, register
from harness.errors import HarnessError

MARKER = ".harness-bundle.json"
HOST_SITE_PTH = "_harness_host_site.pth"


def _run(cmd: list[str], what: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise HarnessError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{what}: timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise HarnessError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:6])} ...\n{tail}")
    return proc


def interpreter_info(python: str) -> dict:
    """sys.executable, version and site-packages of an interpreter (run it, don't guess)."""
    exe = shutil.which(python) or python
    code = (
        "import json, sys, sysconfig, platform; p = sysconfig.get_paths(); "
        "print(json.dumps({'executable': sys.executable, 'version': '.'.join(map(str, sys.version_info[:3])), "
        "'purelib': p['purelib'], 'platlib': p['platlib'], 'libc': platform.libc_ver(), "
        "'machine': platform.machine(), 'prefix': sys.prefix}))"
    )
    proc = _run([exe, "-c", code], f"querying the interpreter {python}", timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def has_pip(python: str) -> bool:
    try:
        return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pip_version(python: str) -> Optional[tuple[int, ...]]:
    try:
        proc = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"pip (\d+)\.(\d+)", proc.stdout.strip()) if proc.returncode == 0 else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def create_venv(path: Path, python: str, host_site: bool) -> str:
    """Create a venv at ``path`` with ``python`` (uv if available); returns the venv's python.

    Without uv, the venv gets no pip of its own when ``python``'s pip can install into it
    (``pip --python``, pip >= 22.3); otherwise ``python -m venv`` seeds pip.
    With ``host_site``, a .pth file puts ``python``'s own site-packages after the venv's, so the host's
    torch (and the rest of its packages) stays visible while the venv's versions win.
    """
    path = Path(path)
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", python, str(path)], f"uv venv {path}")
    elif (pip_version(python) or (0,)) >= (22, 3):
        _run([python, "-m", "venv", "--without-pip", str(path)], f"python -m venv --without-pip {path}")
    else:
        try:
            _run([python, "-m", "venv", str(path)], f"python -m venv {path}")
        except HarnessError:
            _run([python, "-m", "venv", "--without-pip", str(path)], f"python -m venv --without-pip {path}")
    vpy = str(path / "bin" / "python")
    if host_site:
        info = interpreter_info(python)
        vinfo = interpreter_info(vpy)
        lines = sorted({info["purelib"], info["platlib"]})
        (Path(vinfo["purelib"]) / HOST_SITE_PTH).write_text("\n".join(lines) + "\n")
    return vpy


def pip_install_wheels(
    wheels: list[Path],
    python: str,
    target: Optional[Path] = None,
    venv_python: Optional[str] = None,
) -> None:
    """``pip install --no-index --no-deps`` the wheels into ``target`` (with ``python``) or a venv."""
    files = [str(w) for w in wheels]
    if not files:
        return
    common = ["install", "--no-index", "--no-deps", "--disable-pip-version-check", "--no-warn-script-location"]
    if target is not None:
        _run([python, "-m", "pip", *common, "--target", str(target), *files], f"pip install --target {target}")
        return
    assert venv_python is not None
    uv = shutil.which("uv")
    if uv:
        _run([uv, "pip", "install", "--python", venv_python, "--no-index", "--no-deps", *files], "uv pip install")
    elif has_pip(venv_python):
        _run([venv_python, "-m", "pip", *common, *files], "pip install (venv)")
    else:
        _run([python, "-m", "pip", "--python", venv_python, *common, *files], "pip --python install (venv)")


def install_bundle(
    bundle_dir: Path,
    python: str,
    target: Optional[Path] = None,
    venv: Optional[Path] = None,
    force: bool = False,
    host_site: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
) -> EnvRecord:
    """Verify and install a bundle, then register the environment. Returns the registered record."""
    if (target is None) == (venv is None):
        raise HarnessError("pass exactly one of --target DIR or --venv DIR")
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir)
    engine = manifest["engine"]
    dest = Path(target or venv).resolve()
    if dest.exists() and any(dest.iterdir()):
        marker = dest / MARKER
        same = _marker_bundle_id(marker) == manifest["bundle_id"]
        if same and not force:
            # already installed (by install.sh or an earlier run): just register it
            progress(f"{dest} already holds bundle {manifest['bundle_id']}; registering it (--force reinstalls)")
            info = interpreter_info(python)
            return register(_record(engine, manifest, bundle_dir, info, dest, venv is not None))
        if not force:
            raise HarnessError(
                f"{dest} is not empty; pass --force to replace it"
                + (" (it holds an earlier bundle install)" if marker.is_file() else "")
            )
        if not marker.is_file():
            raise HarnessError(f"{dest} is not empty and was not made by a bundle install; refusing to clear it")
        shutil.rmtree(dest)

    info = interpreter_info(python)
    want = manifest["target"]["python_version"]
    have = info["version"]
    if ".".join(have.split(".")[:2]) != ".".join(want.split(".")[:2]):
        raise HarnessError(f"bundle {bundle_dir} is for Python {want}; {python} is Python {have}")
    if target is not None and not has_pip(python):
        raise HarnessError(f"{python} has no pip (python -m pip); pass --python with an interpreter that has pip")

    with tempfile.TemporaryDirectory(prefix="harness-bundle-", dir=str(dest.parent) if dest.parent.exists() else None) as tmp:
        progress(f"verifying {len(manifest.get('parts') or [])} parts and {len(manifest['wheels'])} wheels")
        wheels = verify_and_extract(bundle_dir, Path(tmp), manifest)
        progress(f"installing {len(wheels)} wheels into {dest}")
        if target is not None:
            dest.mkdir(parents=True, exist_ok=True)
            pip_install_wheels(wheels, info["executable"], target=dest)
        else:
            vpy = create_venv(dest, info["executable"], host_site=host_site)
            pip_install_wheels(wheels, info["executable"], venv_python=vpy)
        record = _record(engine, manifest, bundle_dir, info, dest, venv is not None)
    atomic_write_json(
        dest / MARKER,
        {"engine": engine, "bundle_id": manifest["bundle_id"], "installed": now_iso(), "installed_by": "harness", "bundle": str(bundle_dir.resolve())},
    )
    return register(record)


def _marker_bundle_id(marker: Path) -> Optional[str]:
    try:
        return json.loads(marker.read_text()).get("bundle_id")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _record(engine: str, manifest: dict, bundle_dir: Path, info: dict, dest: Path, is_venv: bool) -> EnvRecord:
    source = f"bundle {Path(bundle_dir).resolve()} ({engine} {manifest.get('engine_version') or ''}, id {manifest['bundle_id']})"
    if is_venv:
        return EnvRecord(engine=engine, python=str(dest / "bin" / "python"), pythonpath=[], kind="venv",
                         created=now_iso(), source=source)  # fmt: skip
    return EnvRecord(engine=engine, python=info["executable"], pythonpath=[str(dest)], kind="target",
                     created=now_iso(), source=source)  # fmt: skip
