"""Applying the series: pristine tree -> git repo with a reproducible base commit -> ``git am`` each patch.

On success the tree gets ``.harness-patchstack.json`` (pin, stack hash, applied patches). Without
that marker a directory is not a complete patched tree: a failed apply leaves the tree (with the
``git am`` session still open) for inspection and raises ``PatchApplyError``, which names the
patch, the file and the hunk that failed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.atomic import atomic_write_json
from harness.errors import HarnessError
from harness.patchstack import gitops
from harness.patchstack.pin import PRISTINE_TREE, Pin, load_pin, pin_path
from harness.patchstack.pristine import Log, _nolog, materialize_pristine
from harness.patchstack.series import (
    PatchInfo,
    default_patches_dir,
    load_series,
    patch_problems,
    series_problems,
    stack_hash,
)

MARKER = ".harness-patchstack.json"
MARKER_SCHEMA = 1


@dataclass
class HunkFailure:
    file: str
    reason: str
    hunk: int | None = None  # 1-based within the file
    hunks_total: int | None = None
    header: str | None = None  # "@@ -a,b +c,d @@ context"
    line: int | None = None  # where git looked for the hunk in the pre-patch file

    def describe(self) -> str:
        if self.hunk is not None:
            where = f"hunk #{self.hunk}"
            if self.hunks_total:
                where += f" of {self.hunks_total}"
            if self.header:
                where += f" ({self.header})"
            return f"{self.file}: {where}: {self.reason}"
        return f"{self.file}: {self.reason}" if self.file else self.reason


class PatchApplyError(HarnessError):
    """A patch of the series did not apply; ``str()`` is one line, ``details`` has the rest."""

    def __init__(self, patch: PatchInfo, index: int, failures: list[HunkFailure], tree: Path, output: str):
        self.patch = patch
        self.index = index
        self.failures = failures
        self.tree = tree
        self.output = output
        first = failures[0].describe() if failures else "git am failed"
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(
            f"patch {index} {patch.name} ({patch.subject}) does not apply: {first}{more}; "
            f"tree left at {tree} (git am in progress: fix and `git am --continue`, or `git am --abort`)"
        )

    @property
    def details(self) -> list[str]:
        lines = [f"patch {self.index}: {self.patch.name} — {self.patch.subject}"]
        lines += [f"  {f.describe()}" for f in self.failures]
        lines.append(f"  tree left at {self.tree}")
        return lines


@dataclass
class AppliedPatch:
    file: str
    subject: str
    commit: str


@dataclass
class AppliedStack:
    tree: Path
    package: str
    version: str
    source: str
    tree_sha256: str
    base_commit: str
    head_commit: str
    stack_hash: str
    patches: list[AppliedPatch] = field(default_factory=list)

    def marker(self) -> dict:
        d = asdict(self)
        d.pop("tree")
        d["schema"] = MARKER_SCHEMA
        d["patch_count"] = len(self.patches)
        return d


# --------------------------------------------------------------------------- preconditions


def _dangerous(out: Path) -> str | None:
    from harness.paths import repo_root

    out = out.resolve()
    protected = {Path("/"), Path.home().resolve(), repo_root().resolve()}
    if out in protected:
        return f"{out} is / , your home or the harness repository"
    for p in (repo_root().resolve(), Path.cwd().resolve()):
        if out in p.parents:
            return f"{out} contains {p}"
    return None


def prepare_out_dir(out: Path, *, force: bool) -> None:
    """Make sure ``out`` is absent or empty; with ``force`` empty it (never /, $HOME, the repo)."""
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise HarnessError(f"--out {out} exists and is not empty; pass --force to replace it")
        why = _dangerous(out)
        if why:
            raise HarnessError(f"refusing --force on {out}: {why}")
        marker = out / MARKER
        if marker.exists():
            marker.unlink()  # first, so an interrupted wipe never looks complete
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def series_for_apply(patches_dir: Path, *, log: Log = _nolog) -> list[PatchInfo]:
    """The parsed series; missing/duplicate entries and malformed patches are fatal, unlisted files warn."""
    problems = series_problems(patches_dir)
    fatal = [p for p in problems if "not listed in series" not in p]
    for p in problems:
        if p not in fatal:
            log(f"warning: {p}")
    patches = load_series(patches_dir)
    for info in patches:
        fatal += patch_problems(info)
    if fatal:
        raise HarnessError(f"patch series in {patches_dir} is not usable: " + "; ".join(fatal))
    return patches


# --------------------------------------------------------------------------- apply


def apply_stack(
    out_dir: Path,
    source: str = "pypi",
    *,
    force: bool = False,
    pin: Pin | None = None,
    patches_dir: Path | None = None,
    log: Log = _nolog,
) -> AppliedStack:
    """Build ``out_dir``: pristine tree, base commit (tag ``base``), then the series via ``git am``."""
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    pin = pin or load_pin(pin_path(pdir))
    out = Path(out_dir).expanduser().resolve()
    patches = series_for_apply(pdir, log=log)
    shash = stack_hash(pdir)
    gitops.git_exe()
    prepare_out_dir(out, force=force)

    pristine = materialize_pristine(source, out, pin=pin, log=log)
    gitops.init_repo(out)
    exclude = out / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(f"/{MARKER}\n", encoding="utf-8")
    base = gitops.commit_base(
        out,
        f"{pin.label} pristine source ({PRISTINE_TREE})\n\n"
        f"Tree hash ({pin.pristine.algorithm}): {pristine.tree_sha256}\nFiles: {pristine.files}\n",
    )
    log(f"base commit {base[:12]} (tag {gitops.BASE_TAG})")

    applied: list[AppliedPatch] = []
    for index, info in enumerate(patches, start=1):
        log(f"applying {index}/{len(patches)} {info.name}: {info.subject}")
        proc = gitops.am(out, info.path)
        if proc.returncode != 0:
            failures = diagnose_failure(out, info, proc.stdout)
            raise PatchApplyError(info, index, failures, out, proc.stdout)
        applied.append(AppliedPatch(info.name, info.subject, gitops.head(out)))

    dirty = gitops.status_porcelain(out)
    if dirty.strip():
        raise HarnessError(f"{out}: working tree not clean after git am: {dirty.strip().splitlines()[0]} ...")
    result = AppliedStack(
        tree=out,
        package=pin.package,
        version=pin.version,
        source=pristine.source,
        tree_sha256=pristine.tree_sha256,
        base_commit=base,
        head_commit=gitops.head(out),
        stack_hash=shash,
        patches=applied,
    )
    atomic_write_json(out / MARKER, result.marker())
    return result


def read_marker(tree: Path) -> dict | None:
    """The marker of a complete patched tree, or None if ``tree`` is not one."""
    path = Path(tree) / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None


# --------------------------------------------------------------------------- diagnosis

_PATCH_FAILED_RE = re.compile(r"^error: patch failed: (.+):(\d+)$")
_FILE_ERROR_RE = re.compile(
    r"^error: (.+?): (already exists in (?:working directory|index)|does not exist in index|"
    r"No such file or directory|does not match index|wrong type|has type \d+, expected \d+)$"
)
_GENERIC_ERROR_RE = re.compile(r"^(?:error|fatal): (.+)$")
_REJECTED_RE = re.compile(r"^Rejected hunk #(\d+)\.")


def diagnose_failure(tree: Path, info: PatchInfo, am_output: str) -> list[HunkFailure]:
    """Name the files and hunks of ``info`` that do not apply to ``tree`` (as it was before the patch)."""
    check = gitops.git(tree, "apply", "--check", "-v", str(info.path), check=False)
    failures: list[HunkFailure] = []
    failed_lines: dict[str, list[int]] = {}
    for line in check.stdout.splitlines():
        m = _PATCH_FAILED_RE.match(line)
        if m:
            failed_lines.setdefault(m.group(1), []).append(int(m.group(2)))
            continue
        m = _FILE_ERROR_RE.match(line)
        if m:
            failures.append(HunkFailure(file=m.group(1), reason=m.group(2)))
            continue
        m = _GENERIC_ERROR_RE.match(line)
        if m and "patch does not apply" not in line and "while searching for" not in line:
            failures.append(HunkFailure(file="", reason=m.group(1)))
    for fname, lines in failed_lines.items():
        change = info.change_for(fname)
        hunks = change.hunks if change else []
        rejected = _rejected_hunks(tree, info, fname)
        if not rejected:  # fall back: the hunk whose old start git reported
            rejected = [i for i, h in enumerate(hunks, start=1) if h.old_start in lines] or [None]
        for n in rejected:
            h = hunks[n - 1] if n is not None and 0 < n <= len(hunks) else None
            failures.append(
                HunkFailure(
                    file=fname,
                    reason="does not apply (context or removed lines not found)",
                    hunk=n,
                    hunks_total=len(hunks) or None,
                    header=h.header if h else None,
                    line=h.old_start if h else (lines[0] if lines else None),
                )
            )
    if not failures:
        reason = _am_reason(am_output) or "git am failed"
        failures.append(HunkFailure(file="", reason=reason))
    return failures


def _am_reason(am_output: str) -> str | None:
    for line in am_output.splitlines():
        line = line.strip()
        if line.startswith("Patch is empty"):
            return "patch is empty (no changes)"
        m = _GENERIC_ERROR_RE.match(line)
        if m:
            return m.group(1)
    return None


def _rejected_hunks(tree: Path, info: PatchInfo, fname: str) -> list[int]:
    """All rejected hunk numbers of one file, from ``git apply --reject`` on a scratch copy of it."""
    src = tree / fname
    if not src.is_file():
        return []
    with tempfile.TemporaryDirectory(prefix="harness-reject-") as tmp:
        scratch = Path(tmp) / "t"
        dst = scratch / fname
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        env = gitops.git_env(GIT_CEILING_DIRECTORIES=str(Path(tmp)))
        proc = subprocess.run(
            [gitops.git_exe(), "apply", "--reject", "-v", f"--include={fname}", str(info.path)],
            cwd=scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    return [int(m.group(1)) for m in map(_REJECTED_RE.match, proc.stdout.splitlines()) if m]


def touched_python_files(patches: list[PatchInfo], tree: Path) -> list[str]:
    """``.py`` files the series adds or modifies that exist in the final tree, in first-touch order."""
    out: list[str] = []
    for info in patches:
        for fc in info.files:
            if fc.status != "deleted" and fc.path.endswith(".py") and fc.path not in out:
                out.append(fc.path)
    return [p for p in out if (tree / p).is_file()]


__all__ = [
    "MARKER",
    "AppliedPatch",
    "AppliedStack",
    "HunkFailure",
    "PatchApplyError",
    "apply_stack",
    "diagnose_failure",
    "prepare_out_dir",
    "read_marker",
    "touched_python_files",
]
