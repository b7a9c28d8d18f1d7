"""``harness runs compare``: one engine of one run (or of several, pooled) against another, across table groups.

The report compares engines only within a group (same GPU, weights, engine versions, patch stack). This answers the
question across groups, e.g. sglang-patched of this lease's run against unpatched sglang of the last lease's, in the
manner of ``asv compare``: per (scenario, MTP mode) found on both sides, each metric's mean on either side and
Δ = (A − B) / B with Welch's 95 % interval (:func:`analysis.stats.welch_delta`); where the interval excludes 0 the
row is called better or worse by the metric's direction (:data:`analysis.load.METRICS`). Above the rows: what differs
between the two sides' manifests, with a "not comparable" warning where the model, weights, GPU or a scenario's
definition differ (the comparison is still made).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import stats
from analysis.load import (METRICS, Group, Run, cells_frame, engine_signature, load_run, machine_key, run_signature,
                           run_tp)
from analysis.tables import MTP_LABEL, fmt_delta, fmt_summary, index_cells, ok_values
from harness.errors import HarnessError
from harness.runs import RunDir

DEFAULT_METRICS = ("output_tok_s", "ttft_median_ms", "tpot_median_ms")
STATUSES = ("ok", "failed", "skipped", "missing")  # "missing": planned in the manifest, no record
MUST_MATCH = ("model", "weights", "GPU")


@dataclass
class Side:
    spec: str
    members: list[tuple[Run, str]]  # (run, engine)


def run_engines(run: Run) -> list[str]:
    return sorted(set(run.manifest.engines) | {c.engine for c, _ in run.cells})


def parse_side(spec: str, runs_dir: Path | None = None) -> Side:
    """``RUN[:ENGINE][,RUN[:ENGINE]...]``: runs whose cells of the named engine are pooled into one sample. ENGINE may
    be left out of a run with exactly one engine."""
    members = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        ref, _, engine = part.partition(":")
        run = load_run(RunDir.open(ref, runs_dir).path)
        engines = run_engines(run)
        if not engine and len(engines) != 1:
            raise HarnessError(f"run {run.run_id} has engines {', '.join(engines) or '(none)'}: name one as {ref}:ENGINE")
        engine = engine or engines[0]
        if engine not in engines:
            raise HarnessError(f"run {run.run_id} has no engine {engine!r}; its engines: {', '.join(engines) or '(none)'}")
        members.append((run, engine))
    if not members:
        raise HarnessError(f"no run in {spec!r}; expected RUN[:ENGINE][,RUN[:ENGINE]...]")
    return Side(spec, members)


def _cells(side: Side) -> dict[tuple[str, bool], list[dict[str, Any]]]:
    """(scenario, mtp) -> the side's cell rows of its engines (ok, failed, skipped and planned-but-missing)."""
    out: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for run, engine in side.members:
        frame = cells_frame([Group(index=0, key=machine_key(run.manifest), signature={}, runs=[run])])
        for (scenario, mtp, e), rows in index_cells(frame).items():
            if e == engine:
                out.setdefault((scenario, mtp), []).extend(rows)
    return out


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {s: n for s in STATUSES if (n := sum(r["status"] == s for r in rows))}


def _env(side: Side) -> dict[str, list[str]]:
    """Environment fields of a side: each field's distinct values over the side's runs (one unless pooled runs differ)."""
    values: dict[str, list[str]] = {}
    for run, engine in side.members:
        m = run.manifest
        family, version, stack, torch = (*engine_signature(m, engine), "?", "?", "?")[:4]
        sig = run_signature(run)
        fields = {"model": m.model, "weights": m.weights, "GPU": f"{m.machine.gpu_name or '?'} x{m.machine.gpu_count}",
                  "driver": m.machine.driver or "?", "CUDA": m.machine.cuda or "?", "TP": str(run_tp(m)),
                  "engine": f"{family} {version}", "patch stack": stack[:12], "torch": torch,
                  "server args": sig["options:server_args"], "harness tree": (m.harness_tree_sha256 or "?")[:12]}
        fields.update({f"scenario {k[9:]}": v for k, v in sig.items() if k.startswith("scenario:")})
        for k, v in fields.items():
            values.setdefault(k, [])
            if v not in values[k]:
                values[k].append(v)
    return values


def verdict(d: stats.Delta | None, higher: bool) -> str | None:
    """'better' / 'worse' for A when Welch's interval excludes 0, by the metric's direction; else None."""
    if d is None or not d.excludes_zero:
        return None
    return "better" if (d.diff > 0) == higher else "worse"


def compare(a: Side, b: Side, metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS) -> dict[str, Any]:
    """The comparison as plain data (Summary / Delta dataclasses inside; :func:`to_json` turns them into dicts)."""
    known = {m[0]: m for m in METRICS}
    bad = [m for m in metrics if m not in known]
    if bad:
        raise HarnessError(f"unknown metric(s) {', '.join(bad)}; known: {', '.join(known)}")
    env_a, env_b = _env(a), _env(b)
    ca, cb = _cells(a), _cells(b)
    scen = {s for s, _ in ca} & {s for s, _ in cb}
    environment = [{"field": k, "a": env_a.get(k, ["-"]), "b": env_b.get(k, ["-"]),
                    "differs": set(env_a.get(k, ["-"])) != set(env_b.get(k, ["-"]))}
                   for k in dict.fromkeys([*env_a, *env_b]) if not k.startswith("scenario ") or (k[9:] in scen and k in env_a and k in env_b)]
    warnings = [f"not comparable: {e['field']} differs (A: {', '.join(e['a'])}; B: {', '.join(e['b'])})"
                for e in environment if e["differs"] and (e["field"] in MUST_MATCH or e["field"].startswith("scenario "))]
    rows = []
    for scenario, mtp in sorted(ca.keys() & cb.keys()):
        ra, rb = ca[(scenario, mtp)], cb[(scenario, mtp)]
        row: dict[str, Any] = {"scenario": scenario, "mtp": mtp, "cells_a": _counts(ra), "cells_b": _counts(rb), "metrics": []}
        for col in metrics:
            _, label, unit, higher = known[col]
            va, vb = ok_values(ra, col), ok_values(rb, col)
            d = stats.welch_delta(va, vb)
            row["metrics"].append({"metric": col, "label": label, "unit": unit, "higher_is_better": higher,
                                   "a": stats.summarize(va), "b": stats.summarize(vb), "delta": d, "verdict": verdict(d, higher)})
        rows.append(row)
    only = {side: [{"scenario": s, "mtp": m, "cells": _counts(c[(s, m)])} for s, m in sorted(c.keys() - o.keys())]
            for side, c, o in (("a", ca, cb), ("b", cb, ca))}
    return {"a": _side_json(a), "b": _side_json(b), "environment": environment, "warnings": warnings, "rows": rows,
            "only_a": only["a"], "only_b": only["b"]}


def _side_json(side: Side) -> dict[str, Any]:
    return {"spec": side.spec, "runs": [{"run_id": r.run_id, "engine": e} for r, e in side.members]}


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, default=dataclasses.asdict)


def _cells_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"


def header_lines(result: dict[str, Any]) -> list[str]:
    """Sides, shared environment, differing environment fields and warnings, as text lines."""
    lines = [f"{s.upper()}: " + ", ".join(f"{r['run_id']}:{r['engine']}" for r in result[s]["runs"]) for s in ("a", "b")]
    same = [f"{e['field']} {', '.join(e['a'])}" for e in result["environment"] if not e["differs"] and not e["field"].startswith("scenario ")]
    lines.append("same on both sides: " + "; ".join(same))
    lines += [f"differs: {e['field']}: A {', '.join(e['a'])} | B {', '.join(e['b'])}" for e in result["environment"] if e["differs"]]
    lines += [f"WARNING {w}" for w in result["warnings"]]
    return lines


def table(result: dict[str, Any]) -> pd.DataFrame:
    """One 'cells' row and one row per metric for each (scenario, MTP) on both sides, as display strings."""
    out = []
    for row in result["rows"]:
        key = [row["scenario"], MTP_LABEL[row["mtp"]]]
        out.append([*key, "cells", _cells_text(row["cells_a"]), _cells_text(row["cells_b"]), "", ""])
        for m in row["metrics"]:
            out.append([*key, f"{m['label']} ({m['unit']}) {'↑' if m['higher_is_better'] else '↓'}",
                        fmt_summary(m["a"], m["unit"]), fmt_summary(m["b"], m["unit"]), fmt_delta(m["delta"]),
                        m["verdict"] or ""])
    return pd.DataFrame(out, columns=["Scenario", "MTP", "Metric", "A", "B", "Δ (A−B)/B [95%]", "A is"])


def footer_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"only in {s.upper()}: {o['scenario']} MTP {MTP_LABEL[o['mtp']]} ({_cells_text(o['cells'])})"
             for s in ("a", "b") for o in result[f"only_{s}"]]
    return lines + ["A, B: mean ± 95% t-interval (n); Δ with Welch's 95% interval; ✱ the interval excludes 0, and 'A is' "
                    "says better or worse by the metric's direction (↑ higher is better, ↓ lower is better)."]
