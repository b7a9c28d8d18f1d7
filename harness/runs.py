"""Run directories: ``runs/<run_id>/{manifest.json, cells/, raw/, kernels/, evals/, profiles/, logs/}``.

Records are immutable: a run id is never reused, a cell file is never overwritten. When ``--resume`` redoes a
failed cell, the failed record is moved to ``cells/attempts/`` first, so nothing is lost. Full server logs
stay in ``logs/`` (git-ignored); cell records carry their tails.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

from harness import __version__
from harness.atomic import atomic_write_json, write_new_json
from harness.errors import HarnessError
from harness.paths import repo_root, runs_dir
from harness.results import CellResult, KernelBench, Manifest


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ANNOTATION_PREFIX = "annotated at "


def annotation_note(text: str) -> str:
    """The manifest note `harness runs annotate` appends: dated, the text on one line."""
    text = " ".join(text.split())
    if not text:
        raise HarnessError("an annotation needs some text")
    return f"{ANNOTATION_PREFIX}{utcnow()}: {text}"


def annotations(manifest: Manifest) -> list[tuple[str, str]]:
    """(when, text) of each note added after the run by `harness runs annotate`, in order."""
    out = []
    for n in manifest.notes:
        if n.startswith(ANNOTATION_PREFIX):
            when, _, text = n[len(ANNOTATION_PREFIX):].partition(": ")
            out.append((when, text))
    return out


def new_run_id(label: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def git_info() -> tuple[str | None, bool | None]:
    root = repo_root()
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def source_digest(root: Path | None = None) -> str:
    """sha256 over (relative path, bytes) of the harness's code and definitions, in sorted order."""
    import hashlib

    root = Path(root) if root else repo_root()
    h = hashlib.sha256()
    for sub in ("harness", "analysis", "scenarios"):
        base = root / sub
        if not base.is_dir():
            continue
        for f in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


class RunDir:
    def __init__(self, path: Path, manifest: Manifest):
        self.path = Path(path)
        self.manifest = manifest

    # ------------------------------------------------------------------ creation / loading
    @classmethod
    def create(cls, manifest_fields: dict[str, Any], base: Path | None = None, run_id: str | None = None) -> "RunDir":
        base = Path(base) if base else runs_dir()
        run_id = run_id or new_run_id(str(manifest_fields.get("model", "run")))
        path = base / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise HarnessError(f"run directory {path} already exists; runs are never overwritten") from None
        sha, dirty = git_info()
        manifest = Manifest(
            run_id=run_id,
            created_at=utcnow(),
            harness_version=__version__,
            harness_git_sha=sha,
            harness_git_dirty=dirty,
            harness_tree_sha256=source_digest(),
            **manifest_fields,
        )
        rd = cls(path, manifest)
        for sub in ("cells", "raw", "logs"):
            (path / sub).mkdir()
        rd.save_manifest()
        return rd

    @classmethod
    def open(cls, ref: str | Path, base: Path | None = None) -> "RunDir":
        path = Path(ref)
        if not (path / "manifest.json").is_file():
            path = (Path(base) if base else runs_dir()) / str(ref)
        mf = path / "manifest.json"
        if not mf.is_file():
            near = close_run_ids(str(ref), base)
            raise HarnessError(f"no run {ref!r}: {mf} not found" + (f"; close matches: {', '.join(near)}" if near else ""))
        try:
            manifest = Manifest.model_validate_json(mf.read_text())
        except Exception as exc:  # noqa: BLE001
            raise HarnessError(f"{mf}: not a valid run manifest: {exc}") from exc
        return cls(path, manifest)

    # ------------------------------------------------------------------ writing
    def save_manifest(self) -> None:
        atomic_write_json(self.path / "manifest.json", self.manifest.model_dump(mode="json"))

    def cell_path(self, cell_id: str) -> Path:
        return self.path / "cells" / f"{cell_id}.json"

    def write_cell(self, cell: CellResult) -> Path:
        p = self.cell_path(cell.cell_id)
        if p.exists():
            old = self.read_cell(cell.cell_id)
            if old is not None and old.status == "ok":
                raise HarnessError(f"{p}: a successful record exists; refusing to overwrite it")
            attempts = self.path / "cells" / "attempts"
            attempts.mkdir(exist_ok=True)
            n = len(list(attempts.glob(f"{cell.cell_id}.*.json"))) + 1
            os.replace(p, attempts / f"{cell.cell_id}.{n}.json")
        return write_new_json(p, cell.model_dump(mode="json"))

    def write_kernel_bench(self, kb: KernelBench) -> Path:
        return write_new_json(self.path / "kernels" / f"{kb.name}.json", kb.model_dump(mode="json"))

    def write_raw(self, name: str, data: Any) -> Path:
        return write_new_json(self.path / "raw" / name, data)

    # ------------------------------------------------------------------ reading
    def read_cell(self, cell_id: str) -> CellResult | None:
        p = self.cell_path(cell_id)
        if not p.is_file():
            return None
        return CellResult.model_validate_json(p.read_text())

    def cells(self) -> list[CellResult]:
        out = []
        for p in sorted((self.path / "cells").glob("*.json")):
            out.append(CellResult.model_validate_json(p.read_text()))
        return out

    def log_path(self, name: str) -> Path:
        return self.path / "logs" / f"{name}.log"


def iter_runs(base: Path | None = None) -> Iterator[RunDir]:
    base = Path(base) if base else runs_dir()
    if not base.is_dir():
        return
    for p in sorted(base.iterdir()):
        if (p / "manifest.json").is_file():
            try:
                yield RunDir.open(p)
            except HarnessError:
                continue


def close_run_ids(ref: str, base: Path | None = None, n: int = 5) -> list[str]:
    """Run ids under ``base`` that contain ``ref`` (a short id such as ``3dad``), else the nearest spellings."""
    import difflib

    base = Path(base) if base else runs_dir()
    ids = sorted(p.parent.name for p in base.glob("*/manifest.json")) if base.is_dir() else []
    return [i for i in ids if ref in i][:n] or difflib.get_close_matches(ref, ids, n=n)


def run_summary(rd: RunDir) -> dict[str, Any]:
    cells = rd.cells()
    by = {"ok": 0, "failed": 0, "skipped": 0}
    for c in cells:
        by[c.status] = by.get(c.status, 0) + 1
    m = rd.manifest
    return {
        "run_id": m.run_id,
        "created_at": m.created_at,
        "status": m.status,
        "model": m.model,
        "weights": m.weights,
        "gpu": m.machine.gpu_name,
        "engines": sorted(m.engines),
        "cells_planned": len(m.cells),
        "cells_ok": by["ok"],
        "cells_failed": by["failed"],
        "cells_skipped": by["skipped"],
        "kernels": sorted(p.stem for p in (rd.path / "kernels").glob("*.json")) if (rd.path / "kernels").is_dir() else [],
        "path": str(rd.path),
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


def export_runs(run_dirs: list[RunDir], out: Path, include_logs: bool = False) -> Path:
    """One .tar.gz of run directories (for hosts without a shared filesystem); written atomically."""
    import tarfile
    import tempfile

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for rd in run_dirs:
                def keep(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
                    parts = Path(ti.name).parts
                    if not include_logs and len(parts) > 1 and parts[1] == "logs":
                        return None
                    # profiler traces (profiles/<session>/...) stay on the host like the logs; the records go
                    if not include_logs and len(parts) > 3 and parts[1] == "profiles":
                        return None
                    return ti

                tar.add(rd.path, arcname=rd.path.name, filter=keep)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def import_runs(archive: Path, base: Path | None = None) -> list[str]:
    """Unpack run directories from an ``export_runs`` archive; refuses to overwrite an existing run or to write
    outside ``base``; every manifest and record is validated before anything is moved into place."""
    import shutil
    import tarfile
    import tempfile

    base = Path(base) if base else runs_dir()
    base.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise HarnessError(f"{archive}: not a run archive: {exc}") from None
    with tar, tempfile.TemporaryDirectory(dir=base) as td:
        for m in tar.getmembers():
            p = Path(m.name)
            if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                raise HarnessError(f"{archive}: refusing member {m.name!r} (absolute, '..' or not a plain file)")
        tar.extractall(td)
        names = sorted(p.name for p in Path(td).iterdir() if p.is_dir())
        clash = [n for n in names if (base / n).exists()]
        if clash:
            raise HarnessError(f"{archive}: run(s) already present under {base}: {', '.join(clash)}; runs are never overwritten")
        for n in names:
            rd = RunDir.open(Path(td) / n)
            rd.cells()  # validates every cell record
        for n in names:
            shutil.move(str(Path(td) / n), str(base / n))
    return names
