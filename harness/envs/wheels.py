"""Wheel files: metadata, hashes, and fetching one wheel at a time with ``pip download --no-deps``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Optional, Protocol

from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from harness.atomic import atomic_write_json
from harness.envs.target import TargetSpec
from harness.errors import HarnessError
from harness.hashing import file_sha256 as sha256_file  # noqa: F401 (re-exported)


class FetchError(HarnessError):
    """No wheel could be fetched for a requirement.

    ``available``: the versions the index offers for the target (when known), so a resolver can tell
    an unsatisfiable combination of specifiers from a package that has no wheel at all.
    """

    def __init__(self, message: str, available: Optional[list[Version]] = None):
        super().__init__(message)
        self.available = available


_FROM_VERSIONS_RE = re.compile(r"\(from versions: ([^)]*)\)")


def parse_available_versions(pip_output: str) -> Optional[list[Version]]:
    """The ``(from versions: ...)`` list of a failed ``pip download``, if pip printed one."""
    m = _FROM_VERSIONS_RE.search(pip_output)
    if not m:
        return None
    out = []
    for raw in m.group(1).split(","):
        raw = raw.strip()
        if raw and raw != "none":
            try:
                out.append(Version(raw))
            except Exception:  # noqa: BLE001 - odd legacy versions are irrelevant here
                pass
    return out


@dataclass(frozen=True)
class WheelInfo:
    name: str  # canonical
    display_name: str
    version: Version
    path: Path
    requires_dist: tuple[str, ...] = field(default_factory=tuple)
    requires_python: Optional[str] = None

    @property
    def filename(self) -> str:
        return self.path.name

    def label(self) -> str:
        return f"{self.display_name} {self.version}"




def wheel_name_version(filename: str) -> tuple[str, Version]:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise HarnessError(f"not a wheel file name: {filename}: {exc}") from exc
    return canonicalize_name(name), version


def read_wheel_metadata(path: Path | str) -> WheelInfo:
    path = Path(path)
    name, version = wheel_name_version(path.name)
    try:
        with zipfile.ZipFile(path) as zf:
            candidates = [
                n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if not candidates:
                raise HarnessError(f"{path.name}: no .dist-info/METADATA inside")
            text = zf.read(candidates[0]).decode("utf-8", errors="replace")
    except zipfile.BadZipFile as exc:
        raise HarnessError(f"{path}: not a valid wheel (zip): {exc}") from exc
    msg = Parser().parsestr(text, headersonly=True)
    return WheelInfo(
        name=name,
        display_name=msg.get("Name", name),
        version=version,
        path=path,
        requires_dist=tuple(msg.get_all("Requires-Dist") or ()),
        requires_python=msg.get("Requires-Python"),
    )


def default_cache_dir() -> Path:
    """Where downloaded wheels are cached: $HARNESS_CACHE/pip-download or ~/.cache/gemma4-harness/pip-download."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env) / "pip-download"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gemma4-harness" / "pip-download"


class Fetcher(Protocol):
    def fetch(self, name: str, spec: SpecifierSet) -> WheelInfo: ...

    def requires_dist_of(self, pins: dict[str, Version]) -> dict[str, Optional[tuple[str, ...]]]:
        """Requires-Dist of exact releases (name -> version), without keeping their wheels; None if unknown."""
        ...


_SAVED_RE = re.compile(r"^\s*(?:Saved|File was already downloaded)\s+(.+\.whl)\s*$", re.M)


class PipFetcher:
    """Fetch one wheel per call with ``pip download --no-deps`` for the target's tags, with a cache.

    The cache directory holds the wheels and ``queries.json`` (requirement+target -> file name), so a
    second resolution of the same closure needs no network.
    """

    def __init__(
        self,
        target: TargetSpec,
        cache_dir: Path,
        pip_args: Optional[list[str]] = None,
        python: str = sys.executable,
        refresh: bool = False,
        timeout_s: float = 1800,
    ):
        self.target = target
        self.cache_dir = Path(cache_dir)
        self.wheel_dir = self.cache_dir / "wheels"
        self.wheel_dir.mkdir(parents=True, exist_ok=True)
        self.pip_args = list(pip_args or [])
        self.python = python
        self.refresh = refresh
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._queries_path = self.cache_dir / "queries.json"
        self._queries: dict[str, str] = {}
        if self._queries_path.is_file():
            try:
                self._queries = json.loads(self._queries_path.read_text())
            except json.JSONDecodeError:
                self._queries = {}
        self.network_fetches = 0

    def _key(self, name: str, spec: SpecifierSet) -> str:
        return "|".join(
            [name, str(spec), self.target.short_version, self.target.platform, self.target.abi, " ".join(self.pip_args)]
        )

    def fetch(self, name: str, spec: SpecifierSet) -> WheelInfo:
        name = canonicalize_name(name)
        key = self._key(name, spec)
        if not self.refresh:
            with self._lock:
                cached = self._queries.get(key)
            if cached and (self.wheel_dir / cached).is_file():
                return read_wheel_metadata(self.wheel_dir / cached)
        path = self._pip_download(name, spec)
        with self._lock:
            self._queries[key] = path.name
            atomic_write_json(self._queries_path, self._queries)
        return read_wheel_metadata(path)

    def requires_dist_of(self, pins: dict[str, Version]) -> dict[str, Optional[tuple[str, ...]]]:
        """Metadata only, through ``pip install --dry-run --report`` (PEP 658: no wheel download); cached."""
        meta_path = self.cache_dir / "metadata.json"
        with self._lock:
            cache: dict = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        out: dict[str, Optional[tuple[str, ...]]] = {}
        todo = {}
        for name, version in pins.items():
            key = f"{canonicalize_name(name)}=={version}"
            if key in cache and not self.refresh:
                out[name] = tuple(cache[key]) if cache[key] is not None else None
            else:
                todo[name] = version
        chunks = [dict(list(todo.items())[i : i + 40]) for i in range(0, len(todo), 40)]
        for chunk in chunks:
            got = self._dry_run_report(chunk)
            if got is None:  # one of them is unknown to the index: ask one at a time
                got = {}
                for name, version in chunk.items():
                    one = self._dry_run_report({name: version})
                    got[name] = (one or {}).get(name)
            for name, version in chunk.items():
                reqs = got.get(name)
                out[name] = reqs
                cache[f"{canonicalize_name(name)}=={version}"] = list(reqs) if reqs is not None else None
        if todo:
            with self._lock:
                atomic_write_json(meta_path, cache)
        return out

    def _dry_run_report(self, pins: dict[str, Version]) -> Optional[dict[str, tuple[str, ...]]]:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="harness-meta-") as tmp:
            report = Path(tmp) / "report.json"
            cmd = [
                self.python, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                "--ignore-requires-python", "--disable-pip-version-check", "--quiet", "--report", str(report),
                "--target", str(Path(tmp) / "t"), *self.target.pip_args(), *self.pip_args,
                *[f"{n}=={v}" for n, v in sorted(pins.items())],
            ]  # fmt: skip
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                return None
            if proc.returncode != 0 or not report.is_file():
                return None
            data = json.loads(report.read_text())
        out = {}
        for item in data.get("install", []):
            md = item.get("metadata", {})
            out[canonicalize_name(md.get("name", ""))] = tuple(md.get("requires_dist") or ())
        return {n: out.get(canonicalize_name(n), ()) for n in pins}

    def _pip_download(self, name: str, spec: SpecifierSet) -> Path:
        req = f"{name}{spec}"
        cmd = [
            self.python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--progress-bar", "off", "--dest", str(self.wheel_dir), *self.target.pip_args(), *self.pip_args, req,
        ]  # fmt: skip
        env = dict(os.environ, PIP_NO_INPUT="1")
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout_s, cwd=self.wheel_dir, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise FetchError(f"pip download {req} timed out after {self.timeout_s:.0f}s") from exc
        with self._lock:
            self.network_fetches += 1
        out = proc.stdout + "\n" + proc.stderr
        if proc.returncode != 0:
            errors = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("ERROR")]
            detail = "; ".join(errors[-2:]) or out.strip().splitlines()[-1:]
            available = parse_available_versions(out)
            hint = ""
            exact = [sp.version for sp in spec if sp.operator == "=="]
            if exact and available is not None and not any(spec.contains(v, prereleases=True) for v in available):
                hint = (
                    f" (pip lists only versions with a wheel for these tags: {name} {exact[0]} may need a newer "
                    "--platform, e.g. manylinux_2_39_x86_64 for a glibc 2.39 host, or another --python)"
                )
            raise FetchError(
                f"no wheel of {req} for python {self.target.short_version} / {self.target.platform}: {detail}{hint}",
                available=available,
            )
        matches = _SAVED_RE.findall(out)
        for m in matches:
            p = Path(m.strip())
            p = p if p.is_absolute() else (self.wheel_dir / p)
            if p.is_file() and wheel_name_version(p.name)[0] == name:
                return p.resolve()
        # fall back to the newest matching file in the cache directory
        best: Optional[tuple[Version, Path]] = None
        for p in self.wheel_dir.glob("*.whl"):
            try:
                n, v = wheel_name_version(p.name)
            except HarnessError:
                continue
            if n == name and spec.contains(v, prereleases=True) and (best is None or v > best[0]):
                best = (v, p)
        if best is None:
            raise FetchError(f"pip download {req} succeeded but no wheel for it is in {self.wheel_dir}")
        return best[1]


class WheelhouseFetcher:
    """Pick the newest matching wheel from a local directory (no pip): for tests and offline rebuilds."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def fetch(self, name: str, spec: SpecifierSet) -> WheelInfo:
        name = canonicalize_name(name)
        files: dict[Version, Path] = {}
        for p in self.directory.glob("*.whl"):
            n, v = wheel_name_version(p.name)
            if n == name:
                files[v] = p
        ok = list(spec.filter(files))  # pip's rule: pre-releases only when asked for or nothing else fits
        if not ok:
            raise FetchError(f"no wheel of {name}{spec} in {self.directory}", available=sorted(files))
        return read_wheel_metadata(files[max(ok)])

    def requires_dist_of(self, pins: dict[str, Version]) -> dict[str, Optional[tuple[str, ...]]]:
        out: dict[str, Optional[tuple[str, ...]]] = {}
        for name, version in pins.items():
            try:
                out[name] = self.fetch(name, SpecifierSet(f"=={version}")).requires_dist
            except FetchError:
                out[name] = None
        return out
