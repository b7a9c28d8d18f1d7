"""File digests shared by the patch stack (wheel and tree hashes), the bundles and the MMLU sources."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path | str, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()
