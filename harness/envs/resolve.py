"""Breadth-first wheel-closure resolution for a target interpreter/platform.

Why not ``pip download sglang==0.5.12``: pip resolves the whole tree, including torch's CUDA wheels,
one of which (``nvidia-nccl-cu13``) is missing from the mirror, so it fails although the GPU host
already has torch. Here each requirement is handled on its own:

1. requirements come from the roots and from each chosen wheel's ``Requires-Dist``; markers are
   evaluated for the target (python version, linux, machine) and the extras that were requested;
2. per package the specifiers of all requirers are intersected, plus the engine's pin;
3. a package named in the engine's ``exclude`` is left out (with its reason); one the host provides
   (``host_provided``) is never carried; one the host list has at a version that satisfies the
   combined specifier is skipped; otherwise the newest matching wheel is fetched
   (``pip download --no-deps`` for the target's tags);
4. a chosen version that a later requirer rules out is fetched again; passes repeat until one makes
   no change, so requirements of replaced versions drop out;
5. when the specifiers on a package cannot be met together (pip lists the versions the index has),
   the requirers whose constraint clashes with the fixed ones (roots, exact pins) are taken back one
   version (that version is banned, the next older matching one fetched) and resolution restarts,
   e.g. flash-attn-4's newest beta wants apache-tvm-ffi>=0.1.11 where sglang pins ==0.1.9.
   A combination that stays unsatisfiable fails with the list of requirers.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.envs.hostpkgs import HostPackages
from harness.envs.pins import EnginePins
from harness.envs.target import TargetSpec, marker_applies
from harness.envs.wheels import FetchError, Fetcher, WheelInfo
from harness.errors import HarnessError

ROOT = "(root)"
MAX_PASSES = 12
MAX_BANS = 80


class ResolutionError(HarnessError):
    """The closure cannot be resolved (a conflict, or a package without a wheel for the target)."""


class _Conflict(ResolutionError):
    def __init__(self, message: str, name: str, constraints: list["Constraint"], available: Optional[list[Version]]):
        super().__init__(message)
        self.name = name
        self.constraints = constraints
        self.available = available


@dataclass
class Constraint:
    requirer: str  # "(root)" or "name version"
    requirement: Requirement
    requirer_name: Optional[str] = None  # canonical name of the requiring package; None for a root

    def describe(self) -> str:
        spec = str(self.requirement.specifier) or "(any)"
        return f"{self.requirer}: {spec}"


@dataclass
class Bundled:
    wheel: WheelInfo
    required_by: list[str]
    extras: list[str]
    host_version: Optional[str] = None  # set when the host has the package at a version that does not do
    host_violates: list[str] = field(default_factory=list)


@dataclass
class FromHost:
    name: str
    host_version: Optional[str]
    spec: str
    required_by: list[str]
    reason: str


@dataclass
class Excluded:
    name: str
    pattern: str
    reason: str
    required_by: list[str]


@dataclass
class Resolution:
    roots: list[str]
    target: TargetSpec
    bundled: dict[str, Bundled]
    from_host: dict[str, FromHost]
    excluded: dict[str, Excluded]
    unused_pins: list[str]
    passes: int
    seconds: float
    root_wheels: list[WheelInfo]
    backtracks: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(b.wheel.path.stat().st_size for b in self.bundled.values())

    def status_of(self, name: str) -> str:
        n = canonicalize_name(name)
        if n in self.bundled:
            b = self.bundled[n]
            return f"bundled {b.wheel.version}"
        if n in self.from_host:
            h = self.from_host[n]
            return f"from host {h.host_version or '(assumed)'}"
        if n in self.excluded:
            return f"excluded ({self.excluded[n].reason})"
        return "not in closure"

    def requirement_audit(self) -> list[dict]:
        """Every Requires-Dist line of the root wheels and what became of it."""
        rows = []
        for w in self.root_wheels:
            extras = self.bundled[w.name].extras if w.name in self.bundled else []
            for line in w.requires_dist:
                req = Requirement(line)
                applies = marker_applies(req.marker, self.target, extras)
                rows.append(
                    {
                        "requirer": w.label(),
                        "requirement": line,
                        "applies": applies,
                        "status": self.status_of(req.name) if applies else "not for this target / extras",
                    }
                )
        return rows


def _spec_of(constraints: Iterable[Constraint], pin: Optional[SpecifierSet]) -> SpecifierSet:
    spec = SpecifierSet()
    for c in constraints:
        spec &= c.requirement.specifier
    if pin is not None:
        spec &= pin
    return spec


def _satisfies(version: Optional[Version], spec: SpecifierSet) -> bool:
    return version is not None and spec.contains(version, prereleases=True)


class Resolver:
    def __init__(
        self,
        target: TargetSpec,
        pins: EnginePins,
        fetcher: Fetcher,
        host: Optional[HostPackages] = None,
        workers: int = 6,
        progress: Optional[Callable[[str], None]] = None,
    ):
        self.target = target
        self.pins = pins
        self.fetcher = fetcher
        self.host = host if host is not None else HostPackages.empty()
        self.host_given = host is not None and len(host) > 0
        self.workers = max(1, workers)
        self.progress = progress or (lambda _msg: None)
        self.chosen: dict[str, WheelInfo] = {}
        self.host_meta: dict[str, WheelInfo] = {}
        self.prev_spec: dict[str, SpecifierSet] = {}
        self.banned: dict[str, set[Version]] = defaultdict(set)
        self.known_versions: dict[str, list[Version]] = {}
        self.backtracks: list[str] = []
        self._hard_roots: set[str] = set()

    # ---- decisions -----------------------------------------------------------------------
    def _pin(self, name: str) -> Optional[SpecifierSet]:
        """The pin on ``name`` plus the versions backtracking has ruled out."""
        pin = self.pins.pin_for(name)
        spec = pin.specifier if pin else SpecifierSet()
        if self.banned.get(name):
            spec &= SpecifierSet(",".join(f"!={v}" for v in sorted(self.banned[name])))
        return spec

    def _is_hard(self, name: Optional[str]) -> bool:
        """A requirer whose version is fixed (a root or an exact pin): its constraints are not negotiable."""
        if name is None or name in self._hard_roots:
            return True
        pin = self.pins.pin_for(name)
        return bool(pin) and any(s.operator in ("==", "===") for s in pin.specifier)

    def _decide(self, name: str, spec: SpecifierSet) -> str:
        """'excluded' | 'host' | 'bundle' for a package under the combined specifier ``spec``."""
        if self.pins.exclusion_for(name):
            return "excluded"
        if self.pins.host_reason(name) is not None:
            return "host"
        hp = self.host.get(name)
        if hp is not None and _satisfies(hp.version, spec):
            return "host"
        return "bundle"

    def _fetch_spec(self, name: str, spec_now: SpecifierSet) -> SpecifierSet:
        prev = self.prev_spec.get(name)
        return spec_now & prev if prev is not None else spec_now

    def _fetch_many(self, todo: dict[str, tuple[SpecifierSet, SpecifierSet, list[Constraint]]]) -> None:
        """Fetch the newest wheel for each name (spec with the last pass's knowledge, then without)."""
        if not todo:
            return
        self.progress(f"fetching {len(todo)}: {', '.join(sorted(todo)[:8])}{' ...' if len(todo) > 8 else ''}")

        def one(item):
            name, (spec, spec_now, constraints) = item
            known = self.known_versions.get(name)
            if known is not None and not any(spec_now.contains(v, prereleases=True) for v in known):
                return name, None, FetchError(f"none of the versions the index has satisfies {spec_now}", known)
            try:
                return name, self.fetcher.fetch(name, spec), None
            except FetchError as exc:
                if str(spec) != str(spec_now):
                    try:
                        return name, self.fetcher.fetch(name, spec_now), None
                    except FetchError as exc2:
                        return name, None, exc2
                return name, None, exc

        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(one, sorted(todo.items())))
        errors = []
        conflict = None
        for name, info, exc in results:
            if info is None:
                spec, spec_now, constraints = todo[name]
                pin = self.pins.pin_for(name)
                who = [c.describe() for c in constraints] + ([f"pin: {pin.spec}"] if pin else [])
                errors.append(f"{name}{spec_now or ''} (required by {'; '.join(who)}): {exc}")
                available = getattr(exc, "available", None)
                if available is not None:
                    self.known_versions[name] = available
                    if conflict is None:
                        conflict = (name, list(constraints), available)
                continue
            if not _satisfies(info.version, todo[name][1]):
                errors.append(f"{name}: fetched {info.filename} does not satisfy {todo[name][1]}")
                continue
            self.chosen[name] = info
        if errors:
            msg = "cannot resolve: " + " | ".join(errors)
            if conflict is not None:
                raise _Conflict(msg, *conflict)
            raise ResolutionError(msg)

    def _fetch_host_meta(self, names: list[str]) -> None:
        todo = [n for n in names if n not in self.host_meta]
        if not todo:
            return

        def one(name):
            hp = self.host.get(name)
            try:
                return name, self.fetcher.fetch(name, SpecifierSet(f"=={hp.version}"))
            except FetchError:
                return name, None

        with ThreadPoolExecutor(self.workers) as pool:
            for name, info in pool.map(one, todo):
                if info is not None:
                    self.host_meta[name] = info

    # ---- one pass ------------------------------------------------------------------------
    def _pass(self, roots: list[Requirement]) -> tuple[int, dict, dict, dict]:
        constraints: dict[str, list[Constraint]] = defaultdict(list)
        extras: dict[str, set[str]] = defaultdict(set)
        decisions: dict[str, str] = {}
        expanded: dict[str, tuple] = {}
        fetches = 0
        frontier: list[Constraint] = [Constraint(ROOT, r) for r in roots if marker_applies(r.marker, self.target)]
        while frontier:
            names: list[str] = []
            for c in frontier:
                n = canonicalize_name(c.requirement.name)
                constraints[n].append(c)
                extras[n] |= {canonicalize_name(e) for e in c.requirement.extras}
                if n not in names:
                    names.append(n)
            todo = {}
            host_extra_meta = []
            for n in names:
                spec_now = _spec_of(constraints[n], self._pin(n))
                spec = self._fetch_spec(n, spec_now)
                decisions[n] = self._decide(n, spec)
                if decisions[n] == "bundle":
                    have = self.chosen.get(n)
                    if have is None or not _satisfies(have.version, spec):
                        todo[n] = (spec, spec_now, constraints[n])
                elif decisions[n] == "host" and extras[n] and self.host.get(n) is not None:
                    host_extra_meta.append(n)
            self._fetch_many(todo)
            fetches += len(todo)
            self._fetch_host_meta(host_extra_meta)
            frontier = []
            for n in names:
                if decisions[n] == "bundle":
                    info = self.chosen[n]
                    key = (str(info.version), frozenset(extras[n]))
                    if expanded.get(n) == key:
                        continue
                    expanded[n] = key
                    for line in info.requires_dist:
                        req = Requirement(line)
                        if marker_applies(req.marker, self.target, extras[n]):
                            frontier.append(Constraint(info.label(), req, n))
                elif decisions[n] == "host" and n in self.host_meta and extras[n]:
                    info = self.host_meta[n]
                    key = ("host", frozenset(extras[n]))
                    if expanded.get(n) == key:
                        continue
                    expanded[n] = key
                    for line in info.requires_dist:
                        req = Requirement(line)
                        # only what the extras add: the host already has the base requirements
                        if marker_applies(req.marker, self.target, extras[n]) and not marker_applies(
                            req.marker, self.target, ()
                        ):
                            frontier.append(Constraint(f"{info.label()} (host) [{','.join(sorted(extras[n]))}]", req, n))
        # validate with this pass's final specifiers only
        stable = fetches == 0
        for n, cons in constraints.items():
            final = _spec_of(cons, self._pin(n))
            final_decision = self._decide(n, final)
            if final_decision != decisions[n]:
                stable = False
            elif final_decision == "bundle" and not _satisfies(self.chosen[n].version, final):
                stable = False
            self.prev_spec[n] = final
        return (0 if stable else 1), constraints, extras, decisions

    # ---- public --------------------------------------------------------------------------
    def resolve(self, roots: list[Requirement]) -> Resolution:
        t0 = time.monotonic()
        self._hard_roots = {
            canonicalize_name(r.name) for r in roots if any(s.operator in ("==", "===") for s in r.specifier)
        }
        total_passes = 0
        while True:
            try:
                for p in range(1, MAX_PASSES + 1):
                    total_passes += 1
                    self.progress(f"pass {total_passes}")
                    unstable, constraints, extras, decisions = self._pass(roots)
                    if not unstable:
                        return self._result(roots, constraints, extras, decisions, total_passes, time.monotonic() - t0)
                raise ResolutionError(
                    f"resolution did not settle after {MAX_PASSES} passes (requirements keep changing); "
                    "pin the packages that flip between versions in scenarios/engine-pins.yaml"
                )
            except _Conflict as conflict:
                culprits, hard = self._culprits(conflict)
                if not culprits:
                    history = f"; earlier: {'; '.join(self.backtracks)}" if self.backtracks else ""
                    raise ResolutionError(f"{conflict} (unsatisfiable{history})") from None
                if sum(len(v) for v in self.banned.values()) + len(culprits) > MAX_BANS:
                    raise ResolutionError(
                        f"{conflict} (gave up after taking back {MAX_BANS} versions: {'; '.join(self.backtracks[-5:])})"
                    ) from None
                for name, spec in culprits:
                    v = self.chosen[name].version
                    self.banned[name].add(v)
                    note = (
                        f"{name} {v} requires {conflict.name}{spec}, which clashes with {conflict.name}{hard or ''} "
                        f"(roots/pins): trying an older {name}"
                    )
                    self.backtracks.append(note)
                    self.progress(f"backtrack: {note}")

    def _culprits(self, conflict: "_Conflict") -> tuple[list[tuple[str, SpecifierSet]], SpecifierSet]:
        """Requirers (not fixed by a root or an exact pin) whose constraint cannot meet the fixed ones."""
        available = conflict.available or []
        hard = self._pin(conflict.name)
        if not available:
            return [], hard

        def satisfiable(spec: SpecifierSet) -> bool:
            return any(spec.contains(v, prereleases=True) for v in available)

        soft: list[Constraint] = []
        for c in conflict.constraints:
            if self._is_hard(c.requirer_name):
                hard &= c.requirement.specifier
            elif c.requirer_name in self.chosen:
                soft.append(c)
        if not satisfiable(hard):
            return [], hard
        culprits: list[tuple[str, SpecifierSet]] = []
        for c in soft:
            if not satisfiable(hard & c.requirement.specifier) and c.requirer_name not in [n for n, _ in culprits]:
                culprits.append((c.requirer_name, c.requirement.specifier))
        if not culprits and soft:  # soft constraints clash among themselves: take back the latest
            culprits = [(soft[-1].requirer_name, soft[-1].requirement.specifier)]
        return culprits, hard

    def _result(self, roots, constraints, extras, decisions, passes, seconds) -> Resolution:
        bundled: dict[str, Bundled] = {}
        from_host: dict[str, FromHost] = {}
        excluded: dict[str, Excluded] = {}
        problems = []
        for n in sorted(constraints):
            cons = constraints[n]
            who = sorted({c.describe() for c in cons})
            spec = _spec_of(cons, self._pin(n))
            d = decisions[n]
            if d == "excluded":
                pattern, excl = self.pins.exclusion_for(n)
                excluded[n] = Excluded(n, pattern, excl.reason, who)
            elif d == "host":
                hp = self.host.get(n)
                host_reason = self.pins.host_reason(n)
                if host_reason is not None:
                    if self.host_given and hp is None:
                        problems.append(f"{n} must come from the host ({host_reason}) but the host list lacks it")
                    elif hp is not None and not _satisfies(hp.version, spec):
                        problems.append(
                            f"{n} must come from the host ({host_reason}) but the host has {hp.version}, "
                            f"outside {spec} required by {'; '.join(who)}"
                        )
                    reason = host_reason
                else:
                    reason = f"host has {hp.version}, satisfies {spec or '(any)'}"
                from_host[n] = FromHost(n, str(hp.version) if hp and hp.version else None, str(spec), who, reason)
            else:
                info = self.chosen[n]
                b = Bundled(info, who, sorted(extras[n]))
                hp = self.host.get(n)
                if hp is not None:
                    b.host_version = str(hp.version) if hp.version else hp.raw
                    pin = self.pins.pin_for(n)
                    if pin and not _satisfies(hp.version, pin.specifier):
                        b.host_violates.append(f"pin {pin.spec} ({pin.reason})")
                    for c in cons:
                        if not _satisfies(hp.version, c.requirement.specifier):
                            b.host_violates.append(f"{c.requirer} requires {c.requirement.specifier}")
                bundled[n] = b
        if problems:
            raise ResolutionError("; ".join(problems))
        unused = sorted(k for k in self.pins.pins if canonicalize_name(k) not in constraints)
        root_wheels = [self.chosen[canonicalize_name(r.name)] for r in roots if canonicalize_name(r.name) in bundled]
        return Resolution(
            roots=[str(r) for r in roots],
            target=self.target,
            bundled=bundled,
            from_host=from_host,
            excluded=excluded,
            unused_pins=unused,
            passes=passes,
            seconds=seconds,
            root_wheels=root_wheels,
            backtracks=list(self.backtracks),
        )


def audit_host_requirements(
    resolution: Resolution,
    host: HostPackages,
    fetcher: Fetcher,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[list[dict], list[str]]:
    """Do the host packages the closure relies on still get what they require from the bundled versions?

    A bundled version shadows the host's (it comes first on PYTHONPATH), e.g. numpy 2.3.5 for
    mistral_common while the host's scipy stays. Walks the host packages in the closure and their host
    dependencies (metadata only) and returns (conflicts, packages whose metadata could not be read).
    """
    todo = sorted(n for n in resolution.from_host if host.get(n) is not None and host.get(n).version is not None)
    seen: set[str] = set()
    conflicts: list[dict] = []
    unknown: list[str] = []
    while todo:
        batch = {n: host.get(n).version for n in todo if n not in seen}
        seen |= set(batch)
        if not batch:
            break
        progress(f"reading the metadata of {len(batch)} host packages")
        meta = fetcher.requires_dist_of(batch)
        nxt: list[str] = []
        for name in sorted(batch):
            reqs = meta.get(name)
            if reqs is None:
                unknown.append(f"{name}=={batch[name]}")
                continue
            for line in reqs:
                req = Requirement(line)
                if not marker_applies(req.marker, resolution.target):
                    continue
                dep = canonicalize_name(req.name)
                if dep in resolution.bundled:
                    v = resolution.bundled[dep].wheel.version
                    if not _satisfies(v, req.specifier):
                        conflicts.append(
                            {
                                "host_package": f"{name}=={batch[name]}",
                                "requires": line,
                                "bundled": f"{dep} {v}",
                            }
                        )
                elif host.get(dep) is not None and dep not in seen and dep not in resolution.excluded:
                    nxt.append(dep)
        todo = sorted(set(nxt))
    return conflicts, unknown
