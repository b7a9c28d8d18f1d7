"""The patch-stack machinery on a tiny fake upstream (no sglang download except the network test)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli.app import app
from harness.errors import HarnessError
from harness.patchstack import gitops
from harness.patchstack.apply import MARKER, PatchApplyError, apply_stack, read_marker
from harness.patchstack.check import check_stack
from harness.patchstack.pin import load_pin, tree_sha256
from harness.patchstack.series import (
    load_series,
    parse_patch_bytes,
    patch_problems,
    read_series,
    series_problems,
    stack_code_hash,
    stack_hash,
    stack_info,
)
from harness.patchstack.testrun import select_tests

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to apply patches")

MODEL_LINES = [f"line_{i} = {i}\n" for i in range(1, 61)]


# --------------------------------------------------------------------------- fixtures


def write_files(root: Path, files: dict[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        p = root / rel
        if content is None:
            p.unlink()
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())


def make_upstream(root: Path) -> Path:
    """A fake upstream checkout: python/sglang with a few files plus things the hash must ignore."""
    write_files(
        root,
        {
            "python/sglang/__init__.py": "__version__ = '0.5.12'\n",
            "python/sglang/srt/__init__.py": "",
            "python/sglang/srt/models/model.py": "".join(MODEL_LINES),
            "python/sglang/srt/crlf.py": b"a = 1\r\nb = 2\r\nc = 3\r\n",
            "python/sglang/srt/__pycache__/model.cpython-311.pyc": b"\x00junk",
            "python/sglang/srt/grpc/_core.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
        },
    )
    return root


def write_pin(patches: Path, upstream: Path, *, tree_hash: str | None = None) -> None:
    digest, count = tree_sha256(upstream / "python" / "sglang")
    pin = {
        "package": "sglang",
        "version": "0.5.12",
        "pypi": {"package": "sglang", "wheels": {}},
        "git": {"url": "https://example.invalid/sglang", "ref": "v0.5.12", "commit": None, "tree_sha256": None},
        "pristine": {
            "tree": "python/sglang",
            "algorithm": "sha256-manifest-v1",
            "tree_sha256": tree_hash or digest,
            "files": count,
        },
    }
    patches.mkdir(parents=True, exist_ok=True)
    (patches / "pin.yaml").write_text(yaml.safe_dump(pin))


class Author:
    """Writes real ``git format-patch`` files against a copy of the fake upstream."""

    def __init__(self, upstream: Path, work: Path):
        self.repo = work
        shutil.copytree(upstream / "python", work / "python", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        gitops.init_repo(work)
        gitops.commit_base(work, "base")
        self.n = 0

    def commit(self, subject: str, files: dict[str, str | bytes | None], *, branch: str | None = None) -> None:
        if branch:
            gitops.git(self.repo, "checkout", "-q", "-B", branch, gitops.BASE_TAG)
        write_files(self.repo, files)
        gitops.git(self.repo, "add", "--all", ".")
        self.n += 1
        date = f"2024-01-01T00:00:{self.n:02d}+0000"
        env = gitops.git_env(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_AUTHOR_NAME="Patch Author")
        gitops.git(self.repo, "commit", "-q", "-m", subject, env=env)

    def export(self, out: Path, *, start: int = 1, count: int = 1, name: str | None = None) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        proc = gitops.git(
            self.repo, "format-patch", "--zero-commit", "--no-signature", f"--start-number={start}",
            f"-{count}", "-o", str(out),
        )  # fmt: skip
        paths = [Path(line.strip()) for line in proc.stdout.splitlines() if line.strip()]
        if name:
            paths[0] = paths[0].rename(out / name)
        return paths


def fix_line(i: int, text: str) -> str:
    lines = list(MODEL_LINES)
    lines[i - 1] = text
    return "".join(lines)


@pytest.fixture()
def stack(tmp_path, monkeypatch):
    """A harness root with pin.yaml and a two-patch series against a fake upstream."""
    upstream = make_upstream(tmp_path / "upstream")
    root = tmp_path / "root"
    patches = root / "patches"
    write_pin(patches, upstream)
    monkeypatch.setenv("HARNESS_ROOT", str(root))
    monkeypatch.setenv("HARNESS_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("HARNESS_SGLANG_SOURCE", raising=False)
    author = Author(upstream, tmp_path / "author")
    lines = list(MODEL_LINES)
    lines[4] = "line_5 = 'five'\n"
    lines[49] = "line_50 = 'fifty'\n"
    author.commit(
        "perf(gemma4): first change",
        {
            "python/sglang/srt/models/model.py": "".join(lines),
            "test/srt/test_first.py": "def test_ok():\n    import sglang\n    assert sglang.__version__ == '0.5.12'\n",
            "test/srt/test_first_gpu.py": "def test_gpu():\n    assert True\n",
            "test/srt/helpers.py": "X = 1\n",
        },
    )
    author.commit(
        "fix(gemma4): second change touching a CRLF file",
        {"python/sglang/srt/crlf.py": b"a = 1\r\nb = 22\r\nc = 3\r\n", "python/sglang/srt/new_mod.py": "VALUE = 2\n"},
    )
    author.export(patches, count=2)
    (patches / "series").write_text(
        "# the stack\n\n0001-perf-gemma4-first-change.patch   # first\n"
        "0002-fix-gemma4-second-change-touching-a-CRLF-file.patch\n"
    )

    class S:
        pass

    s = S()
    s.tmp, s.upstream, s.root, s.patches, s.author = tmp_path, upstream, root, patches, author
    s.source = str(upstream)
    return s


runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, ["patches", *args], catch_exceptions=False)


def cli_main(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point (HarnessError -> one red line, exit 2) in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "harness", "patches", *args], capture_output=True, text=True, timeout=120
    )


# --------------------------------------------------------------------------- series / hash / list


def test_series_parsing_comments_and_missing_file(stack):
    assert [e.name for e in read_series(stack.patches)] == [
        "0001-perf-gemma4-first-change.patch",
        "0002-fix-gemma4-second-change-touching-a-CRLF-file.patch",
    ]
    (stack.patches / "series").unlink()
    assert read_series(stack.patches) == []
    (stack.patches / "series").write_text("0001-a.patch -p1\n")
    with pytest.raises(HarnessError, match=r"series:1: unexpected text"):
        read_series(stack.patches)


def test_series_problems_missing_extra_duplicate(stack):
    assert series_problems(stack.patches) == []
    series = stack.patches / "series"
    first = "0001-perf-gemma4-first-change.patch"
    second = "0002-fix-gemma4-second-change-touching-a-CRLF-file.patch"
    series.write_text(f"{first}\n{second}\n{first}\n0003-gone.patch\n")
    (stack.patches / "0009-stray.patch").write_text("x")
    problems = series_problems(stack.patches)
    assert any("series:3: duplicate entry " + first in p for p in problems)
    assert any("0003-gone.patch is listed but" in p for p in problems)
    assert any("0009-stray.patch exists" in p and "not listed in series" in p for p in problems)
    assert len(problems) == 3
    with pytest.raises(HarnessError, match="duplicate entry"):
        apply_stack(stack.tmp / "out", stack.source)
    result = check_stack(stack.source)
    assert not result.ok and len(result.problems) == 3


def test_stack_hash_tracks_bytes_and_order(stack):
    h0 = stack_hash(stack.patches)
    assert h0 == stack_hash() and len(h0) == 64
    (stack.patches / "notes.txt").write_text("unlisted files do not count")
    (stack.patches / "0099-unlisted.patch").write_text("not in series")
    assert stack_hash(stack.patches) == h0
    p1 = stack.patches / "0001-perf-gemma4-first-change.patch"
    data = p1.read_bytes()
    p1.write_bytes(data.replace(b"first change", b"first chang3", 1))
    h1 = stack_hash(stack.patches)
    assert h1 != h0
    p1.write_bytes(data)
    assert stack_hash(stack.patches) == h0
    lines = (stack.patches / "series").read_text().splitlines()
    (stack.patches / "series").write_text("\n".join(reversed(lines)) + "\n")
    assert stack_hash(stack.patches) not in (h0, h1)
    (stack.patches / "series").unlink()
    empty = hashlib.sha256(b"gemma4-harness patch stack v1\n").hexdigest()
    assert stack_hash(stack.patches) == empty


def test_code_hash_ignores_commit_messages_only(stack):
    """A message edited after a lease (to carry its measurements) changes the stack hash, not the code hash; a changed
    diff line, or another order, changes both."""
    h0, c0 = stack_hash(stack.patches), stack_code_hash(stack.patches)
    p1 = stack.patches / "0001-perf-gemma4-first-change.patch"
    data = p1.read_bytes()
    head, diff = data.split(b"\ndiff --git ", 1)
    p1.write_bytes(head.replace(b"first change", b"first change, measured: -3% TPOT") + b"\ndiff --git " + diff)
    assert stack_hash(stack.patches) != h0 and stack_code_hash(stack.patches) == c0
    p1.write_bytes(data.replace(b"+line_5 = 'five'", b"+line_5 = 'FIVE'"))
    assert stack_code_hash(stack.patches) != c0
    p1.write_bytes(data)
    lines = (stack.patches / "series").read_text().splitlines()
    (stack.patches / "series").write_text("\n".join(reversed(lines)) + "\n")
    assert stack_code_hash(stack.patches) != c0


def test_stack_history_pairs_each_committed_series_with_its_code(stack, tmp_path):
    """Three commits of the patches directory: the series, a message-only edit, a code edit. The history maps each
    version's stack hash to its code hash; same_code_stacks names the committed versions with this checkout's code."""
    from harness.patchstack.history import same_code_stacks, stack_history

    repo = stack.root

    def git(*a):
        subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)

    assert stack_history(stack.patches) == {}  # not a work tree yet
    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    git("add", "-A")
    git("commit", "-qm", "v1")
    v1, c1 = stack_hash(stack.patches), stack_code_hash(stack.patches)
    p1 = stack.patches / "0001-perf-gemma4-first-change.patch"
    data = p1.read_bytes()
    head, diff = data.split(b"\ndiff --git ", 1)
    p1.write_bytes(head + b"\nMeasured after the lease.\n" + b"\ndiff --git " + diff)
    git("commit", "-qam", "v2: message only")
    v2 = stack_hash(stack.patches)
    (repo / "unrelated.txt").write_text("x")
    git("add", "-A")
    git("commit", "-qm", "not touching patches/")
    p1.write_bytes(p1.read_bytes().replace(b"+line_5 = 'five'", b"+line_5 = 'FIVE'"))
    git("commit", "-qam", "v3: code")
    v3, c3 = stack_hash(stack.patches), stack_code_hash(stack.patches)
    assert stack_history(stack.patches) == {v3: c3, v2: c1, v1: c1} and c3 != c1
    assert list(stack_history(stack.patches)) == [v3, v2, v1]  # newest first
    assert same_code_stacks(stack.patches) == (v3, c3, frozenset())
    git("checkout", "-q", "HEAD~2", "--", "patches")  # back to v2's files in the work tree
    assert same_code_stacks(stack.patches) == (v2, c1, frozenset({v1}))


def test_stack_info(stack):
    info = stack_info()
    assert info["stack_hash"] == stack_hash()
    assert info["patch_count"] == 2
    assert info["subjects"] == ["perf(gemma4): first change", "fix(gemma4): second change touching a CRLF file"]
    assert info["upstream"]["version"] == "0.5.12"


def test_import_is_light():
    code = "import sys, harness.patchstack as p; p.stack_hash(); print('pydantic' in sys.modules, 'typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_list_json(stack):
    res = cli("list", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["stack_hash"] == stack_hash() and doc["code_hash"] == stack_code_hash()
    assert doc["patch_count"] == 2 and doc["problems"] == []
    p1, p2 = doc["patches"]
    assert (p1["index"], p1["number"], p1["subject"]) == (1, 1, "perf(gemma4): first change")
    assert p1["files"] == [
        "python/sglang/srt/models/model.py",
        "test/srt/helpers.py",
        "test/srt/test_first.py",
        "test/srt/test_first_gpu.py",
    ]
    assert p1["tests"] == [
        {"path": "test/srt/test_first.py", "gpu": False},
        {"path": "test/srt/test_first_gpu.py", "gpu": True},
    ]
    assert [c["hunks"] for c in p1["changes"]][0] == 2
    assert p2["number"] == 2 and p2["tests"] == []
    assert {c["path"]: c["status"] for c in p2["changes"]} == {
        "python/sglang/srt/crlf.py": "modified",
        "python/sglang/srt/new_mod.py": "added",
    }
    text = cli("list")
    assert text.exit_code == 0
    assert "0001" in text.stdout and "0002" in text.stdout and "(gpu)" in text.stdout


def test_parse_rename_delete_and_folded_subject():
    patch = (
        b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        b"From: A <a@b>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Subject: [PATCH 3/7] perf(gemma4): a subject that git folded onto\n a second line\n\nbody\n---\n"
        b"diff --git a/test/old_test.py b/test/srt/new_test.py\nsimilarity index 100%\n"
        b"rename from test/old_test.py\nrename to test/srt/new_test.py\n"
        b"diff --git a/python/sglang/gone.py b/python/sglang/gone.py\ndeleted file mode 100644\n"
        b"index 1111111..0000000\n--- a/python/sglang/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n--- y\n"
        b"diff --git a/python/sglang/a.py b/python/sglang/a.py\nindex 1..2 100644\n"
        b"--- a/python/sglang/a.py\n+++ b/python/sglang/a.py\n@@ -3 +3 @@ def f():\n-a\n+b\n"
    )
    info = parse_patch_bytes(patch, Path("0003-x.patch"))
    assert info.subject == "perf(gemma4): a subject that git folded onto a second line"
    assert [(f.path, f.old_path, f.status) for f in info.files] == [
        ("test/srt/new_test.py", "test/old_test.py", "renamed"),
        ("python/sglang/gone.py", "python/sglang/gone.py", "deleted"),
        ("python/sglang/a.py", "python/sglang/a.py", "modified"),
    ]
    # "--- y" is a removed line inside the hunk, not a new file header
    assert [len(f.hunks) for f in info.files] == [0, 1, 1]
    assert info.files[2].hunks[0].header == "@@ -3 +3 @@ def f():"
    assert info.tests == ["test/srt/new_test.py"]


def test_bytecode_cache_in_a_patch_is_a_problem():
    head = (b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            b"From: A <a@b>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [PATCH] x\n\n---\n")
    src = (b"diff --git a/python/sglang/a.py b/python/sglang/a.py\nindex 1..2 100644\n"
           b"--- a/python/sglang/a.py\n+++ b/python/sglang/a.py\n@@ -1 +1 @@\n-a\n+b\n")
    pyc = (b"diff --git a/test/srt/__pycache__/t.cpython-311.pyc b/test/srt/__pycache__/t.cpython-311.pyc\n"
           b"new file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 3\nKcmZ?l0000\n\nliteral 0\nHcmV?d00001\n\n")
    assert patch_problems(parse_patch_bytes(head + src, Path("0001-x.patch"))) == []
    problems = patch_problems(parse_patch_bytes(head + src + pyc, Path("0001-x.patch")))
    assert len(problems) == 1 and "test/srt/__pycache__/t.cpython-311.pyc" in problems[0]


# --------------------------------------------------------------------------- tree hash / sources


def test_tree_hash_definition_and_ignored_files(stack):
    pkg = stack.upstream / "python" / "sglang"
    digest, count = tree_sha256(pkg)
    files = sorted(["__init__.py", "srt/__init__.py", "srt/crlf.py", "srt/models/model.py"])
    manifest = "".join(f"{hashlib.sha256((pkg / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    assert (digest, count) == (hashlib.sha256(manifest.encode()).hexdigest(), 4)
    (pkg / "srt" / "__pycache__" / "other.cpython-312.pyc").write_bytes(b"more junk")
    assert tree_sha256(pkg)[0] == digest
    (pkg / "srt" / "models" / "model.py").write_text("changed\n")
    assert tree_sha256(pkg)[0] != digest


def test_wrong_base_is_caught(stack):
    write_pin(stack.patches, stack.upstream, tree_hash="0" * 64)
    with pytest.raises(HarnessError, match=r"wrong base: python/sglang from .* hashes to [0-9a-f]{64} \(4 files\), "
                       r"pin.yaml wants 0{64}"):  # fmt: skip
        apply_stack(stack.tmp / "out", stack.source)
    assert not (stack.tmp / "out" / MARKER).exists()
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 1
    assert "wrong base" in res.stderr and "apply cleanly" not in res.stdout


def _wheel(path: Path, upstream: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((upstream / "python").rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(upstream / "python").as_posix())
        zf.writestr("sglang-0.5.12.dist-info/RECORD", "")
    return path


def test_wheel_path_and_cached_pypi_source(stack, monkeypatch):
    whl = _wheel(stack.tmp / "sglang-0.5.12-cp311-cp311-manylinux_2_34_x86_64.whl", stack.upstream)
    res = apply_stack(stack.tmp / "from-whl", str(whl))
    assert res.tree_sha256 == load_pin().pristine.tree_sha256
    assert not list((stack.tmp / "from-whl").rglob("*.so"))
    assert not (stack.tmp / "from-whl" / "python" / "sglang-0.5.12.dist-info").exists()

    pin_file = stack.patches / "pin.yaml"
    pin = yaml.safe_load(pin_file.read_text())
    pin["pypi"]["wheels"] = {whl.name: hashlib.sha256(whl.read_bytes()).hexdigest()}
    pin_file.write_text(yaml.safe_dump(pin))
    cache = stack.tmp / "state" / "patchstack" / "wheels"
    cache.mkdir(parents=True)
    shutil.copy(whl, cache / whl.name)

    def no_network(*a, **k):
        raise AssertionError("must reuse the cached wheel")

    monkeypatch.setattr("harness.patchstack.pristine.download_wheel", no_network)
    res2 = apply_stack(stack.tmp / "from-pypi", "pypi")
    assert res2.source == f"pypi:{whl.name}"
    assert res2.head_commit == res.head_commit  # same tree, same patches: same commits

    (cache / whl.name).write_bytes(b"corrupted")
    called = []
    monkeypatch.setattr("harness.patchstack.pristine.download_wheel", lambda pin, c, log: called.append(c) or whl)
    apply_stack(stack.tmp / "redownload", "pypi")
    assert called == [cache] and not (cache / whl.name).exists()


# --------------------------------------------------------------------------- apply


def test_apply_success_marker_and_reproducible_commits(stack):
    out = stack.tmp / "out"
    res = apply_stack(out, stack.source)
    marker = read_marker(out)
    assert marker is not None and marker == json.loads((out / MARKER).read_text())
    assert marker["stack_hash"] == stack_hash() and marker["version"] == "0.5.12"
    assert [p["file"] for p in marker["patches"]] == [e.name for e in read_series()]
    assert marker["head_commit"] == res.head_commit
    # patched content, including the CRLF file (git am --keep-cr)
    assert (out / "python/sglang/srt/crlf.py").read_bytes() == b"a = 1\r\nb = 22\r\nc = 3\r\n"
    assert "line_50 = 'fifty'" in (out / "python/sglang/srt/models/model.py").read_text()
    assert (out / "test/srt/test_first.py").is_file()
    log = gitops.git(out, "log", "--format=%s", "base..HEAD").stdout.split("\n")
    assert log[:2] == ["fix(gemma4): second change touching a CRLF file", "perf(gemma4): first change"]
    assert gitops.status_porcelain(out) == ""
    res2 = apply_stack(stack.tmp / "out2", stack.source)
    assert (res2.base_commit, res2.head_commit) == (res.base_commit, res.head_commit)


def test_apply_cli_refuses_non_empty_out_unless_force(stack):
    out = stack.tmp / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = cli_main("apply", "--source", stack.source, "--out", str(out))
    assert res.returncode == 2 and "not empty; pass --force" in res.stderr
    assert (out / "keep.txt").exists()
    res = cli_main("apply", "--source", stack.source, "--out", str(out), "--force")
    assert res.returncode == 0, res.stderr
    assert not (out / "keep.txt").exists() and read_marker(out)["patch_count"] == 2
    assert res.stdout.strip() == str(out.resolve())


def _add_conflicting_patch(stack) -> str:
    """0003 is written against the pristine tree and changes line 50, which 0001 already changed."""
    stack.author.commit(
        "fix: conflicting change",
        {"python/sglang/srt/models/model.py": fix_line(50, "line_50 = 'L'\n").replace("line_1 = 1", "line_1 = 'one'")},
        branch="conflict",
    )
    name = "0003-fix-conflicting-change.patch"
    stack.author.export(stack.patches, start=3, name=name)
    with (stack.patches / "series").open("a") as fh:
        fh.write(name + "\n")
    return name


def test_conflict_names_patch_file_and_hunk(stack):
    name = _add_conflicting_patch(stack)
    out = stack.tmp / "out"
    with pytest.raises(PatchApplyError) as info:
        apply_stack(out, stack.source)
    exc = info.value
    assert exc.patch.name == name and exc.index == 3
    assert len(exc.failures) == 1
    f = exc.failures[0]
    assert (f.file, f.hunk, f.hunks_total) == ("python/sglang/srt/models/model.py", 2, 2)
    assert f.header.startswith("@@ -47,7 +47,7 @@")
    msg = str(exc)
    assert name in msg and "python/sglang/srt/models/model.py: hunk #2 of 2" in msg and str(out) in msg
    assert "\n" not in msg
    # the tree stays for inspection, with the am session open, and is not marked complete
    assert (out / ".git" / "rebase-apply").is_dir() and read_marker(out) is None
    assert gitops.git(out, "rev-list", "--count", "base..HEAD").stdout.strip() == "2"


def test_check_cli_reports_conflict(stack):
    name = _add_conflicting_patch(stack)
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 1
    assert f"patch 3: {name}" in res.stderr
    assert "python/sglang/srt/models/model.py: hunk #2 of 2 (@@ -47,7 +47,7 @@" in res.stderr
    assert "tree kept at" in res.stderr and "apply cleanly" not in res.stdout


def test_new_file_conflict_is_named(stack):
    stack.author.commit("feat: add new_mod again", {"python/sglang/srt/new_mod.py": "OTHER = 1\n"}, branch="dup")
    stack.author.export(stack.patches, start=3, name="0003-feat-add-new-mod-again.patch")
    with (stack.patches / "series").open("a") as fh:
        fh.write("0003-feat-add-new-mod-again.patch\n")
    with pytest.raises(PatchApplyError) as info:
        apply_stack(stack.tmp / "out", stack.source)
    f = info.value.failures[0]
    assert f.file == "python/sglang/srt/new_mod.py" and "already exists" in f.reason


# --------------------------------------------------------------------------- check


def test_check_passes_with_final_line(stack):
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["2 patches apply cleanly to sglang 0.5.12"]
    result = check_stack(stack.source)
    assert result.ok and result.tree is None
    assert result.compiled == [
        "python/sglang/srt/models/model.py",
        "test/srt/helpers.py",
        "test/srt/test_first.py",
        "test/srt/test_first_gpu.py",
        "python/sglang/srt/crlf.py",
        "python/sglang/srt/new_mod.py",
    ]


def test_check_empty_series(stack):
    (stack.patches / "series").unlink()
    for p in stack.patches.glob("*.patch"):
        p.unlink()
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "0 patches apply cleanly to sglang 0.5.12"


def test_check_reports_byte_compile_failure(stack):
    stack.author.commit("feat: broken", {"python/sglang/srt/broken.py": "x = 1\ndef f(:\n    pass\n"})
    stack.author.export(stack.patches, start=3, name="0003-feat-broken.patch")
    with (stack.patches / "series").open("a") as fh:
        fh.write("0003-feat-broken.patch\n")
    result = check_stack(stack.source)
    assert not result.ok and result.apply_error is None
    assert len(result.problems) == 1
    assert result.problems[0].startswith("python/sglang/srt/broken.py:2: SyntaxError")
    assert result.tree is not None and (result.tree / "python/sglang/srt/broken.py").is_file()
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 1 and "python/sglang/srt/broken.py:2" in res.stderr


def test_check_reports_unlisted_patch(stack):
    shutil.copy(stack.patches / "0001-perf-gemma4-first-change.patch", stack.patches / "0007-copy.patch")
    res = cli_main("check", "--source", stack.source)
    assert res.returncode == 1
    assert "0007-copy.patch exists" in res.stderr and "not listed in series" in res.stderr


# --------------------------------------------------------------------------- tests the patches add


def test_select_tests_gpu_convention(stack):
    patches = load_series()
    cpu = select_tests(patches, None, gpu=False)
    assert cpu.run == ["test/srt/test_first.py"] and cpu.skipped_gpu == ["test/srt/test_first_gpu.py"]
    assert select_tests(patches, None, gpu=True).run == ["test/srt/test_first.py", "test/srt/test_first_gpu.py"]
    assert cpu.owners["test/srt/test_first.py"] == "0001-perf-gemma4-first-change.patch"


def test_only_selects_a_patchs_tests_after_a_later_patch_edits_them(stack):
    """--only 0001 keeps 0001's GPU test when 0003 edits it (the display owner becomes 0003; session 13's
    `--only 0024` ran none of 0024's files because 0026 and 0027 had edited them)."""
    stack.author.commit("test: edit first gpu test", {"test/srt/test_first_gpu.py": "def test_gpu():\n    assert 1\n"})
    stack.author.export(stack.patches, start=3, name="0003-test-edit-first-gpu-test.patch")
    with (stack.patches / "series").open("a") as fh:
        fh.write("0003-test-edit-first-gpu-test.patch\n")
    sel = select_tests(load_series(), None, gpu=True)
    assert sel.owners["test/srt/test_first_gpu.py"] == "0003-test-edit-first-gpu-test.patch"
    assert sel.touched_by["test/srt/test_first_gpu.py"] == [
        "0001-perf-gemma4-first-change.patch", "0003-test-edit-first-gpu-test.patch"]
    assert [t for t in sel.run if sel.matches(t, ["0001"])] == ["test/srt/test_first.py", "test/srt/test_first_gpu.py"]
    assert [t for t in sel.run if sel.matches(t, ["0003"])] == ["test/srt/test_first_gpu.py"]
    assert [t for t in sel.run if sel.matches(t, ["0002"])] == []
    assert [t for t in sel.run if sel.matches(t, ["first_gpu", "0002"])] == ["test/srt/test_first_gpu.py"]


def test_test_command_runs_patch_tests(stack, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # faster pytest startups
    out = stack.tmp / "tree"
    apply_stack(out, stack.source)
    res = cli_main("test", "--tree", str(out), "--python", sys.executable)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == "1/1 test files passed"
    assert "1 GPU-only test files not run (pass --gpu)" in res.stderr
    res = cli_main("test", "--tree", str(out), "--python", sys.executable, "--gpu")
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "2/2 test files passed"
    # --only narrows to files matching a path fragment or the owning patch's file name
    res = cli_main("test", "--tree", str(out), "--python", sys.executable, "--gpu", "--only", "first_gpu")
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "1/1 test files passed"
    res = cli_main("test", "--tree", str(out), "--python", sys.executable, "--gpu", "--only", "0002")
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "0 test files run"
    # without --tree the stack is applied to a temporary tree first; --only still narrows the files
    res = cli_main("test", "--source", stack.source, "--python", sys.executable, "--gpu", "--only", "first_gpu")
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "1/1 test files passed", res.stdout + res.stderr


def test_test_command_fails_on_failing_test_and_stale_tree(stack, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    out = stack.tmp / "tree"
    stack.author.commit("test: failing", {"test/srt/test_fails.py": "def test_no():\n    assert 1 == 2\n"})
    stack.author.export(stack.patches, start=3, name="0003-test-failing.patch")
    with (stack.patches / "series").open("a") as fh:
        fh.write("0003-test-failing.patch\n")
    apply_stack(out, stack.source)
    res = cli_main("test", "--tree", str(out), "--python", sys.executable)
    assert res.returncode == 1
    assert "1/2 test files passed; failed: test/srt/test_fails.py" in res.stderr
    (stack.patches / "series").write_text((stack.patches / "series").read_text().replace("0003-test-failing.patch\n", ""))
    (stack.patches / "0003-test-failing.patch").unlink()
    res = cli_main("test", "--tree", str(out), "--python", sys.executable)
    assert res.returncode == 2 and "was built from stack" in res.stderr


# --------------------------------------------------------------------------- the real pin


def test_repo_pin_is_valid():
    from harness.paths import patches_dir

    pin = load_pin(patches_dir() / "pin.yaml")
    assert pin.label == "sglang 0.5.12" and pin.pristine.algorithm == "sha256-manifest-v1"
    assert pin.git is not None and pin.git.url == "https://github.com/sgl-project/sglang"
    assert pin.pypi.wheels, "pin.yaml lists the known wheels"


@pytest.mark.network
def test_real_wheel_matches_pin(tmp_path, monkeypatch):
    """Downloads sglang==0.5.12 from PyPI and checks its source tree against patches/pin.yaml."""
    from harness.paths import patches_dir
    from harness.patchstack.pristine import materialize_pristine

    pin = load_pin(patches_dir() / "pin.yaml")
    monkeypatch.setenv("HARNESS_STATE", str(tmp_path / "state"))
    tree = materialize_pristine("pypi", tmp_path / "tree", pin=pin)
    assert tree.tree_sha256 == pin.pristine.tree_sha256
    assert tree.files == pin.pristine.files
    if tree.wheel is not None and tree.wheel.name in pin.pypi.wheels:
        assert hashlib.sha256(tree.wheel.read_bytes()).hexdigest() == pin.pypi.wheels[tree.wheel.name]


def test_git_source_from_a_local_repository(stack):
    """--source git fetches pin.git.url at the commit (or the tag while no commit is pinned)."""
    upstream_repo = stack.tmp / "upstream-git"
    shutil.copytree(stack.upstream, upstream_repo)
    (upstream_repo / "README.md").write_text("outside python/sglang: not part of the tree\n")
    gitops.init_repo(upstream_repo)
    gitops.git(upstream_repo, "add", "--all", ".")
    gitops.git(upstream_repo, "rm", "-r", "-q", "--cached", "python/sglang/srt/__pycache__", "python/sglang/srt/grpc")
    gitops.git(upstream_repo, "commit", "-q", "-m", "release")
    gitops.git(upstream_repo, "tag", "v0.5.12")
    commit = gitops.head(upstream_repo)

    pin_file = stack.patches / "pin.yaml"
    pin = yaml.safe_load(pin_file.read_text())
    pin["git"]["url"] = upstream_repo.as_uri()
    pin_file.write_text(yaml.safe_dump(pin))
    by_tag = apply_stack(stack.tmp / "by-tag", "git")
    assert by_tag.source == f"git:{upstream_repo.as_uri()}@{commit}"
    assert not (stack.tmp / "by-tag" / "README.md").exists()

    pin["git"]["commit"] = commit
    pin_file.write_text(yaml.safe_dump(pin))
    by_commit = apply_stack(stack.tmp / "by-commit", "git")
    assert by_commit.head_commit == by_tag.head_commit

    pin["git"]["commit"] = "f" * 40
    pin_file.write_text(yaml.safe_dump(pin))
    with pytest.raises(HarnessError, match="git fetch"):
        apply_stack(stack.tmp / "bad-commit", "git")


def test_force_never_empties_the_repository_or_a_parent_of_cwd(stack, monkeypatch):
    from harness.patchstack.apply import prepare_out_dir

    with pytest.raises(HarnessError, match="refusing --force"):
        prepare_out_dir(stack.root, force=True)
    assert (stack.patches / "pin.yaml").is_file()
    work = stack.tmp / "work" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(HarnessError, match=r"refusing --force on .*contains"):
        prepare_out_dir(stack.tmp / "work", force=True)
    assert work.is_dir()


def test_apply_without_out_builds_the_tree_sglang_patched_uses(stack, monkeypatch, tmp_path):
    """`harness patches apply` with no --out writes the default tree of the sglang-patched profile."""
    import harness.engines as engines

    target = tmp_path / "state-tree"
    monkeypatch.setattr(engines, "patched_tree_default", lambda: target)
    from typer.testing import CliRunner

    from harness.cli.app import app

    r = CliRunner().invoke(app, ["patches", "apply", "--source", str(stack.source)])
    assert r.exit_code == 0, r.output
    assert (target / "python" / "sglang").is_dir() and (target / ".harness-patchstack.json").is_file()
