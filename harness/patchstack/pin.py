"""The upstream pin (``patches/pin.yaml``) and the pristine-tree hash that guards it.

Tree hash, algorithm ``sha256-manifest-v1`` (see ``tree_sha256``): take every regular file under
the ``python/sglang`` directory except ``__pycache__`` directories, ``*.pyc`` files and compiled
extension modules (``*.so``, ``*.pyd``, ``*.dylib``; the wheels are per-Python-version only because
of one such binary), sort their paths relative to ``python/sglang`` (POSIX separators, byte order),
write one line ``<sha256 hex of the file bytes>  <relative path>\\n`` per file, and take the sha256
of that text. It equals this shell pipeline run inside ``python/sglang``::

    find -L . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.so' ! -name '*.pyd' \\
        ! -name '*.dylib' -printf '%P\\n' | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done \\
        | sha256sum
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessError
from harness.patchstack.series import PIN_FILE, default_patches_dir
from harness.hashing import file_sha256  # noqa: F401 (re-exported)

TREE_HASH_ALGORITHM = "sha256-manifest-v1"
PRISTINE_TREE = "python/sglang"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BINARY_SUFFIXES = (".so", ".pyd", ".dylib")


def _check_sha256(v: str | None) -> str | None:
    if v is not None and not _SHA256_RE.match(v):
        raise ValueError(f"{v!r} is not a lowercase 64-hex-digit sha256")
    return v


class PypiPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package: str = "sglang"
    # Known wheel files (one per Python tag; all hold the same source tree) -> their sha256.
    wheels: dict[str, str] = Field(default_factory=dict)

    @field_validator("wheels")
    @classmethod
    def _hashes(cls, v: dict[str, str]) -> dict[str, str]:
        for name, digest in v.items():
            if not name.endswith(".whl"):
                raise ValueError(f"{name!r} is not a .whl file name")
            _check_sha256(digest)
        return v


class GitPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    ref: str
    commit: str | None = None  # full 40-hex commit of ref; null until someone with GitHub access fills it
    tree_sha256: str | None = None  # hash of python/sglang at commit, if it differs from the wheel's

    @field_validator("commit")
    @classmethod
    def _commit(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[0-9a-f]{40}$", v):
            raise ValueError(f"{v!r} is not a full 40-hex-digit commit id")
        return v

    @field_validator("tree_sha256")
    @classmethod
    def _tree(cls, v: str | None) -> str | None:
        return _check_sha256(v)


class PristinePin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tree: Literal["python/sglang"] = PRISTINE_TREE
    algorithm: Literal["sha256-manifest-v1"] = TREE_HASH_ALGORITHM
    tree_sha256: str
    files: int | None = None

    @field_validator("tree_sha256")
    @classmethod
    def _tree(cls, v: str) -> str:
        return _check_sha256(v)


class Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package: str
    version: str
    pypi: PypiPin = Field(default_factory=PypiPin)
    git: GitPin | None = None
    pristine: PristinePin

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) else v

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


def pin_path(patches_dir: Path | None = None) -> Path:
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    return pdir / PIN_FILE


def load_pin(path: Path | None = None) -> Pin:
    """Read and validate ``patches/pin.yaml`` (or ``path``)."""
    path = Path(path) if path is not None else pin_path()
    if not path.is_file():
        raise HarnessError(f"upstream pin {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Pin.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise HarnessError(f"{path}: field {loc}: {first['msg']}") from None


def is_source_file(relpath: str) -> bool:
    """Whether a path (relative, POSIX) belongs to the hashed pristine source tree."""
    parts = relpath.split("/")
    if "__pycache__" in parts:
        return False
    name = parts[-1]
    if name.endswith(".pyc"):
        return False
    return not name.endswith(_BINARY_SUFFIXES)


def iter_source_files(root: Path) -> list[str]:
    """Sorted relative paths of the hashed files under ``root`` (``python/sglang``)."""
    root = Path(root)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel_dir = os.path.relpath(dirpath, root)
        for fn in filenames:
            rel = fn if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{fn}"
            if is_source_file(rel) and os.path.isfile(os.path.join(dirpath, fn)):
                out.append(rel)
    out.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    return out


def tree_manifest(root: Path) -> str:
    """The text hashed by ``tree_sha256``: ``<sha256>  <relpath>`` per file, sorted by path."""
    root = Path(root)
    lines = []
    for rel in iter_source_files(root):
        digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines)


def tree_sha256(root: Path) -> tuple[str, int]:
    """(hash, file count) of the pristine tree at ``root`` (the ``python/sglang`` directory)."""
    manifest = tree_manifest(root)
    return hashlib.sha256(manifest.encode("utf-8", "surrogateescape")).hexdigest(), manifest.count("\n")


