"""``harness patches test``: run the pytest files the patches add, inside an SGLang environment.

Selection: every ``test/**/test_*.py`` (or ``*_test.py``) file the series adds or modifies and
that exists in the patched tree. A file whose name contains ``_gpu`` is GPU-only and runs only
with ``--gpu``. Each file runs in its own ``python -m pytest`` process, with the patched tree's
``python/`` first on ``PYTHONPATH`` so it shadows any installed sglang.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.patchstack.pristine import Log, _nolog
from harness.patchstack.series import PatchInfo, is_gpu_test


@dataclass
class PatchTestSelection:
    run: list[str] = field(default_factory=list)
    skipped_gpu: list[str] = field(default_factory=list)
    touched_by: dict[str, list[str]] = field(default_factory=dict)  # test file -> every patch touching it, in order

    @property
    def owners(self) -> dict[str, str]:
        """Test file -> the last patch touching it (what the summary names)."""
        return {t: patches[-1] for t, patches in self.touched_by.items()}

    def matches(self, test: str, fragments: list[str]) -> bool:
        """`test`'s path, or the file name of a patch that adds or modifies it, contains one of `fragments`
        (``--only``): a later patch that edits an earlier patch's test does not take it from that patch."""
        return any(f in test or any(f in p for p in self.touched_by.get(test, ())) for f in fragments)


def select_tests(patches: list[PatchInfo], tree: Path | None, *, gpu: bool) -> PatchTestSelection:
    sel = PatchTestSelection()
    ordered: list[str] = []
    for info in patches:
        for fc in info.files:
            if fc.status == "deleted" and fc.path in ordered:
                ordered.remove(fc.path)
        for t in info.tests:
            if t not in ordered:
                ordered.append(t)
            sel.touched_by.setdefault(t, []).append(info.name)
    for t in ordered:
        if tree is not None and not (tree / t).is_file():
            continue
        (sel.run if gpu or not is_gpu_test(t) else sel.skipped_gpu).append(t)
    return sel


@dataclass
class SGLangPython:
    python: str
    pythonpath: list[str]
    origin: str  # how it was chosen, for the summary
    base_env: dict[str, str] | None = None  # the registry record's subprocess_env(), if any


def resolve_python(python: str | None, *, log: Log = _nolog) -> SGLangPython:
    """--python EXE, else the registered ``sglang`` environment, else ``python3``."""
    if python:
        return SGLangPython(python, [], "--python")
    try:
        from harness.envs import registry  # written by another part of the harness
    except ModuleNotFoundError as exc:
        if exc.name not in ("harness.envs", "harness.envs.registry"):
            raise
        return SGLangPython("python3", [], "python3 (no harness.envs.registry module)")
    try:
        env = registry.lookup("sglang")
    except HarnessError as exc:
        log(f"no registered sglang environment ({exc}); using python3")
        return SGLangPython("python3", [], "python3 (no registered sglang environment)")
    if env is None:
        return SGLangPython("python3", [], "python3 (no registered sglang environment)")
    base_env = env.subprocess_env() if hasattr(env, "subprocess_env") else None
    pythonpath = [] if base_env is not None else [str(p) for p in (getattr(env, "pythonpath", None) or [])]
    return SGLangPython(str(env.python), pythonpath, "registry: sglang", base_env)


def pytest_environ(tree: Path, py: SGLangPython) -> dict[str, str]:
    env = dict(os.environ if py.base_env is None else py.base_env)
    parts = [str(tree / "python"), *py.pythonpath]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("PYTHONHOME", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


_PROBE = (
    "import importlib.util as u, json, sys; s = u.find_spec('sglang'); "
    "print(json.dumps({'sglang': s.origin if s else None, 'pytest': u.find_spec('pytest') is not None, "
    "'version': sys.version.split()[0]}))"
)


def probe(tree: Path, py: SGLangPython) -> dict:
    """Check that ``py`` imports sglang from the patched tree and has pytest."""
    try:
        proc = subprocess.run(
            [py.python, "-c", _PROBE], env=pytest_environ(tree, py), cwd=tree, capture_output=True, text=True, timeout=120
        )
    except FileNotFoundError:
        raise HarnessError(f"python {py.python} ({py.origin}) not found; pass --python EXE") from None
    if proc.returncode != 0:
        raise HarnessError(f"{py.python} ({py.origin}) failed to start: {proc.stderr.strip()[-500:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    want = (tree / "python" / "sglang").resolve()
    origin = info.get("sglang")
    if not origin or Path(origin).resolve().parent != want:
        raise HarnessError(
            f"{py.python} ({py.origin}) imports sglang from {origin}, not from the patched tree {want}"
        )
    if not info.get("pytest"):
        raise HarnessError(f"{py.python} ({py.origin}) has no pytest; install pytest into that environment")
    return info


@dataclass
class FileResult:
    path: str
    returncode: int
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def status(self) -> str:
        if self.returncode == 0:
            return "passed"
        if self.returncode == 5:
            return "no tests collected"
        if self.returncode in (2, 3, 4):
            return "error (interrupted / internal / usage)"
        return "failed"


def _junit_counts(xml_path: Path) -> tuple[int, int, int, int]:
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, FileNotFoundError):
        return (0, 0, 0, 0)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failures = errors = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return (tests - failures - errors - skipped, failures, errors, skipped)


def run_tests(
    tree: Path, files: list[str], py: SGLangPython, *, pytest_args: list[str] | None = None, log: Log = _nolog
) -> list[FileResult]:
    """One ``python -m pytest`` per file (output streams through); junit XML gives the counts."""
    results = []
    env = pytest_environ(tree, py)
    with tempfile.TemporaryDirectory(prefix="harness-patch-tests-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        for i, rel in enumerate(files, start=1):
            log(f"[{i}/{len(files)}] {rel}")
            xml = Path(tmp) / f"junit-{i}.xml"
            cmd = [
                py.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ini),
                "--rootdir", str(tree), f"--junitxml={xml}", *(pytest_args or []), rel,
            ]  # fmt: skip
            rc = subprocess.run(cmd, cwd=tree, env=env).returncode
            passed, failed, errors, skipped = _junit_counts(xml)
            results.append(FileResult(rel, rc, passed, failed, errors, skipped))
    return results
