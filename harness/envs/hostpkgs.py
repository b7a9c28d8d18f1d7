"""What a target host already has: a ``pip freeze`` or ``pip list --format=json`` file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError

_FREEZE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#]+)")
_URL_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*@\s*(\S+)")


@dataclass(frozen=True)
class HostPackage:
    name: str  # as written in the file
    version: Optional[Version]  # None: installed from a URL / unparseable version
    raw: str


class HostPackages:
    """Installed distributions of a host, by canonical name."""

    def __init__(self, packages: dict[str, HostPackage], source: str = ""):
        self.packages = packages
        self.source = source

    def __contains__(self, name: str) -> bool:
        return canonicalize_name(name) in self.packages

    def get(self, name: str) -> Optional[HostPackage]:
        return self.packages.get(canonicalize_name(name))

    def __len__(self) -> int:
        return len(self.packages)

    @classmethod
    def empty(cls) -> "HostPackages":
        return cls({}, source="(none)")

    @classmethod
    def from_file(cls, path: Path | str) -> "HostPackages":
        path = Path(path)
        if not path.is_file():
            raise HarnessError(f"host package list not found: {path}")
        text = path.read_text()
        try:
            if text.lstrip().startswith("["):
                return cls(_parse_pip_list_json(text, path), source=str(path))
            return cls(_parse_freeze(text, path), source=str(path))
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
            raise HarnessError(f"{path}: cannot read host package list: {exc}") from exc


def _version(raw: str) -> Optional[Version]:
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def _parse_freeze(text: str, path: Path) -> dict[str, HostPackage]:
    out: dict[str, HostPackage] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("-"):  # comments, -e / -r / --index-url lines
            continue
        m = _FREEZE_RE.match(s)
        if m:
            out[canonicalize_name(m.group(1))] = HostPackage(m.group(1), _version(m.group(2)), s)
            continue
        m = _URL_RE.match(s)
        if m:
            out[canonicalize_name(m.group(1))] = HostPackage(m.group(1), None, s)
            continue
        raise HarnessError(f"{path}:{lineno}: not a 'name==version' or 'name @ url' line: {s!r}")
    return out


def _parse_pip_list_json(text: str, path: Path) -> dict[str, HostPackage]:
    data = json.loads(text)
    if not isinstance(data, list):
        raise HarnessError(f"{path}: expected a JSON list (pip list --format=json)")
    out: dict[str, HostPackage] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "name" not in item or "version" not in item:
            raise HarnessError(f"{path}: entry {i} lacks 'name'/'version'")
        out[canonicalize_name(item["name"])] = HostPackage(item["name"], _version(str(item["version"])), json.dumps(item))
    return out
