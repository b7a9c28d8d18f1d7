"""Offline bundles: a resolved wheel set, its manifest, optional split into parts, and install.sh.

Layout of a bundle directory (everything in it travels to the air-gapped host)::

    manifest.json     engine, target, every wheel (sha256, size, who requires it), what the host provides,
                      what was excluded and why, the parts, timings
    SHA256SUMS        sha256sum lines of the parts (split bundle) or of wheels/* (unsplit bundle)
    wheels.sha256     sha256sum lines of the wheels, relative to the wheels/ directory
    install.sh        verify + install without the harness (bash, sha256sum, tar, python -m pip)
    <engine>-bundle.tar.partNNN   (split) an uncompressed tar of wheels/, byte-split, each <= split size
    wheels/*.whl                  (unsplit) the wheels themselves

With ``compress`` (split bundles only) the tar holds ``wheels/<wheel>.xz`` instead: each wheel re-packed with its
members stored uncompressed (the same files, byte for byte) and then xz-compressed, so that the compression sees
the files' bytes rather than deflate's output. sglang-kernel's 322 MB wheel shrinks to 105 MB; the sglang 0.5.12
bundle for the lent H200 from 530 to 222 MB, vLLM 0.22.0's from 467 to 324 MB (its kernels compress less), so a
transfer in 24 MB calls takes 24 of them instead of 43. The host unpacks them with Python's own ``lzma``; the manifest keeps each wheel's index sha256 and adds the re-packed
wheel's (``repacked``), which is what is verified and installed there.

``verify_and_extract`` checks every part (size and sha256; a missing or corrupted part is named),
streams them through tar, and checks every wheel against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shlex
import shutil
import tarfile
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Optional

from harness.atomic import atomic_write_json, atomic_write_text
from harness.envs.pins import EnginePins
from harness.envs.registry import now_iso
from harness.envs.resolve import Resolution
from harness.envs.wheels import sha256_file
from harness.errors import HarnessError

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
WHEEL_SUMS = "wheels.sha256"
INSTALL_SH = "install.sh"
MANIFEST_FORMAT = 1
MB = 1_000_000  # parts are sized in decimal megabytes: <= N MB is then also <= N MiB
COMPRESSION = "xz"
XZ_PRESET = 6  # -9 gains about 5% more on the kernel wheels for twice the time


class BundleError(HarnessError):
    """A bundle is incomplete, corrupted or not a bundle."""


# ---- writing ------------------------------------------------------------------------------
class _SplitWriter(io.RawIOBase):
    """A write-only stream that rolls over to a new part file every ``part_size`` bytes."""

    def __init__(self, directory: Path, stem: str, part_size: int):
        super().__init__()
        self.directory = directory
        self.stem = stem
        self.part_size = part_size
        self.parts: list[dict] = []
        self._fh: Optional[BinaryIO] = None
        self._hash = None
        self._written = 0
        self.total_hash = hashlib.sha256()
        self.total = 0

    def writable(self) -> bool:
        return True

    def _open_next(self) -> None:
        self._close_current()
        name = f"{self.stem}.part{len(self.parts):03d}"
        self._fh = open(self.directory / name, "wb")
        self._hash = hashlib.sha256()
        self._written = 0
        self.parts.append({"file": name})

    def _close_current(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self.parts[-1].update(size=self._written, sha256=self._hash.hexdigest())
            self._fh = None

    def write(self, b) -> int:
        data = memoryview(b)
        n = len(data)
        while len(data):
            if self._fh is None or self._written >= self.part_size:
                self._open_next()
            room = self.part_size - self._written
            chunk = data[:room]
            self._fh.write(chunk)
            self._hash.update(chunk)
            self.total_hash.update(chunk)
            self._written += len(chunk)
            self.total += len(chunk)
            data = data[len(chunk) :]
        return n

    def close(self) -> None:
        self._close_current()
        super().close()


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def write_split_archive(files: list[Path], out_dir: Path, stem: str, part_bytes: int) -> tuple[list[dict], dict]:
    """Write ``wheels/<name>`` for each file as one uncompressed tar, split into parts of <= part_bytes."""
    if part_bytes < 10 * 1024:
        raise HarnessError(f"part size {part_bytes} bytes is too small (at least 10 KiB)")
    w = _SplitWriter(out_dir, stem, part_bytes)
    with tarfile.open(fileobj=w, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for f in files:
            with open(f, "rb") as fh:
                tf.addfile(_tarinfo(f"wheels/{f.name}", f.stat().st_size), fh)
    w.close()
    return w.parts, {"size": w.total, "sha256": w.total_hash.hexdigest()}


def repack_stored(src: Path, dest: Path) -> None:
    """Write ``src``'s members into the zip ``dest`` uncompressed (ZIP_STORED), names, dates and modes kept.

    The members' bytes are unchanged (zipfile checks each one's CRC as it reads it), so the wheel's RECORD still
    holds and pip installs it as it would the original."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            out.external_attr, out.create_system, out.file_size = info.external_attr, info.create_system, info.file_size
            if info.is_dir():
                zout.writestr(out, b"")
                continue
            with zin.open(info) as r, zout.open(out, "w") as w:
                shutil.copyfileobj(r, w, 1 << 20)


def _pack_for_transfer(src: Path, work: Path) -> tuple[Path, dict]:
    """Re-pack one wheel uncompressed, xz it; return the .xz and the re-packed wheel's size and sha256."""
    stored = work / src.name
    repack_stored(src, stored)
    rec = {"size": stored.stat().st_size, "sha256": sha256_file(stored)}
    xz = work / f"{src.name}.xz"
    with open(stored, "rb") as r, lzma.open(xz, "wb", preset=XZ_PRESET) as w:
        shutil.copyfileobj(r, w, 1 << 20)
    stored.unlink()
    return xz, rec


def bundle_id(wheels: Iterable[dict]) -> str:
    h = hashlib.sha256()
    for w in sorted(wheels, key=lambda w: w["filename"]):
        h.update(f"{w['filename']} {w['sha256']}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class BundleResult:
    out_dir: Path
    manifest: dict

    @property
    def total_bytes(self) -> int:
        return sum(w["size"] for w in self.manifest["wheels"])

    @property
    def part_count(self) -> int:
        return len(self.manifest.get("parts") or [])


def build_bundle(
    pins: EnginePins,
    resolution: Resolution,
    out_dir: Path,
    split_mb: Optional[float] = None,
    host_source: Optional[str] = None,
    timings: Optional[dict] = None,
    host_audit: Optional[dict] = None,
    force: bool = False,
    compress: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> BundleResult:
    if compress and not split_mb:
        raise HarnessError("compress needs split parts (--split-mb): an unsplit bundle keeps the wheels as they are")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise HarnessError(f"output directory {out_dir} is not empty (pass --force to replace it)")
        if not (out_dir / MANIFEST).is_file():
            raise HarnessError(f"output directory {out_dir} is not empty and holds no bundle; refusing to clear it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    wheels = []
    files = []
    for name in sorted(resolution.bundled):
        b = resolution.bundled[name]
        path = b.wheel.path
        files.append(path)
        entry = {
            "name": b.wheel.display_name,
            "version": str(b.wheel.version),
            "filename": path.name,
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
            "required_by": b.required_by,
        }
        if b.extras:
            entry["extras"] = b.extras
        if b.host_version is not None:
            entry["host_version"] = b.host_version
            entry["host_version_rejected_because"] = b.host_violates
        wheels.append(entry)
    progress(f"hashed {len(wheels)} wheels")

    stem = f"{pins.name}-bundle.tar"
    parts: list[dict] = []
    archive = None
    if split_mb:
        part_bytes = int(split_mb * MB)
        packing = tempfile.TemporaryDirectory(dir=out_dir, prefix=".packing-") if compress else nullcontext()
        with packing as tmp:
            if compress:
                progress(f"packing {len(files)} wheels for the transfer ({COMPRESSION}, members stored uncompressed)")
                with ProcessPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1) or 1) as pool:
                    packed = list(pool.map(_pack_for_transfer, files, [Path(tmp)] * len(files)))
                for w, (_xz, rec) in zip(wheels, packed):
                    w["repacked"] = rec
                files = [xz for xz, _rec in packed]
            parts, archive = write_split_archive(files, out_dir, stem, part_bytes)
        sums = "".join(f"{p['sha256']}  {p['file']}\n" for p in parts)
        progress(f"wrote {len(parts)} parts of <= {split_mb:g} MB ({archive['size'] / 1e6:.1f} MB in all)")
    else:
        (out_dir / "wheels").mkdir()
        for f in files:
            shutil.copy2(f, out_dir / "wheels" / f.name)
        sums = "".join(f"{w['sha256']}  wheels/{w['filename']}\n" for w in wheels)
    atomic_write_text(out_dir / SUMS, sums)
    atomic_write_text(out_dir / WHEEL_SUMS, "".join(f"{installed(w)['sha256']}  {w['filename']}\n" for w in wheels))

    manifest = {
        "format": MANIFEST_FORMAT,
        "engine": pins.name,
        "engine_version": pins.version,
        "roots": resolution.roots,
        "created": now_iso(),
        "target": resolution.target.to_json(),
        "host_list": host_source,
        "bundle_id": bundle_id(wheels),
        "total_wheel_bytes": sum(w["size"] for w in wheels),
        "wheels": wheels,
        "from_host": [
            {"name": h.name, "host_version": h.host_version, "required": h.spec, "required_by": h.required_by, "why": h.reason}
            for h in resolution.from_host.values()
        ],
        "excluded": [
            {"name": e.name, "pattern": e.pattern, "why": e.reason, "required_by": e.required_by}
            for e in resolution.excluded.values()
        ],
        "pins": {k: {"spec": p.spec, "reason": p.reason} for k, p in pins.pins.items()},
        "host_audit": host_audit,
        "unused_pins": resolution.unused_pins,
        "backtracks": resolution.backtracks,
        "engine_requirements": resolution.requirement_audit(),
        "split": (
            {"part_bytes_max": int(split_mb * MB), "archive": {"file": stem, **archive}, "parts": len(parts),
             "compression": COMPRESSION if compress else None}
            if split_mb
            else None
        ),
        "parts": parts,
        "timings": {
            "resolve_and_download_s": round(resolution.seconds, 1),
            "passes": resolution.passes,
            "package_s": round(time.monotonic() - t0, 1),
            **(timings or {}),
        },
    }
    atomic_write_json(out_dir / MANIFEST, manifest)
    for name in (MANIFEST, SUMS, WHEEL_SUMS):
        os.chmod(out_dir / name, 0o644)
    sh = out_dir / INSTALL_SH
    atomic_write_text(sh, render_install_sh(manifest))
    os.chmod(sh, 0o755)
    return BundleResult(out_dir, manifest)


# ---- reading / verifying -----------------------------------------------------------------
def load_manifest(bundle_dir: Path) -> dict:
    path = Path(bundle_dir) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST} (not a bundle directory made by `harness env bundle`)")
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from exc
    if m.get("format") != MANIFEST_FORMAT or "wheels" not in m:
        raise BundleError(f"{path}: unsupported manifest format {m.get('format')!r}")
    return m


def verify_parts(bundle_dir: Path, manifest: dict) -> list[Path]:
    """Check every part's presence, size and sha256; name every missing or corrupted part."""
    bundle_dir = Path(bundle_dir)
    problems = []
    paths = []
    for p in manifest.get("parts") or []:
        path = bundle_dir / p["file"]
        paths.append(path)
        if not path.is_file():
            problems.append(f"part {p['file']} is missing")
            continue
        size = path.stat().st_size
        if size != p["size"]:
            problems.append(f"part {p['file']} has {size} bytes, expected {p['size']} (truncated or corrupted)")
            continue
        if sha256_file(path) != p["sha256"]:
            problems.append(f"part {p['file']} is corrupted (sha256 mismatch)")
    if problems:
        raise BundleError(f"bundle {bundle_dir}: " + "; ".join(problems))
    return paths


class _ChainReader(io.RawIOBase):
    def __init__(self, paths: list[Path]):
        super().__init__()
        self._paths = list(paths)
        self._fh: Optional[BinaryIO] = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while True:
            if self._fh is None:
                if not self._paths:
                    return 0
                self._fh = open(self._paths.pop(0), "rb")
            n = self._fh.readinto(b)
            if n:
                return n
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()


def installed(wheel: dict) -> dict:
    """The size and sha256 of the wheel file the host installs: the re-packed one of a compressed bundle."""
    return wheel.get("repacked") or wheel


def verify_wheels(wheel_dir: Path, manifest: dict) -> list[Path]:
    problems = []
    out = []
    for w in manifest["wheels"]:
        path = Path(wheel_dir) / w["filename"]
        out.append(path)
        want = installed(w)
        if not path.is_file():
            problems.append(f"wheel {w['filename']} is missing")
        elif path.stat().st_size != want["size"] or sha256_file(path) != want["sha256"]:
            problems.append(f"wheel {w['filename']} is corrupted (size/sha256 mismatch)")
    if problems:
        raise BundleError(f"{wheel_dir}: " + "; ".join(problems))
    return out


def verify_and_extract(bundle_dir: Path, work_dir: Path, manifest: Optional[dict] = None) -> list[Path]:
    """Verify the bundle and return the paths of its wheels (extracted into ``work_dir`` if split)."""
    bundle_dir = Path(bundle_dir)
    manifest = manifest or load_manifest(bundle_dir)
    if not manifest.get("parts"):
        return verify_wheels(bundle_dir / "wheels", manifest)
    parts = verify_parts(bundle_dir, manifest)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    compressed = (manifest.get("split") or {}).get("compression")
    if compressed not in (None, COMPRESSION):
        raise BundleError(f"bundle {bundle_dir}: unknown compression {compressed!r} (this harness reads {COMPRESSION})")
    suffix = f".{COMPRESSION}" if compressed else ""
    expected = {f"wheels/{w['filename']}{suffix}" for w in manifest["wheels"]}
    total = hashlib.sha256()

    class _Hashing(_ChainReader):
        def readinto(self, b):
            n = super().readinto(b)
            total.update(memoryview(b)[:n])
            return n

    with _Hashing(parts) as raw, tarfile.open(fileobj=io.BufferedReader(raw, 1 << 20), mode="r|") as tf:
        for member in tf:
            if member.name not in expected or not member.isfile():
                raise BundleError(f"bundle {bundle_dir}: unexpected archive member {member.name!r}")
            dest = work_dir / member.name.removesuffix(suffix)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            try:
                with (lzma.open(src) if compressed else src) as r, open(dest, "wb") as fh:
                    shutil.copyfileobj(r, fh, 1 << 20)
            except lzma.LZMAError as exc:
                raise BundleError(f"bundle {bundle_dir}: {member.name} does not decompress: {exc}") from exc
        # drain the end-of-archive padding so the total hash covers every byte
        while raw.readinto(bytearray(1 << 20)):
            pass
    archive = (manifest.get("split") or {}).get("archive") or {}
    if archive.get("sha256") and total.hexdigest() != archive["sha256"]:
        raise BundleError(f"bundle {bundle_dir}: reassembled archive sha256 mismatch")
    return verify_wheels(work_dir / "wheels", manifest)


# ---- install.sh ----------------------------------------------------------------------------
_INSTALL_SH = r"""#!/usr/bin/env bash
# Offline install of the @ENGINE@ bundle (@BUNDLE_ID@), made by `harness env bundle`.
# Target: Python @PYVER@, @PLATFORM@. Needs bash, sha256sum, tar and a python with pip; no network.
#
#   ./install.sh --target DIR [--python EXE]   install into DIR (use it with PYTHONPATH=DIR); `./install.sh DIR` too
#   ./install.sh --venv DIR [--python EXE]     create a venv at DIR (it also sees EXE's own packages)
#
# With the harness available, `harness env install-bundle` does the same and registers the environment.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=python3
TARGET=""
VENV=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="$2"; shift 2 ;;
    --venv) VENV="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    *) if [ -z "$TARGET$VENV" ]; then TARGET="$1"; shift; else echo "install.sh: unexpected argument $1" >&2; exit 2; fi ;;
  esac
done
if [ -z "$TARGET$VENV" ] || { [ -n "$TARGET" ] && [ -n "$VENV" ]; }; then
  echo "install.sh: pass exactly one of --target DIR or --venv DIR" >&2; exit 2
fi
PARTS=(@PARTS@)
echo "verifying $(wc -l < "$HERE/SHA256SUMS") files listed in SHA256SUMS ..."
if ! (cd "$HERE" && sha256sum -c --quiet SHA256SUMS); then
  echo "install.sh: a part/wheel is missing or corrupted (see the FAILED lines above)" >&2; exit 1
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [ ${#PARTS[@]} -gt 0 ]; then
  (cd "$HERE" && cat "${PARTS[@]}") | tar -x -C "$WORK"
  WHEELS="$WORK/wheels"
@UNPACK@
else
  WHEELS="$HERE/wheels"
fi
if ! (cd "$WHEELS" && sha256sum -c --quiet "$HERE/wheels.sha256"); then
  echo "install.sh: a wheel failed its sha256 check" >&2; exit 1
fi
if [ -n "$VENV" ]; then
  "$PY" -m venv "$VENV" || "$PY" -m venv --without-pip "$VENV"
  HOST_SITE="$("$PY" -c 'import sysconfig; p=sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' | sort -u)"
  VSITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n' "$HOST_SITE" > "$VSITE/_harness_host_site.pth"
  if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --no-index --no-deps --disable-pip-version-check "$WHEELS"/*.whl
  else
    "$PY" -m pip --python "$VENV/bin/python" install --no-index --no-deps --disable-pip-version-check "$WHEELS"/*.whl
  fi
  DEST="$VENV"
  echo "installed @COUNT@ wheels into the venv $VENV; run $VENV/bin/python"
else
  mkdir -p "$TARGET"
  "$PY" -m pip install --no-index --no-deps --disable-pip-version-check --target "$TARGET" "$WHEELS"/*.whl
  DEST="$TARGET"
  echo "installed @COUNT@ wheels into $TARGET; run: PYTHONPATH=$TARGET $PY ..."
fi
printf '{"engine": "@ENGINE@", "bundle_id": "@BUNDLE_ID@", "installed_by": "install.sh"}\n' > "$DEST/.harness-bundle.json"
"""


_UNPACK_XZ = r"""  # compressed bundle: each wheel travelled as <wheel>.xz (re-packed uncompressed, then xz)
  "$PY" -c 'import lzma, os, shutil, sys
for p in sys.argv[1:]:
    with lzma.open(p) as r, open(p[:-3], "wb") as w:
        shutil.copyfileobj(r, w, 1 << 20)
    os.unlink(p)' "$WHEELS"/*.xz"""


def render_install_sh(manifest: dict) -> str:
    parts = " ".join(shlex.quote(p["file"]) for p in manifest.get("parts") or [])
    compressed = (manifest.get("split") or {}).get("compression") == COMPRESSION
    return (
        _INSTALL_SH.replace("@ENGINE@", manifest["engine"])
        .replace("@BUNDLE_ID@", manifest["bundle_id"])
        .replace("@PYVER@", manifest["target"]["python_version"])
        .replace("@PLATFORM@", manifest["target"]["platform"])
        .replace("@PARTS@", parts)
        .replace("@UNPACK@\n", _UNPACK_XZ + "\n" if compressed else "")
        .replace("@COUNT@", str(len(manifest["wheels"])))
    )
