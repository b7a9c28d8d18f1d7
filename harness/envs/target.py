"""The interpreter and platform a bundle is built for: marker environment and pip tag arguments."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Iterable, Optional

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.errors import HarnessError

_MANYLINUX_RE = re.compile(r"^manylinux_(\d+)_(\d+)_(x86_64|aarch64)$")
_LEGACY = {
    "manylinux2014": (2, 17),
    "manylinux2010": (2, 12),
    "manylinux1": (2, 5),
}
_MACHINES = ("x86_64", "aarch64")


def _parse_platform(platform: str) -> tuple[int, int, str]:
    m = _MANYLINUX_RE.match(platform)
    if m:
        return int(m.group(1)), int(m.group(2)), m.group(3)
    for legacy, (major, minor) in _LEGACY.items():
        for machine in _MACHINES:
            if platform == f"{legacy}_{machine}":
                return major, minor, machine
    raise HarnessError(
        f"platform {platform!r} not supported: use manylinux_<glibc major>_<minor>_<x86_64|aarch64> "
        "(e.g. manylinux_2_28_x86_64) or manylinux2014_x86_64"
    )


def platform_tags(platform: str) -> list[str]:
    """Every manylinux tag a host of ``platform`` accepts, newest first, plus the legacy aliases.

    pip matches ``--platform`` tags exactly, so ``manylinux_2_39_x86_64`` has to be passed down as
    ``manylinux_2_39 ... manylinux_2_17 (= manylinux2014) ... manylinux_2_5 (= manylinux1)``.
    """
    major, minor, machine = _parse_platform(platform)
    if major != 2 or minor < 5:
        raise HarnessError(f"platform {platform!r}: glibc {major}.{minor} is not a manylinux target")
    tags: list[str] = []
    for m in range(minor, 4, -1):
        tags.append(f"manylinux_2_{m}_{machine}")
        for legacy, (lmaj, lmin) in _LEGACY.items():
            if (lmaj, lmin) == (2, m) and (machine == "x86_64" or legacy == "manylinux2014"):
                tags.append(f"{legacy}_{machine}")
    return tags


@dataclass(frozen=True)
class TargetSpec:
    python_version: str = "3.12"  # "3.12" or "3.12.3"
    platform: str = "manylinux_2_28_x86_64"
    implementation: str = "cp"

    def __post_init__(self) -> None:
        if not re.match(r"^3\.\d+(\.\d+)?$", self.python_version):
            raise HarnessError(f"python version {self.python_version!r}: expected e.g. 3.12 or 3.12.3")
        _parse_platform(self.platform)
        if self.implementation != "cp":
            raise HarnessError(f"implementation {self.implementation!r}: only CPython ('cp') is supported")

    @property
    def short_version(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    @property
    def full_version(self) -> str:
        parts = self.python_version.split(".")
        return self.python_version if len(parts) == 3 else f"{self.python_version}.0"

    @property
    def abi(self) -> str:
        return "cp" + self.short_version.replace(".", "")

    @property
    def machine(self) -> str:
        return _parse_platform(self.platform)[2]

    @property
    def tags(self) -> list[str]:
        return platform_tags(self.platform) + ["any"]

    def pip_args(self) -> list[str]:
        args = [
            "--only-binary=:all:",
            "--python-version",
            self.short_version,
            "--implementation",
            self.implementation,
            "--abi",
            self.abi,
        ]
        for tag in self.tags:
            args += ["--platform", tag]
        return args

    def marker_environment(self, extra: str = "") -> dict[str, str]:
        return {
            "implementation_name": "cpython",
            "implementation_version": self.full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.full_version,
            "platform_python_implementation": "CPython",
            "python_version": self.short_version,
            "sys_platform": "linux",
            "extra": extra,
        }

    def to_json(self) -> dict:
        return {
            "python_version": self.python_version,
            "platform": self.platform,
            "implementation": self.implementation,
            "abi": self.abi,
            "platform_tags": self.tags,
        }

    @classmethod
    def current(cls) -> "TargetSpec":
        """This interpreter (for ``env create``'s local resolution)."""
        import platform as _platform

        libc, ver = _platform.libc_ver()
        if libc != "glibc" or not ver:
            raise HarnessError("cannot tell this machine's glibc version; pass --platform explicitly")
        major, minor = (int(x) for x in ver.split(".")[:2])
        return cls(
            python_version=".".join(str(x) for x in sys.version_info[:3]),
            platform=f"manylinux_{major}_{minor}_{_platform.machine()}",
        )


def marker_applies(marker: Optional[Marker], target: TargetSpec, extras: Iterable[str] = ()) -> bool:
    """Whether a requirement with ``marker`` applies on ``target`` when ``extras`` were requested."""
    if marker is None:
        return True
    for extra in ["", *sorted({canonicalize_name(e) for e in extras})]:
        if marker.evaluate(target.marker_environment(extra)):
            return True
    return False


def applicable_requirements(
    requires_dist: Iterable[str], target: TargetSpec, extras: Iterable[str] = ()
) -> list[Requirement]:
    out = []
    for line in requires_dist:
        req = Requirement(line)
        if marker_applies(req.marker, target, extras):
            out.append(req)
    return out
