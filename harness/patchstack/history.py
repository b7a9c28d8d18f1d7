"""Every version of the patch series in the checkout's git history, as {stack hash: code hash}.

Runs record the ``stack_hash`` they ran (the series order and every patch file's bytes). A patch's commit message
often changes after a lease, to carry what the lease measured; the stack hash changes with it though the code does
not. The report asks this module which recorded stack hashes have the same code as this checkout's series
(``series.stack_code_hash``): those measured it. The history comes from git (``git log`` of the patches directory,
then ``git ls-tree`` and one ``git cat-file --batch`` for the blobs); without git or outside a work tree it is
empty and only an equal stack hash counts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import HarnessError
from harness.patchstack.gitops import git_env, git_exe
from harness.patchstack.series import (
    SERIES_FILE,
    code_hash_of,
    default_patches_dir,
    parse_series,
    stack_code_hash,
    stack_hash,
    stack_hash_of,
)


def _git(pdir: Path, *args: str, data: bytes | None = None) -> bytes:
    # gitops' executable and isolated environment; bytes, not gitops.git's text, for cat-file's blobs
    return subprocess.run([git_exe(), "-C", str(pdir), *args], input=data, capture_output=True, check=True,
                          env=git_env(), timeout=60).stdout


def _cat_blobs(pdir: Path, blobs: list[str]) -> dict[str, bytes]:
    out = _git(pdir, "cat-file", "--batch", data="".join(b + "\n" for b in blobs).encode())
    res: dict[str, bytes] = {}
    pos = 0
    for b in blobs:
        nl = out.index(b"\n", pos)
        sha, kind, size = out[pos:nl].decode().split()
        n = int(size)
        res[sha] = out[nl + 1:nl + 1 + n]
        pos = nl + 1 + n + 1  # the content is followed by LF
    return res


def stack_history(patches_dir: Path | None = None) -> dict[str, str]:
    """{stack hash: code hash} for each committed version of the series (commits touching the patches directory),
    newest first in insertion order. Versions whose series lists a file the commit lacks, or whose series does not
    parse, are left out. Empty when git or the work tree is missing."""
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    try:
        commits = _git(pdir, "log", "--format=%H", "--", ".").decode().split()
        trees: list[dict[str, str]] = []
        for c in commits:
            listing: dict[str, str] = {}
            for line in _git(pdir, "ls-tree", c, "--", ".").decode().splitlines():
                meta, name = line.split("\t", 1)
                mode, kind, blob = meta.split()
                if kind == "blob":
                    listing[Path(name).name] = blob
            trees.append(listing)
        blobs = sorted({b for t in trees for n, b in t.items() if n == SERIES_FILE or n.endswith(".patch")})
        content = _cat_blobs(pdir, blobs) if blobs else {}
    except (OSError, subprocess.SubprocessError, ValueError, HarnessError):  # HarnessError: no git on PATH
        return {}
    history: dict[str, str] = {}
    for t in trees:
        try:
            entries = parse_series(content[t[SERIES_FILE]].decode("utf-8")) if SERIES_FILE in t else []
            files = [(e.name, content[t[e.name]]) for e in entries]
        except (KeyError, UnicodeDecodeError, HarnessError):
            continue
        history.setdefault(stack_hash_of(files), code_hash_of([d for _, d in files]))
    return history


def same_code_stacks(patches_dir: Path | None = None) -> tuple[str, str, frozenset[str]]:
    """(this checkout's stack hash, its code hash, the other committed stack hashes with the same code)."""
    current, code = stack_hash(patches_dir), stack_code_hash(patches_dir)
    return current, code, frozenset(h for h, c in stack_history(patches_dir).items() if c == code and h != current)
