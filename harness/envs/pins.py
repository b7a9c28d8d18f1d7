"""Known-good pins and exclusions per engine, read from ``scenarios/engine-pins.yaml``.

The engine ``harness`` is special: its root requirements are the ``[project] dependencies`` (plus the
listed optional-dependency groups) of the repository's ``pyproject.toml``.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import paths
from harness.errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PINS_FILE_NAME = "engine-pins.yaml"
ENGINES = ("sglang", "vllm", "harness")
#: profiles that run on another engine's environment (the patch overlay goes on top at run time)
ENV_ALIASES = {"sglang-patched": "sglang"}


def default_pins_path() -> Path:
    return paths.definitions_dir() / PINS_FILE_NAME


class Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: str
    reason: str

    @field_validator("spec")
    @classmethod
    def _valid_spec(cls, v: str) -> str:
        try:
            SpecifierSet(v)
        except InvalidSpecifier as exc:
            raise ValueError(f"invalid version specifier {v!r}: {exc}") from exc
        return v

    @property
    def specifier(self) -> SpecifierSet:
        return SpecifierSet(self.spec)


class Exclusion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    if_installed: Optional[str] = Field(
        default=None, description="env check fails when the package is installed at a version outside this spec"
    )

    @field_validator("if_installed")
    @classmethod
    def _valid_spec(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            try:
                SpecifierSet(v)
            except InvalidSpecifier as exc:
                raise ValueError(f"invalid version specifier {v!r}: {exc}") from exc
        return v


class EnginePins(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    package: Optional[str] = None
    version: Optional[str] = None
    extras: list[str] = Field(default_factory=list)
    from_pyproject: bool = False
    import_checks: list[str] = Field(default_factory=list)
    host_provided: dict[str, str] = Field(default_factory=dict)
    pins: dict[str, Pin] = Field(default_factory=dict)
    exclude: dict[str, Exclusion] = Field(default_factory=dict)

    # ---- queries -------------------------------------------------------------------------
    def pin_for(self, name: str) -> Optional[Pin]:
        want = canonicalize_name(name)
        for key, pin in self.pins.items():
            if canonicalize_name(key) == want:
                return pin
        return None

    def exclusion_for(self, name: str) -> Optional[tuple[str, Exclusion]]:
        """The exclusion (pattern, entry) that matches ``name``, or None."""
        want = canonicalize_name(name)
        for pattern, excl in self.exclude.items():
            if fnmatch.fnmatchcase(want, canonicalize_name(pattern)):
                return pattern, excl
        return None

    def host_reason(self, name: str) -> Optional[str]:
        want = canonicalize_name(name)
        for key, why in self.host_provided.items():
            if canonicalize_name(key) == want:
                return why
        return None

    def root_requirements(self, repo_root: Path | None = None) -> list[Requirement]:
        """What an environment for this engine is built from."""
        if self.from_pyproject:
            return pyproject_requirements(repo_root or paths.repo_root(), self.extras)
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return [Requirement(f"{self.package}{extras}=={self.version}")]

    @property
    def display_version(self) -> str:
        return self.version or "(pyproject)"


class PinsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engines: dict[str, EnginePins]


def load_pins_file(path: Path | None = None) -> PinsFile:
    path = Path(path) if path else default_pins_path()
    if not path.is_file():
        raise HarnessError(f"engine pins file not found: {path}")
    from harness.definitions import load_yaml_as

    pf = load_yaml_as(PinsFile, path, empty={})
    for name, eng in pf.engines.items():
        eng.name = name
        if not eng.from_pyproject and not (eng.package and eng.version):
            raise HarnessError(f"{path}: engine {name!r} needs 'package' and 'version' (or from_pyproject: true)")
    return pf


def load_engine_pins(engine: str, path: Path | None = None) -> EnginePins:
    pf = load_pins_file(path)
    engine = ENV_ALIASES.get(engine, engine)
    if engine not in pf.engines:
        allowed = ", ".join(sorted(pf.engines))
        raise HarnessError(f"unknown engine {engine!r} in {path or default_pins_path()}; allowed: {allowed}")
    return pf.engines[engine]


def pyproject_requirements(repo_root: Path, extras: list[str]) -> list[Requirement]:
    pyproject = Path(repo_root) / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text())
    except FileNotFoundError as exc:
        raise HarnessError(f"pyproject.toml not found at {pyproject}") from exc
    project = data.get("project", {})
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise HarnessError(
                f"{pyproject}: no optional-dependency group {extra!r}; allowed: {', '.join(sorted(optional))}"
            )
        reqs.extend(optional[extra])
    out = []
    for r in reqs:
        try:
            out.append(Requirement(r))
        except InvalidRequirement as exc:
            raise HarnessError(f"{pyproject}: invalid requirement {r!r}: {exc}") from exc
    return out
