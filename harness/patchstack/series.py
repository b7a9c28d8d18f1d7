"""The patch series: ``patches/series`` plus the ``*.patch`` files it lists, read without git.

Everything here is standard library only so that ``stack_hash()`` stays cheap enough to call
for every run manifest.

``series`` format: one patch file name per line, applied top to bottom; blank lines and lines
starting with ``#`` are ignored, and so is a trailing `` # comment`` after a name. A missing
``series`` file is an empty series.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from harness.errors import HarnessError

SERIES_FILE = "series"
PIN_FILE = "pin.yaml"
STACK_HASH_HEADER = b"gemma4-harness patch stack v1\n"
CODE_HASH_HEADER = b"gemma4-harness patch stack code v1\n"
_DIFF_START = b"\ndiff --git "
PATCH_NAME_RE = re.compile(r"^(\d{4})-[A-Za-z0-9][A-Za-z0-9._+-]*\.patch$")
_COMMIT_LINE_RE = re.compile(rb"^From [0-9a-f]{40} ", re.MULTILINE)
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_SUBJECT_PREFIX_RE = re.compile(r"^\s*\[PATCH[^\]]*\]\s*")


def default_patches_dir() -> Path:
    from harness.paths import patches_dir

    return patches_dir()


# --------------------------------------------------------------------------- series file


@dataclass(frozen=True)
class SeriesEntry:
    name: str
    line: int  # 1-based line number in the series file


def read_series(patches_dir: Path | None = None) -> list[SeriesEntry]:
    """The entries of ``patches/series`` in order (duplicates kept; see ``series_problems``)."""
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    path = pdir / SERIES_FILE
    if not path.is_file():
        return []
    return parse_series(path.read_text(encoding="utf-8"), str(path), str(pdir))


def parse_series(text: str, where: str = SERIES_FILE, pdir: str = "patches") -> list[SeriesEntry]:
    """The entries of a series file's text (``where`` and ``pdir`` name it in errors)."""
    entries: list[SeriesEntry] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        text = re.split(r"\s+#", text, maxsplit=1)[0].strip()
        if re.search(r"\s", text):
            raise HarnessError(
                f"{where}:{lineno}: unexpected text {text!r}; a series line holds one patch file name "
                "(options such as -p1 are not supported)"
            )
        if "/" in text or "\\" in text:
            raise HarnessError(f"{where}:{lineno}: {text!r} must be a file name inside {pdir}, not a path")
        entries.append(SeriesEntry(text, lineno))
    return entries


def series_names(patches_dir: Path | None = None) -> list[str]:
    return [e.name for e in read_series(patches_dir)]


def series_problems(patches_dir: Path | None = None) -> list[str]:
    """Disagreements between ``series`` and the ``*.patch`` files: missing, unlisted, duplicate.

    Returns human-readable problems (empty when the series and the directory agree).
    """
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    try:
        entries = read_series(pdir)
    except HarnessError as exc:
        return [str(exc)]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for e in entries:
        if e.name in seen:
            problems.append(
                f"series:{e.line}: duplicate entry {e.name} (first listed on line {seen[e.name]})"
            )
            continue
        seen[e.name] = e.line
        if not (pdir / e.name).is_file():
            problems.append(f"series:{e.line}: {e.name} is listed but {pdir / e.name} does not exist")
        elif not e.name.endswith(".patch"):
            problems.append(f"series:{e.line}: {e.name} does not end in .patch")
    on_disk = sorted(p.name for p in pdir.glob("*.patch") if p.is_file())
    for name in on_disk:
        if name not in seen:
            problems.append(f"{name} exists in {pdir} but is not listed in series")
    return problems


# --------------------------------------------------------------------------- stack hash


def stack_hash(patches_dir: Path | None = None) -> str:
    """sha256 identifying the patch stack: the series order and every listed patch's bytes.

    Definition (v1): sha256 of ``b"gemma4-harness patch stack v1\\n"`` followed, for each series
    entry in order, by ``<name> NUL <sha256 hex of the file bytes> LF``. An empty or missing
    series hashes just the header. Files not listed in the series do not count.
    """
    return stack_hash_of(_series_files(patches_dir))


def stack_hash_of(patches: list[tuple[str, bytes]]) -> str:
    """``stack_hash`` of (name, file bytes) pairs in series order."""
    h = hashlib.sha256(STACK_HASH_HEADER)
    for name, data in patches:
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
    return h.hexdigest()


def _series_files(patches_dir: Path | None) -> list[tuple[str, bytes]]:
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    out = []
    for e in read_series(pdir):
        path = pdir / e.name
        try:
            out.append((e.name, path.read_bytes()))
        except FileNotFoundError:
            raise HarnessError(f"series:{e.line}: {e.name} is listed but {path} does not exist") from None
    return out


def patch_code(data: bytes) -> bytes:
    """The code part of a format-patch file: from its first ``diff --git`` line to the end, so without the mail
    header, the commit message and the diffstat. A file without a diff is all code (nothing to strip)."""
    i = data.find(_DIFF_START)
    return data[i + 1:] if i >= 0 else data


def code_hash_of(patches: list[bytes]) -> str:
    """sha256 of a series' code: ``CODE_HASH_HEADER`` followed, for each patch file's bytes in series order, by the
    sha256 hex of its ``patch_code`` and LF. Names and messages do not count."""
    h = hashlib.sha256(CODE_HASH_HEADER)
    for data in patches:
        h.update(hashlib.sha256(patch_code(data)).hexdigest().encode("ascii") + b"\n")
    return h.hexdigest()


def stack_code_hash(patches_dir: Path | None = None) -> str:
    """sha256 identifying what the stack changes, not how its patches describe it: two series whose patches differ
    only in commit messages (say, a message that took a lease's measurements afterwards) have different
    ``stack_hash`` but the same code hash."""
    return code_hash_of([data for _, data in _series_files(patches_dir)])


def stack_info(patches_dir: Path | None = None) -> dict:
    """What a run manifest records about the stack: hash, count, subjects and the upstream pin."""
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    patches = [parse_patch_file(pdir / name) for name in series_names(pdir)]
    info: dict = {
        "stack_hash": stack_hash(pdir),
        "patch_count": len(patches),
        "patches": [{"file": p.name, "subject": p.subject} for p in patches],
        "subjects": [p.subject for p in patches],
    }
    upstream = _read_pin_light(pdir)
    if upstream:
        info["upstream"] = upstream
    return info


def _read_pin_light(pdir: Path) -> dict | None:
    """package/version/tree hash from pin.yaml without the pydantic model (import-light)."""
    path = pdir / PIN_FILE
    if not path.is_file():
        return None
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: not valid YAML: {exc}") from None
    pristine = raw.get("pristine") or {}
    return {
        "package": raw.get("package"),
        "version": str(raw.get("version")) if raw.get("version") is not None else None,
        "tree_sha256": pristine.get("tree_sha256"),
    }


# --------------------------------------------------------------------------- patch files


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header: str  # the whole "@@ -a,b +c,d @@ section" line


@dataclass
class FileChange:
    path: str  # path after the patch (before it, for a deletion)
    old_path: str | None = None  # path before the patch (None for a new file)
    status: str = "modified"  # added | modified | deleted | renamed | copied
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)


@dataclass
class PatchInfo:
    path: Path
    subject: str
    author: str
    date: str
    commit_count: int
    files: list[FileChange]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def number(self) -> int | None:
        m = PATCH_NAME_RE.match(self.name)
        return int(m.group(1)) if m else None

    def change_for(self, path: str) -> FileChange | None:
        for fc in self.files:
            if fc.path == path or fc.old_path == path:
                return fc
        return None

    @property
    def touched(self) -> list[str]:
        """Every path the patch touches (both sides of a rename), in patch order."""
        out: list[str] = []
        for fc in self.files:
            for p in (fc.old_path, fc.path):
                if p and p not in out:
                    out.append(p)
        return out

    @property
    def tests(self) -> list[str]:
        """Test files the patch adds or modifies (see ``is_test_file``)."""
        return [fc.path for fc in self.files if fc.status != "deleted" and is_test_file(fc.path)]

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "file": self.name,
            "subject": self.subject,
            "author": self.author,
            "files": [fc.path for fc in self.files],
            "changes": [
                {"path": fc.path, "old_path": fc.old_path, "status": fc.status, "hunks": len(fc.hunks)}
                for fc in self.files
            ],
            "tests": [{"path": t, "gpu": is_gpu_test(t)} for t in self.tests],
        }


def is_test_file(path: str) -> bool:
    """A pytest file the patches add to the upstream ``test/`` tree: ``test/**/test_*.py`` or ``*_test.py``."""
    p = Path(path)
    if not p.parts or p.parts[0] != "test" or p.suffix != ".py":
        return False
    return p.name.startswith("test_") or p.stem.endswith("_test")


def is_gpu_test(path: str) -> bool:
    """GPU-only test files carry ``_gpu`` in their file name (e.g. ``test_foo_gpu.py``)."""
    return "_gpu" in Path(path).name


def _unquote_git_path(s: str) -> str:
    """Undo git's C-style quoting of unusual paths ("a/t\\303\\251st")."""
    s = s.rstrip("\t")
    if not (len(s) >= 2 and s[0] == '"' and s[-1] == '"'):
        return s
    body = s[1:-1]
    out = bytearray()
    i = 0
    simple = {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\", "a": b"\a", "b": b"\b", "f": b"\f", "r": b"\r", "v": b"\v"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
            if re.match(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _strip_prefix(p: str) -> str | None:
    p = _unquote_git_path(p.split("\t", 1)[0] if not p.startswith('"') else p)
    if p == "/dev/null":
        return None
    if p[:2] in ("a/", "b/"):
        return p[2:]
    return p


def _paths_from_diff_git(rest: str) -> tuple[str, str]:
    """Split the ``a/X b/Y`` of a ``diff --git`` line (used when no ---/+++ lines exist)."""
    rest = rest.rstrip("\n")
    if rest.startswith('"'):
        end = rest.index('"', 1)
        while rest[end - 1] == "\\":
            end = rest.index('"', end + 1)
        a, b = rest[: end + 1], rest[end + 2 :]
    else:
        # "a/X b/X" with identical halves is the common, unambiguous case.
        n = len(rest)
        half = (n - 1) // 2
        if n % 2 == 1 and rest[half] == " " and rest[:half][2:] == rest[half + 1 :][2:]:
            a, b = rest[:half], rest[half + 1 :]
        else:
            a, _, b = rest.partition(" b/")
            b = "b/" + b
    return (_strip_prefix(a) or "", _strip_prefix(b) or "")


def parse_patch_bytes(data: bytes, path: Path) -> PatchInfo:
    """Parse one ``git format-patch`` file: headers, and per file its status and hunks."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(data)
    subject = _SUBJECT_PREFIX_RE.sub("", str(headers.get("subject") or "")).strip()
    author = str(headers.get("from") or "")
    date = str(headers.get("date") or "")
    commit_count = len(_COMMIT_LINE_RE.findall(data))

    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    files: list[FileChange] = []
    cur: FileChange | None = None
    old_left = new_left = 0
    for line in lines:
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag == "\\":
                continue
            if tag in (" ", ""):
                old_left -= 1
                new_left -= 1
            elif tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            else:  # malformed; stop counting
                old_left = new_left = 0
            continue
        if line.startswith("diff --git "):
            a, b = _paths_from_diff_git(line[len("diff --git ") :])
            cur = FileChange(path=b or a, old_path=a or None)
            files.append(cur)
            continue
        if cur is None:
            continue
        if line.startswith("new file mode"):
            cur.status, cur.old_path = "added", None
        elif line.startswith("deleted file mode"):
            cur.status = "deleted"
            cur.path = cur.old_path or cur.path
        elif line.startswith("rename from "):
            cur.status, cur.old_path = "renamed", _unquote_git_path(line[len("rename from ") :])
        elif line.startswith("rename to "):
            cur.path = _unquote_git_path(line[len("rename to ") :])
        elif line.startswith("copy from "):
            cur.status, cur.old_path = "copied", _unquote_git_path(line[len("copy from ") :])
        elif line.startswith("copy to "):
            cur.path = _unquote_git_path(line[len("copy to ") :])
        elif line.startswith("--- ") and not cur.hunks:
            p = _strip_prefix(line[4:])
            if p is not None and cur.status != "added":
                cur.old_path = p
        elif line.startswith("+++ ") and not cur.hunks:
            p = _strip_prefix(line[4:])
            if p is not None:
                cur.path = p
        elif line.startswith("Binary files ") or line.startswith("GIT binary patch"):
            cur.binary = True
        else:
            m = _HUNK_RE.match(line)
            if m:
                old_len = int(m.group(2)) if m.group(2) is not None else 1
                new_len = int(m.group(4)) if m.group(4) is not None else 1
                cur.hunks.append(Hunk(int(m.group(1)), old_len, int(m.group(3)), new_len, line))
                old_left, new_left = old_len, new_len
    return PatchInfo(path=path, subject=subject, author=author, date=date, commit_count=commit_count, files=files)


def parse_patch_file(path: Path) -> PatchInfo:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise HarnessError(f"patch file {path} does not exist") from None
    return parse_patch_bytes(data, Path(path))


def patch_problems(info: PatchInfo) -> list[str]:
    """Reasons a patch file is not a single-commit ``git format-patch`` file that git am can take."""
    problems = []
    if info.commit_count == 0:
        problems.append(f"{info.name}: no 'From <sha>' line; not git format-patch output")
    elif info.commit_count > 1:
        problems.append(f"{info.name}: holds {info.commit_count} commits; keep one commit per patch file")
    if not info.subject:
        problems.append(f"{info.name}: no Subject header")
    if not info.files:
        problems.append(f"{info.name}: contains no diff")
    cache = [f.path for f in info.files if "__pycache__/" in f.path or f.path.endswith((".pyc", ".pyo"))]
    if cache:
        problems.append(f"{info.name}: carries Python bytecode caches ({', '.join(cache)}); "
                        "commit only sources (git rm --cached, then export again)")
    return problems


def load_series(patches_dir: Path | None = None) -> list[PatchInfo]:
    """Parse every existing patch listed in the series, in order (missing entries skipped)."""
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    out: list[PatchInfo] = []
    seen: set[str] = set()
    for name in series_names(pdir):
        if name in seen or not (pdir / name).is_file():
            continue
        seen.add(name)
        out.append(parse_patch_file(pdir / name))
    return out


def naming_warnings(patches: list[PatchInfo]) -> list[str]:
    """Soft checks: NNNN-slug.patch names whose numbers rise in series order."""
    warnings = []
    last = -1
    for p in patches:
        if p.number is None:
            warnings.append(f"{p.name}: name does not follow NNNN-slug.patch")
            continue
        if p.number <= last:
            warnings.append(f"{p.name}: number {p.number:04d} does not rise in series order (after {last:04d})")
        last = p.number
    return warnings
