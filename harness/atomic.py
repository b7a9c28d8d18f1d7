"""Atomic file writes: write to a temporary file in the same directory, fsync, rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any, *, compact: bool = False) -> Path:
    """``compact``: one line without indentation (large records such as per-token generations)."""
    text = json.dumps(obj, sort_keys=True, default=str, **({"separators": (",", ":")} if compact else {"indent": 2}))
    return atomic_write_text(path, text + "\n")


def write_new_json(path: Path | str, obj: Any, *, compact: bool = False) -> Path:
    """Atomically write JSON to a path that must not exist yet (results are immutable)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"refusing to overwrite existing record {path}")
    return atomic_write_json(path, obj, compact=compact)
