"""Where the harness finds its data (definitions, patches) and writes runs.

The repository layout is the source of truth: ``scenarios/``, ``patches/`` and ``runs/``
sit next to the ``harness`` package. ``HARNESS_ROOT`` points elsewhere (e.g. a copy of the
repository on a GPU host); ``HARNESS_STATE`` holds per-user state such as the registry of
engine environments.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("HARNESS_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def harness_module_env(pythonpath: list[str]) -> dict[str, str]:
    """The environment for ``python -m harness.<module>`` run with an engine environment's interpreter: this
    harness package first on PYTHONPATH, then the environment's entries, then the caller's own."""
    env = dict(os.environ)
    own = [str(Path(__file__).resolve().parent.parent), *pythonpath]
    env["PYTHONPATH"] = os.pathsep.join(own + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def definitions_dir() -> Path:
    return repo_root() / "scenarios"


def patches_dir() -> Path:
    return repo_root() / "patches"


def runs_dir() -> Path:
    env = os.environ.get("HARNESS_RUNS")
    return Path(env).resolve() if env else repo_root() / "runs"


def state_dir() -> Path:
    env = os.environ.get("HARNESS_STATE")
    if env:
        return Path(env).resolve()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gemma4-harness"
