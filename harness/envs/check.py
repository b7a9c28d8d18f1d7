"""``harness env check``: what an engine environment really has, against the pins.

The probe (``probe.py``, stdlib only) runs in a subprocess with the environment's python and
PYTHONPATH; it reports installed versions, torch/CUDA/GPU and the outcome of the engine's imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.envs.pins import EnginePins
from harness.envs.registry import EnvRecord
from harness.envs.script import run_marked

PROBE = Path(__file__).with_name("probe.py")
MARK = "HARNESS_PROBE_JSON:"
#: always reported (when installed): the versions a run depends on
REPORTED = ("torch", "transformers", "tokenizers", "flashinfer-python", "xgrammar", "triton", "kernels")


@dataclass
class CheckResult:
    engine: str
    record: EnvRecord
    probe: dict
    problems: list[str] = field(default_factory=list)
    versions: dict[str, Optional[str]] = field(default_factory=dict)
    pins_view: dict[str, str] = field(default_factory=dict)  # package -> what the pins want, for display

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def gpu(self) -> str:
        t = self.probe.get("torch") or {}
        if t.get("cuda_available"):
            return f"yes: {t.get('device_name')} (x{t.get('device_count')})"
        if "error" in t:
            return "unknown (torch did not import)"
        return "no"

    def to_json(self) -> dict:
        return {
            "engine": self.engine,
            "ok": self.ok,
            "problems": self.problems,
            "python": self.record.python,
            "pythonpath": self.record.pythonpath,
            "kind": self.record.kind,
            "versions": self.versions,
            "cuda": (self.probe.get("torch") or {}).get("cuda"),
            "gpu": self.gpu,
            "imports": {
                m: {k: v for k, v in r.items() if k != "traceback"} for m, r in (self.probe.get("imports") or {}).items()
            },
        }


def run_probe(record: EnvRecord, packages: list[str], imports: list[str], timeout: float = 900, torch: bool = True) -> dict:
    cmd = [record.python, str(PROBE), "--packages", ",".join(packages), "--imports", ",".join(imports)]
    if not torch:
        cmd.append("--no-torch")
    return run_marked(cmd, env=record.subprocess_env(), mark=MARK, who=f"environment {record.engine!r}",
                      what="the probe", timeout=timeout)


def _version(raw: Optional[str]) -> Optional[Version]:
    if raw is None:
        return None
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def evaluate(pins: EnginePins, record: EnvRecord, probe: dict, require_gpu: bool = False) -> CheckResult:
    res = CheckResult(engine=record.engine, record=record, probe=probe, pins_view=pins_view(pins))
    pkgs = probe.get("packages") or {}

    def installed(name: str) -> Optional[str]:
        d = pkgs.get(name)
        return d["version"] if d else None

    names = _package_names(pins)
    for name in names:
        res.versions[name] = installed(name)
    t = probe.get("torch") or {}
    if "error" in t:
        res.problems.append(f"torch does not import: {t['error']}")

    if pins.package and pins.version:
        have = installed(pins.package)
        if have is None:
            res.problems.append(f"{pins.package} is not installed (want {pins.version})")
        elif _version(have) != Version(pins.version):
            res.problems.append(f"{pins.package} is {have}, want {pins.version}")
    for name, pin in pins.pins.items():
        have = installed(name)
        if have is None:
            res.problems.append(f"{name} is not installed (pin {pin.spec}: {pin.reason})")
        elif not pin.specifier.contains(_version(have) or have, prereleases=True):
            res.problems.append(f"{name} is {have}, pin {pin.spec} ({pin.reason})")
    for pattern, excl in pins.exclude.items():
        if excl.if_installed and "*" not in pattern:
            have = installed(pattern)
            if have is not None and not SpecifierSet(excl.if_installed).contains(_version(have) or have, prereleases=True):
                res.problems.append(f"{pattern} {have} is installed; it must be absent or {excl.if_installed} ({excl.reason})")
    for module, r in (probe.get("imports") or {}).items():
        if not r.get("ok"):
            res.problems.append(f"import {module} failed: {r.get('error')}")
    if require_gpu and not t.get("cuda_available"):
        res.problems.append("no GPU visible to torch (torch.cuda.is_available() is False)")
    return res


def pins_view(pins: EnginePins) -> dict[str, str]:
    view = {}
    if pins.package and pins.version:
        view[pins.package] = f"=={pins.version}"
    for name, pin in pins.pins.items():
        view[name] = pin.spec
    for pattern, excl in pins.exclude.items():
        view.setdefault(pattern, f"absent{' or ' + excl.if_installed if excl.if_installed else ''}")
    return view


def _package_names(pins: EnginePins) -> list[str]:
    names: list[str] = []
    if pins.package:
        names.append(pins.package)
    for n in [*REPORTED, *pins.pins, *(p for p in pins.exclude if "*" not in p)]:
        if n not in names:
            names.append(n)
    return names


def check_environment(
    pins: EnginePins, record: EnvRecord, require_gpu: bool = False, imports: bool = True, timeout: float = 900
) -> CheckResult:
    probe = run_probe(
        record,
        _package_names(pins),
        pins.import_checks if imports else [],
        timeout=timeout,
        torch=pins.pin_for("torch") is not None or pins.host_reason("torch") is not None,
    )
    return evaluate(pins, record, probe, require_gpu=require_gpu)
