"""``harness patches check``: does the whole series apply to a fresh pristine tree and compile?"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.patchstack.apply import PatchApplyError, apply_stack, touched_python_files
from harness.patchstack.pin import Pin, load_pin, pin_path
from harness.patchstack.pristine import Log, _nolog
from harness.patchstack.series import (
    default_patches_dir,
    load_series,
    naming_warnings,
    patch_problems,
    series_problems,
)


@dataclass
class CheckResult:
    label: str  # "sglang 0.5.12"
    patch_count: int
    problems: list[str] = field(default_factory=list)  # anything here fails the check
    warnings: list[str] = field(default_factory=list)
    apply_error: PatchApplyError | None = None
    compiled: list[str] = field(default_factory=list)
    tree: Path | None = None  # kept for inspection when the check fails

    @property
    def ok(self) -> bool:
        return not self.problems and self.apply_error is None

    @property
    def summary(self) -> str:
        return f"{self.patch_count} patches apply cleanly to {self.label}"


def compile_errors(tree: Path, files: list[str]) -> list[str]:
    """Byte-compile each file (as py_compile does, without writing .pyc); ``file:line: message`` per error."""
    errors = []
    for rel in files:
        path = tree / rel
        try:
            compile(path.read_bytes(), str(rel), "exec", dont_inherit=True)
        except SyntaxError as exc:
            errors.append(f"{rel}:{exc.lineno}: {type(exc).__name__}: {exc.msg}")
        except ValueError as exc:  # e.g. source code string cannot contain null bytes
            errors.append(f"{rel}: {exc}")
    return errors


def check_stack(
    source: str = "pypi",
    *,
    pin: Pin | None = None,
    patches_dir: Path | None = None,
    log: Log = _nolog,
    keep: bool = False,
) -> CheckResult:
    """Apply the series to a fresh pristine tree in a temp dir, byte-compile touched Python files.

    The temp tree is removed on success (unless ``keep``) and kept, path in ``result.tree``, on failure.
    """
    pdir = Path(patches_dir) if patches_dir is not None else default_patches_dir()
    pin = pin or load_pin(pin_path(pdir))
    patches = load_series(pdir)
    result = CheckResult(label=pin.label, patch_count=len(patches))
    result.problems += series_problems(pdir)
    for info in patches:
        result.problems += patch_problems(info)
    result.warnings += naming_warnings(patches)
    if any("not listed in series" not in p for p in result.problems):
        return result  # the series itself is broken; applying it would not mean anything

    tmp = Path(tempfile.mkdtemp(prefix="harness-patches-check-"))
    tree = tmp / "sglang"
    try:
        apply_stack(tree, source, pin=pin, patches_dir=pdir, log=log)
    except PatchApplyError as exc:
        result.apply_error = exc
        result.tree = tree
        return result
    except HarnessError as exc:
        result.problems.append(str(exc))
        if (tree / "python").exists():  # e.g. a wrong base: keep it for inspection
            result.tree = tree
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return result
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    result.compiled = touched_python_files(patches, tree)
    log(f"byte-compiling {len(result.compiled)} touched Python files with Python {sys.version.split()[0]}")
    result.problems += compile_errors(tree, result.compiled)
    if result.ok and not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        result.tree = tree
    return result
