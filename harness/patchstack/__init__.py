"""The Gemma-4 patch stack on top of the pinned upstream SGLang.

Cheap, import-light entry points (stdlib + pyyaml, no git) for run manifests::

    from harness.patchstack import stack_hash, stack_info
    stack_hash()          # sha256 of the series order + each patch file's bytes
    stack_info()          # {"stack_hash", "patch_count", "patches", "subjects", "upstream"}

The rest (pin model, pristine tree, ``git am``, check, tests) loads on first use:
``apply_stack``, ``check_stack``, ``materialize_pristine``, ``load_pin``, ``read_marker``, ...
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from harness.patchstack.series import (
    PatchInfo,
    is_gpu_test,
    is_test_file,
    load_series,
    parse_patch_file,
    read_series,
    series_problems,
    stack_hash,
    stack_info,
)

_LAZY = {
    "Pin": "harness.patchstack.pin",
    "load_pin": "harness.patchstack.pin",
    "tree_sha256": "harness.patchstack.pin",
    "materialize_pristine": "harness.patchstack.pristine",
    "PristineTree": "harness.patchstack.pristine",
    "apply_stack": "harness.patchstack.apply",
    "read_marker": "harness.patchstack.apply",
    "AppliedStack": "harness.patchstack.apply",
    "PatchApplyError": "harness.patchstack.apply",
    "MARKER": "harness.patchstack.apply",
    "check_stack": "harness.patchstack.check",
    "CheckResult": "harness.patchstack.check",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'harness.patchstack' has no attribute {name!r}")
    return getattr(import_module(mod), name)


__all__ = [
    "PatchInfo",
    "is_gpu_test",
    "is_test_file",
    "load_series",
    "parse_patch_file",
    "read_series",
    "series_problems",
    "stack_hash",
    "stack_info",
    *_LAZY,
]
