"""Where each engine's environment lives: a small JSON registry under ``harness.paths.state_dir()``.

Other modules rely on exactly this API::

    from harness.envs.registry import lookup
    rec = lookup("vllm")            # EnvRecord | None
    rec.python                      # interpreter path (str)
    rec.pythonpath                  # extra PYTHONPATH entries (list[str]; empty for a venv)
    rec.kind                        # "venv" | "target"
    rec.subprocess_env()            # os.environ + PYTHONPATH (+ PATH for target installs' scripts)

``lookup("sglang-patched")`` returns the ``sglang-patched`` record if one was registered, else the
``sglang`` one: the patched profile runs on the sglang environment plus the patch overlay.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Optional

from harness import paths
from harness.atomic import atomic_write_json
from harness.errors import HarnessError

REGISTRY_FILE_NAME = "envs.json"
REGISTRY_VERSION = 1
KINDS = ("venv", "target")
#: profile -> the environment it falls back to when it has no record of its own
FALLBACKS = {"sglang-patched": "sglang"}


@dataclass(frozen=True)
class EnvRecord:
    engine: str
    python: str
    pythonpath: list[str] = field(default_factory=list)
    kind: str = "venv"
    created: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HarnessError(f"environment kind {self.kind!r} for {self.engine!r}: allowed: {', '.join(KINDS)}")

    @property
    def scripts_dirs(self) -> list[str]:
        """Where console scripts of the environment are (a venv's bin/, a target dir's bin/)."""
        if self.kind == "venv":
            return [str(Path(self.python).parent)]
        return [str(Path(p) / "bin") for p in self.pythonpath]

    def subprocess_env(self, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """Environment variables for running this environment's python (or its scripts).

        PYTHONPATH is exactly the environment's entries (the caller's own PYTHONPATH, e.g. the harness's
        site directory on an air-gapped host, does not leak into the engine), user site-packages are off,
        and the environment's script directory comes first on PATH.
        """
        env = dict(os.environ if base is None else base)
        extra = [p for p in self.pythonpath if p]
        if extra:
            env["PYTHONPATH"] = os.pathsep.join(extra)
        else:
            env.pop("PYTHONPATH", None)
        env["PYTHONNOUSERSITE"] = "1"
        scripts = [d for d in self.scripts_dirs if Path(d).is_dir()]
        if scripts:
            env["PATH"] = os.pathsep.join(scripts + [env.get("PATH", "")])
        return env

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> "EnvRecord":
        return cls(
            engine=str(data["engine"]),
            python=str(data["python"]),
            pythonpath=[str(p) for p in data.get("pythonpath") or []],
            kind=str(data.get("kind", "venv")),
            created=str(data.get("created", "")),
            source=str(data.get("source", "")),
        )


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def registry_path() -> Path:
    return paths.state_dir() / REGISTRY_FILE_NAME


def _load() -> dict[str, EnvRecord]:
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        envs = raw.get("envs", {})
        return {name: EnvRecord.from_json(rec) for name, rec in envs.items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise HarnessError(f"environment registry {path} is unreadable ({exc}); fix or delete it") from exc


def _save(records: dict[str, EnvRecord]) -> None:
    atomic_write_json(
        registry_path(),
        {"version": REGISTRY_VERSION, "envs": {name: rec.to_json() for name, rec in sorted(records.items())}},
    )


def all_records() -> dict[str, EnvRecord]:
    return _load()


def lookup(engine: str) -> EnvRecord | None:
    """The environment registered for ``engine`` (``sglang-patched`` falls back to ``sglang``)."""
    records = _load()
    if engine in records:
        return records[engine]
    fallback = FALLBACKS.get(engine)
    if fallback and fallback in records:
        return records[fallback]
    return None


@contextlib.contextmanager
def _locked():
    """Serialise read-modify-write of the registry: two `install-bundle` runs at once must not drop a record."""
    lock = registry_path().with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def register(record: EnvRecord) -> EnvRecord:
    """Add or replace the record for ``record.engine``."""
    with _locked():
        records = _load()
        if not record.created:
            record = EnvRecord(**{**record.to_json(), "created": now_iso()})
        records[record.engine] = record
        _save(records)
    return record


def unregister(engine: str) -> bool:
    with _locked():
        records = _load()
        if engine not in records:
            return False
        del records[engine]
        _save(records)
    return True
