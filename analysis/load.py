"""Read run records (``runs/<run_id>/``) into typed objects and a pandas frame of cells.

A run directory holds ``manifest.json`` (:class:`harness.results.Manifest`), ``cells/<cell_id>.json``
(:class:`harness.results.CellResult`), ``kernels/<name>.json`` (:class:`harness.results.KernelBench`) and
optionally ``evals/*.json`` (MMLU / parity records, see :mod:`analysis.evals`). Every record is validated; a
malformed one is a :class:`HarnessError` naming the file and the field.

Runs are then split into **table groups**: runs whose cells may share a table. Two runs share a group only if
they have the same model, weights (real/random-init/dummy), GPU name and count, driver and CUDA, and agree on every engine
they both record (engine family, version, patch-stack hash, torch) and on every scenario definition they both
used. Runs are taken in run-id order (runs without any ok record last, so an aborted run does not claim a group
first) and each joins the first compatible group (or opens a new one), so the grouping is deterministic. Cells from different GPUs, engine versions or weights therefore never meet in one
table or column.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from harness.errors import HarnessError
from harness.results import CellResult, KernelBench, Manifest, ProfileRecord, parse_cell_id

from analysis.evals import EvalRecord, find_eval_files, parse_eval_record


@dataclass
class Run:
    run_id: str
    path: Path
    manifest: Manifest
    cells: list[tuple[CellResult, Path]] = field(default_factory=list)
    kernels: list[tuple[KernelBench, Path]] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    profiles: list[tuple[ProfileRecord, Path]] = field(default_factory=list)


def _format_validation(path: Path, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(root)"
        parts.append(f"field '{loc}': {err.get('msg')}")
    more = "" if len(exc.errors()) <= 3 else f" (+{len(exc.errors()) - 3} more)"
    return f"{path}: invalid record: " + "; ".join(parts) + more


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror})") from None


def _validate(model: type, path: Path) -> Any:
    data = _read_json(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HarnessError(_format_validation(path, exc)) from None


def load_run(run_dir: Path) -> Run:
    """Read one run directory (manifest, cells, kernel benches, eval records)."""
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not mpath.is_file():
        raise HarnessError(f"{run_dir}: not a run directory (no manifest.json)")
    manifest = _validate(Manifest, mpath)
    run = Run(run_id=manifest.run_id, path=run_dir, manifest=manifest)
    for p in sorted((run_dir / "cells").glob("*.json")):
        cell = _validate(CellResult, p)
        run.cells.append((cell, p))
    for p in sorted((run_dir / "kernels").glob("*.json")):
        run.kernels.append((_validate(KernelBench, p), p))
    for p in sorted((run_dir / "profiles").glob("*.json")):
        run.profiles.append((_validate(ProfileRecord, p), p))
    paths = find_eval_files(run_dir / "evals") if (run_dir / "evals").is_dir() else []
    for ref in _eval_refs(manifest):  # MMLUSummaryRef pointers in manifest.extra["evals"], if a run records them
        p = run_dir / ref
        p = p / "summary.json" if p.is_dir() else p
        if p.is_file() and all(p.resolve() != q.resolve() for q in paths):
            paths.append(p)
    run.evals.extend(load_eval_files(sorted(paths)))
    for rec in run.evals:
        rec.run_id = rec.run_id or run.run_id
    return run


def _eval_refs(m: Manifest) -> list[str]:
    refs = m.extra.get("evals") if isinstance(m.extra, dict) else None
    out = []
    for r in refs if isinstance(refs, list) else []:
        path = r.get("path") if isinstance(r, dict) else r
        if isinstance(path, str) and path:
            out.append(path)
    return out


def load_eval_files(paths: list[Path]) -> list[EvalRecord]:
    out = []
    for p in paths:
        rec = parse_eval_record(_read_json(p), p)
        if rec is not None:
            out.append(rec)
    return out


def standalone_eval_files(runs_dir: Path) -> list[Path]:
    """MMLU / parity records under ``runs_dir`` that are not inside a run directory (e.g. ``runs/mmlu/...``)."""
    out: list[Path] = []
    if not runs_dir.is_dir():
        return out
    for entry in sorted(runs_dir.iterdir()):
        if entry.is_dir() and not (entry / "manifest.json").is_file():
            out.extend(find_eval_files(entry))
        elif entry.is_file() and entry.suffix == ".json" and entry.name.lower().startswith(("mmlu", "parity")):
            out.append(entry)
    return out


def resolve_inputs(runs: list[str] | None, runs_dir: Path) -> tuple[list[Path], list[Path]]:
    """(run directories, stand-alone eval record files) to report on.

    Each RUN is a run id under ``runs_dir``, a path to a run directory, or a path to an MMLU / parity record
    (a ``summary.json``, its directory, or a single JSON file) made outside a run. With no RUN: every run under
    ``runs_dir`` and every eval record there that is not inside a run.
    """
    if runs:
        run_dirs: list[Path] = []
        evals: list[Path] = []
        for r in runs:
            p = Path(r)
            if (p / "manifest.json").is_file():
                run_dirs.append(p)
            elif (runs_dir / r / "manifest.json").is_file():
                run_dirs.append(runs_dir / r)
            elif p.is_file() and p.suffix == ".json":
                evals.append(p)
            elif p.is_dir() and find_eval_files(p):
                evals.extend(find_eval_files(p))
            else:
                raise HarnessError(
                    f"run {r!r}: no manifest.json at {p} or {runs_dir / r}, and not an MMLU/parity record"
                )
        return sorted(set(run_dirs), key=lambda x: (x.name, str(x))), sorted(set(evals))
    if not runs_dir.is_dir():
        raise HarnessError(f"runs directory {runs_dir} does not exist")
    found = sorted(p.parent for p in runs_dir.glob("*/manifest.json"))
    evals = standalone_eval_files(runs_dir)
    if not found and not evals:
        raise HarnessError(f"no runs under {runs_dir} (no */manifest.json and no MMLU/parity records)")
    return found, evals


def load_runs(run_dirs: list[Path]) -> list[Run]:
    runs = [load_run(d) for d in run_dirs]
    seen: dict[str, Path] = {}
    for r in runs:
        if r.run_id in seen:
            raise HarnessError(f"run id {r.run_id!r} appears twice: {seen[r.run_id]} and {r.path}")
        seen[r.run_id] = r.path
    return sorted(runs, key=lambda r: r.run_id)


# --------------------------------------------------------------------------------------------- grouping


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def machine_key(m: Manifest) -> tuple:
    """What must be equal for two runs to share a table, apart from the engine and scenario signatures."""
    return (m.model, m.weights, m.machine.gpu_name or "?", m.machine.gpu_count, m.machine.driver or "?", m.machine.cuda or "?",
            run_tp(m))


def run_tp(m: Manifest) -> int:
    """The tensor-parallel size the run's servers used (runs from before it was recorded: 1)."""
    opts = (m.extra or {}).get("options") or {}
    try:
        return int(opts.get("tp") or 1)
    except (TypeError, ValueError):
        return 1


def engine_signature(m: Manifest, engine: str) -> tuple:
    info = m.engines.get(engine)
    if info is None:
        return ("unrecorded",)
    return (info.family, info.version or "?", info.patch_stack or "-", info.packages.get("torch") or m.machine.torch or "?")


def run_signature(run: Run) -> dict[str, Any]:
    """Engine and scenario signatures of a run: a group may not hold two different values for one key."""
    m = run.manifest
    # an engine constrains the grouping when it produced a measurement or its identity was recorded; one whose every
    # cell failed and whose version is unknown (its environment was missing on the host, say) has nothing to keep
    # apart from others, and its failed cells show in whichever group the run joins
    measured = {c.engine for c, _ in run.cells if c.status == "ok"}
    engines = {e for e in set(m.engines) | {c.engine for c, _ in run.cells}
               if e in measured or (m.engines.get(e) is not None and m.engines[e].version)}
    sig: dict[str, Any] = {f"engine:{e}": engine_signature(m, e) for e in engines}
    for name, definition in m.scenarios.items():
        sig[f"scenario:{name}"] = _digest(definition)
    # runs with extra server arguments never share a table with runs without them
    sig["options:server_args"] = " ".join((m.extra.get("options") or {}).get("server_args") or []) or "none"
    return sig


@dataclass
class Group:
    index: int  # 1-based, in report order
    key: tuple  # machine_key
    signature: dict[str, Any]
    runs: list[Run]
    variant: str = ""  # what tells this group apart from others with the same model, GPU and weights

    @property
    def model(self) -> str:
        return self.key[0]

    @property
    def weights(self) -> str:
        return self.key[1]

    @property
    def gpu_name(self) -> str:
        return self.key[2]

    @property
    def gpu_count(self) -> int:
        return self.key[3]

    @property
    def tp(self) -> int:
        return self.key[6]

    def engine_names(self) -> list[str]:
        return sorted(k.split(":", 1)[1] for k in self.signature if k.startswith("engine:"))


def _has_results(run: Run) -> bool:
    return any(c.status == "ok" for c, _ in run.cells) or any(k.status == "ok" for k, _ in run.kernels) or bool(run.evals)


def _order_key(run: Run) -> tuple:
    """Real weights before random-init before dummy; runs that produced no result at all (every cell failed) after those that did,
    so an aborted run does not claim a table group before the runs with numbers."""
    k = machine_key(run.manifest)
    return (k[0], {"real": 0, "random-init": 1}.get(k[1], 2), k[2:], not _has_results(run), run.run_id)


def _engine_stacks(sig: dict[str, Any]) -> dict[str, str]:
    """Engine name -> patch-stack hash, for a signature's engines that carry a stack."""
    return {k[7:]: v[2] for k, v in sorted(sig.items()) if k.startswith("engine:") and len(v) > 2 and v[2] != "-"}


def patched_stack(g: Group) -> str | None:
    """The patch-stack hash sglang-patched ran with in this group (None without a sglang-patched engine)."""
    return _engine_stacks(g.signature).get("sglang-patched")


def _stacks(sig: dict[str, Any]) -> set[str]:
    return set(_engine_stacks(sig).values())


def _variants(groups: list[Group]) -> None:
    """Name what differs between groups that share model, weights and GPU (driver, CUDA, engine versions, ...)."""
    by_base: dict[tuple, list[Group]] = {}
    for g in groups:
        by_base.setdefault(g.key[:4] + g.key[6:], []).append(g)
    for same in by_base.values():
        if len(same) < 2:
            continue
        keys = sorted({k for g in same for k in g.signature})
        for g in same:
            parts = []
            if len({o.key[4] for o in same}) > 1:
                parts.append(f"driver {g.key[4]}")
            if len({o.key[5] for o in same}) > 1:
                parts.append(f"CUDA {g.key[5]}")
            for k in keys:
                if k not in g.signature:
                    continue
                having = [o.signature[k] for o in same if k in o.signature]
                if len({repr(v) for v in having}) < 2:
                    continue
                v = g.signature[k]
                if k.startswith("engine:"):
                    if v == ("unrecorded",):
                        parts.append(f"{k[7:]} unrecorded")
                        continue
                    comps = [h for h in having if h != ("unrecorded",)]
                    bits = []
                    for i, label in ((1, ""), (2, "stack "), (3, "torch ")):
                        if len({h[i] for h in comps}) > 1 or len(comps) < len(having):
                            bits.append(f"{label}{v[i][:12]}")
                    parts.append(f"{k[7:]} " + " ".join(bits or [v[1]]))
                elif k == "options:server_args":
                    parts.append(f"server args {v}")
                else:
                    parts.append(f"{k[9:]} definition {v[:6]}")
            if not any("stack " in p for p in parts) and len({frozenset(_stacks(o.signature)) for o in same}) > 1:
                # its stack sets it apart, under engine names no other group has (a control A/B, say)
                parts += [f"{e} stack {h[:12]}" for e, h in _engine_stacks(g.signature).items()]
            g.variant = ", ".join(dict.fromkeys(parts)) or f"set {g.index}"


def _created(run: Run) -> float:
    try:
        return datetime.fromisoformat(run.manifest.created_at.replace("Z", "+00:00")).timestamp()
    except (AttributeError, TypeError, ValueError):
        return 0.0


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs that can share a table (same machine key, one patch stack, no key of their signatures with two values).
    Runs that measured more engines, then runs with a patch stack, are placed first, so that they define the groups;
    each run then joins, among the groups it fits, the one with the run nearest in time (a baseline-only run taken in
    the same GPU lease as a patch stack's runs joins that stack's group rather than an older one it also fits);
    groups are listed in `_order_key` order."""
    def n_engines(sig: dict[str, Any]) -> int:
        return sum(1 for k in sig if k.startswith("engine:"))

    def same_stack(g: Group, sig: dict[str, Any]) -> bool:
        """A group holds one patch stack: a control profile (another engine name) of a different stack is another
        environment, even where no engine name collides."""
        mine, theirs = _stacks(sig), _stacks(g.signature)
        return not mine or not theirs or mine == theirs

    sigs = {id(r): run_signature(r) for r in runs}
    groups: list[Group] = []
    # runs with a patch stack define groups before the stack-less ones (vLLM, unpatched SGLang) that fit any of them:
    # a baseline started seconds before its lease's patched run must find that run's group already there
    for run in sorted(runs, key=lambda r: (-n_engines(sigs[id(r)]), not _stacks(sigs[id(r)]), _order_key(r))):
        key = machine_key(run.manifest)
        sig = sigs[id(run)]
        fits = [g for g in groups if g.key == key and same_stack(g, sig)
                and all(g.signature.get(k, v) == v for k, v in sig.items())]
        if fits:
            t = _created(run)
            g = min(fits, key=lambda g: (min(abs(_created(r) - t) for r in g.runs), groups.index(g)))
            g.runs.append(run)
            g.signature.update(sig)
        else:
            groups.append(Group(index=0, key=key, signature=dict(sig), runs=[run]))
    for g in groups:
        g.runs.sort(key=_order_key)
    groups.sort(key=lambda g: _order_key(g.runs[0]))
    for i, g in enumerate(groups, start=1):
        g.index = i
    _variants(groups)
    return groups


# --------------------------------------------------------------------------------------------- cells frame

METRICS: tuple[tuple[str, str, str, bool], ...] = (
    # (column, label, unit, higher_is_better)
    ("output_tok_s", "output tok/s", "tok/s", True),
    ("total_tok_s", "total tok/s", "tok/s", True),
    ("ttft_median_ms", "median TTFT", "ms", False),
    ("tpot_median_ms", "median TPOT", "ms", False),
    ("itl_median_ms", "median ITL", "ms", False),
    ("e2el_p99_ms", "p99 E2E latency", "ms", False),
    ("accept_length", "accept length", "tokens/step", True),
)

CELL_COLUMNS = [
    "group", "run_id", "cell_id", "engine", "scenario", "mtp", "repeat", "status", "record",
    "failure_stage", "failure_message", "failure_cause", "skipped_reason", "completed", "failed_requests",
    "window_warnings", *[m[0] for m in METRICS],
]

_ERROR_LINE = re.compile(r"(Error\b|error:|Exception\b|must be|Killed|Traceback|CUDA out of memory)")


def failure_cause(log_tail: str | None) -> str | None:
    """The last line of a failure's log tail that reads like the error itself (e.g. ``ValueError: ...``)."""
    for line in reversed((log_tail or "").splitlines()):
        if _ERROR_LINE.search(line) and not line.lstrip().startswith(("File ", "#")):
            return line.strip()
    return None


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def cell_row(cell: CellResult, path: Path, group: int) -> dict[str, Any]:
    m = cell.metrics
    row: dict[str, Any] = {
        "group": group,
        "run_id": cell.run_id,
        "cell_id": cell.cell_id,
        "engine": cell.engine,
        "scenario": cell.scenario,
        "mtp": bool(cell.mtp),
        "repeat": int(cell.repeat),
        "status": cell.status,
        "record": str(path),
        "failure_stage": cell.failure.stage if cell.failure else None,
        "failure_message": cell.failure.message if cell.failure else None,
        "failure_cause": failure_cause(cell.failure.log_tail) if cell.failure else None,
        "skipped_reason": cell.skipped_reason,
        "completed": m.completed if m else None,
        "failed_requests": m.failed if m else None,
        # server log lines flagged inside the measured window (e.g. vLLM's lazy Triton JIT compilations)
        "window_warnings": " | ".join(cell.server.warnings_in_window),
        "output_tok_s": _num(m.output_throughput) if m else math.nan,
        "total_tok_s": _num(m.total_token_throughput) if m else math.nan,
        "ttft_median_ms": _num(m.ttft_ms.median) if m else math.nan,
        "tpot_median_ms": _num(m.tpot_ms.median) if m else math.nan,
        "itl_median_ms": _num(m.itl_ms.median) if m else math.nan,
        "e2el_p99_ms": _num(m.e2el_ms.p99) if m else math.nan,
        "accept_length": _num(cell.spec_decode.accept_length) if cell.spec_decode else math.nan,
    }
    if cell.status != "ok":  # a failed or skipped cell contributes no numbers
        for col, *_ in METRICS:
            row[col] = math.nan
    return row


def cells_frame(groups: list[Group]) -> pd.DataFrame:
    """One row per cell record, plus a ``missing`` row for each cell a manifest planned but has no record."""
    rows: list[dict[str, Any]] = []
    for g in groups:
        for run in g.runs:
            have = set()
            for cell, path in run.cells:
                rows.append(cell_row(cell, path, g.index))
                have.add(cell.cell_id)
            for cid in run.manifest.cells:
                if cid in have:
                    continue
                parsed = parse_cell_id(cid)
                if parsed is None:
                    continue
                engine, scenario, mtp, repeat = parsed
                row = {c: None for c in CELL_COLUMNS}
                row.update(
                    group=g.index, run_id=run.run_id, cell_id=cid, engine=engine, scenario=scenario, mtp=mtp,
                    repeat=repeat, status="missing", record=str(run.path / "manifest.json"),
                )
                for col, *_ in METRICS:
                    row[col] = math.nan
                rows.append(row)
    df = pd.DataFrame(rows, columns=CELL_COLUMNS)
    if not df.empty:
        df = df.sort_values(["group", "scenario", "mtp", "engine", "repeat", "run_id", "cell_id"], kind="mergesort")
        df = df.reset_index(drop=True)
    return df


def per_request_samples(groups: list[Group]) -> dict[tuple[int, str, bool, str], dict[str, list[float]]]:
    """Pooled per-request TTFT / E2E samples of ok cells: (group, scenario, mtp, engine) -> {metric: values}."""
    out: dict[tuple[int, str, bool, str], dict[str, list[float]]] = {}
    for g in groups:
        for run in g.runs:
            for cell, _ in run.cells:
                m = cell.metrics
                if cell.status != "ok" or m is None:
                    continue
                for name, values in (("ttfts_ms", m.ttfts_ms), ("e2els_ms", m.e2els_ms)):
                    if values:
                        key = (g.index, cell.scenario, bool(cell.mtp), cell.engine)
                        out.setdefault(key, {}).setdefault(name, []).extend(float(v) for v in values)
    return out
