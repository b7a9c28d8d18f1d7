"""The report's tables as pandas DataFrames of display strings, and a pipe-table markdown writer.

Every function here is pure: it takes records (or the cells frame) and a ``link`` callable that turns a record
path into a relative link, and returns a DataFrame whose cells are already formatted text. Rows are sorted so
the same records always give the same table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import stats
from analysis import evals as eval_records
from analysis.evals import EvalRecord
from analysis.load import METRICS, Group
from analysis.roofline import ActiveParams, Bandwidth, bound_ms_per_token
from harness.evals.parity import batching_text, divergence_margins_text

Link = Callable[[Any], str]

PATCHED = "sglang-patched"
REFERENCES = ("vllm", "sglang")
ENGINE_ORDER = ("sglang", "sglang-patched", "vllm")
SIG_MARK = "✱"
MTP_LABEL = {False: "off", True: "on"}


def engine_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    known = [e for e in ENGINE_ORDER if e in names]
    return known + sorted(names - set(known))


# --------------------------------------------------------------------------------------------- formatting


def _decimals(unit: str) -> int:
    return {"tok/s": 1, "ms": 2, "tokens/step": 2}.get(unit, 3)


def fmt_fixed(x: float | None, decimals: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    s = f"{x:.{decimals}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def fmt_value(x: Any) -> str:
    """Generic formatting for kernel-bench and other free-form cells."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        if x == 0:
            return "0"
        a = abs(x)
        if a >= 100:
            return f"{x:.1f}"
        if a >= 1:
            return f"{x:.3f}"
        return f"{x:.4g}"
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt_value(v) for v in x)
    if isinstance(x, dict):
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(x.items()))
    return str(x)


def fmt_pct(x: float | None, decimals: int = 1) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    s = f"{100 * x:+.{decimals}f}%"
    return s.replace("-0.0%", "+0.0%") if float(s[:-1]) == 0 else s


def fmt_summary(s: stats.Summary | None, unit: str, with_n: bool = True) -> str:
    """``mean ± half-width (n=…)`` (the 95% t-interval of the mean), or the single value with one repeat;
    ``with_n=False`` leaves out the ``(n=…)`` for a table that has its own n column."""
    if s is None:
        return "n/a"
    d = _decimals(unit)
    if s.n < 2:
        return fmt_fixed(s.mean, d)
    return f"{fmt_fixed(s.mean, d)} ± {fmt_fixed(s.half_width, d)}" + (f" (n={s.n})" if with_n else "")


def fmt_delta(d: stats.Delta | None) -> str:
    if d is None:
        return "—"
    if d.rel is None:
        return "n/a (reference mean is 0)"
    if d.rel_lo is None:
        why = "n=1" if min(d.n_a, d.n_b) < 2 else "no variance"
        return f"{fmt_pct(d.rel)} ({why}, no interval)"
    mark = f" {SIG_MARK}" if d.excludes_zero else ""
    return f"{fmt_pct(d.rel)} [{fmt_pct(d.rel_lo)}, {fmt_pct(d.rel_hi)}]{mark}"


def md_escape(text: Any) -> str:
    return str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def md_table(df: pd.DataFrame) -> str:
    """A GitHub pipe table of a frame of display strings (index ignored)."""
    cols = [md_escape(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(md_escape(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def md_link(text: str, target: str) -> str:
    return f"[{text}]({target})"


def one_line(text: str | None, limit: int = 140) -> str:
    if not text:
        return ""
    t = " ".join(str(text).split())
    return t if len(t) <= limit else t[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------- headline


def _status_text(rows: list[dict[str, Any]], link: Link) -> str:
    """What the cells of one (scenario, MTP, engine) are: '3 ok', '**failed** [r1](...)', 'missing', ..."""
    if not rows:
        return "missing"
    parts = []
    n_ok = sum(1 for r in rows if r["status"] == "ok")
    if n_ok:
        parts.append(f"{n_ok} ok")
    for status, label in (("failed", "**failed**"), ("skipped", "skipped"), ("missing", "missing")):
        these = [r for r in rows if r["status"] == status]
        if these:
            parts.append(label + " " + " ".join(md_link(f"r{r['repeat']}", link(r["record"])) for r in these))
    return ", ".join(parts)


def _no_value_text(rows: list[dict[str, Any]]) -> str:
    if not rows or all(r["status"] == "missing" for r in rows):
        return "missing"
    if any(r["status"] == "failed" for r in rows):
        return "failed"
    return "skipped"


def index_cells(cells: pd.DataFrame) -> dict[tuple[str, bool, str], list[dict[str, Any]]]:
    """(scenario, mtp, engine) -> cell rows (dicts), in the frame's (sorted) order."""
    out: dict[tuple[str, bool, str], list[dict[str, Any]]] = {}
    for r in cells.to_dict("records"):
        out.setdefault((r["scenario"], bool(r["mtp"]), r["engine"]), []).append(r)
    return out


def ok_values(rows: list[dict[str, Any]], col: str) -> list[float]:
    return [r[col] for r in rows if r["status"] == "ok" and r[col] is not None and not math.isnan(r[col])]


def headline_table(cells: pd.DataFrame, engines: list[str], link: Link) -> pd.DataFrame:
    """Scenario x MTP x metric rows, one column per engine, and the sglang-patched deltas: against the reference
    engines, then against every other profile in the group (a same-stack control such as
    sglang-patched-no-moe-default: the patch's own A/B)."""
    refs = ([r for r in REFERENCES if r in engines] + sorted(set(engines) - set(REFERENCES) - {PATCHED})
            if PATCHED in engines else [])
    delta_cols = {r: f"Δ {PATCHED} vs {r}" for r in refs}
    cols = ["Scenario", "MTP", "Metric", *engines, *delta_cols.values()]
    rows: list[list[str]] = []
    idx = index_cells(cells)
    blocks = sorted({(s, m) for s, m, _ in idx})
    for scenario, mtp in blocks:
        subs = {e: idx.get((scenario, mtp, e), []) for e in engines}
        has_ok = {e: any(r["status"] == "ok" for r in subs[e]) for e in engines}
        rows.append([scenario, MTP_LABEL[mtp], "cells", *(_status_text(subs[e], link) for e in engines),
                     *("" for _ in refs)])
        for col, label, unit, higher in METRICS:
            if col == "accept_length" and not mtp:
                continue
            values = {e: ok_values(subs[e], col) for e in engines}
            texts = [fmt_summary(stats.summarize(values[e]), unit) if has_ok[e] else _no_value_text(subs[e])
                     for e in engines]
            deltas = [fmt_delta(stats.welch_delta(values[PATCHED], values[r])) for r in refs]
            arrow = "↑" if higher else "↓"
            rows.append([scenario, MTP_LABEL[mtp], f"{label} ({unit}) {arrow}", *texts, *deltas])
    return pd.DataFrame(rows, columns=cols)


POOLED_METRICS = tuple(m for m in METRICS if m[0] in ("output_tok_s", "tpot_median_ms"))


def pooled_runs_table(cells: pd.DataFrame, engines: list[str], run_link: Callable[[str], str]) -> pd.DataFrame:
    """The (engine, scenario, MTP) combinations whose ok cells come from more than one run, which the headline
    pools into one sample: one row per run with its own n, output tok/s and median TPOT (formatted as in the
    headline, without its ``(n=…)`` where the n column says it). ``run_link`` turns a run id into the text of the
    Run column. Empty when nothing is pooled."""
    rows = []
    idx = index_cells(cells)
    order = engine_order(engines)
    keys = sorted(idx, key=lambda k: (order.index(k[2]) if k[2] in order else len(order), k[2], k[0], k[1]))
    for scenario, mtp, engine in keys:
        by_run: dict[str, list[dict[str, Any]]] = {}
        for r in idx[(scenario, mtp, engine)]:
            if r["status"] == "ok":
                by_run.setdefault(r["run_id"], []).append(r)
        if len(by_run) < 2:
            continue
        for run_id in sorted(by_run):
            n = len(by_run[run_id])
            texts = []
            for col, _label, unit, _higher in POOLED_METRICS:
                s = stats.summarize(ok_values(by_run[run_id], col))
                texts.append(fmt_summary(s, unit, with_n=s is not None and s.n != n))
            rows.append([engine, scenario, MTP_LABEL[mtp], run_link(run_id), str(n), *texts])
    return pd.DataFrame(rows, columns=["Engine", "Scenario", "MTP", "Run", "n",
                                       *(f"{label} ({unit}) {'↑' if higher else '↓'}"
                                         for _col, label, unit, higher in POOLED_METRICS)])


STANDING_METRICS = (("output_tok_s", "output tok/s", True), ("ttft_median_ms", "median TTFT", False),
                    ("tpot_median_ms", "median TPOT", False))
N1_MARGIN = 0.05  # with one repeat on a side (no interval), a delta this large or larger is called


def standing(d: stats.Delta | None, higher: bool) -> str | None:
    """'behind' / 'ahead' / 'level' for sglang-patched from a delta against a reference (None: no delta). With an
    interval: behind or ahead when Welch's interval excludes zero, else level. With one repeat on a side: behind or
    ahead when the delta is at least N1_MARGIN in that direction, else level."""
    if d is None or d.rel is None:
        return None
    called = d.excludes_zero if d.rel_lo is not None else abs(d.rel) >= N1_MARGIN
    if not called:
        return "level"
    return "ahead" if (d.rel > 0) == higher else "behind"


def standing_table(groups: list[Group], cells: pd.DataFrame, title: Callable[[Group], str],
                   anchor: Callable[[Group], str]) -> pd.DataFrame:
    """Where sglang-patched stands against each reference engine, per group, scenario and MTP mode where both have
    ok cells: output tok/s, median TTFT and median TPOT deltas and what each says (:func:`standing`)."""
    rows = []
    for g in groups:
        gcells = cells[cells["group"] == g.index] if not cells.empty else cells
        if gcells.empty:
            continue
        idx = index_cells(gcells)
        for scenario, mtp in sorted({(s, m) for s, m, _ in idx}):
            mine = idx.get((scenario, mtp, PATCHED), [])
            for ref in REFERENCES:
                theirs = idx.get((scenario, mtp, ref), [])
                if not ok_values(mine, "output_tok_s") or not ok_values(theirs, "output_tok_s"):
                    continue
                rows.append([md_link(f"{g.index}", f"#{anchor(g)}"), md_escape(title(g)), scenario, MTP_LABEL[mtp],
                             ref, *_standing_cells(mine, theirs, mtp, g.weights)])
    return pd.DataFrame(rows, columns=["Group", "Setting", "Scenario", "MTP", "vs", "n (patched / ref)",
                                       "Δ output tok/s ↑", "Δ median TTFT ↓", "Δ median TPOT ↓", "sglang-patched is"])


def _standing_cells(mine: list, theirs: list, mtp: bool, weights: str) -> list[str]:
    """n, the three deltas with their calls, and the verdict of sglang-patched's cells against a reference's."""
    texts, calls = [], []
    for col, label, higher in STANDING_METRICS:
        d = stats.welch_delta(ok_values(mine, col), ok_values(theirs, col))
        call = standing(d, higher)
        texts.append(fmt_delta(d) + (f" **{call}**" if call in ("behind", "ahead") else ""))
        if call in ("behind", "ahead"):
            calls.append(f"{call} on {label}")
    n = f"{len(ok_values(mine, 'output_tok_s'))} / {len(ok_values(theirs, 'output_tok_s'))}"
    verdict = "; ".join(calls) or "level on all three"
    if mtp and weights != "real":  # the draft's acceptance on random weights is not the engines' MTP
        verdict += f" (MTP on {weights} weights: acceptance is noise, not an MTP speed comparison)"
    return [n, *texts, verdict]


def _latest_other(groups: list[Group], idx: dict[int, dict], g: Group, scenario: str, mtp: bool, engine: str,
                  accept: Callable[[Group], bool] = lambda _h: True, before: str | None = None,
                  ) -> tuple[Group, list] | None:
    """The other group with ``g``'s machine key (model, weights, GPU and count, driver, CUDA, TP) and scenario
    definition, accepted by ``accept``, whose ok cells of ``engine`` on the scenario are the latest (by run id, a UTC
    timestamp; all of them earlier than run id ``before`` if given): that group and those cells."""
    definition = g.signature.get(f"scenario:{scenario}")
    found = [(max(str(r["run_id"]) for r in theirs), h, theirs) for h in groups
             if h.index != g.index and h.key == g.key and h.signature.get(f"scenario:{scenario}") == definition
             and accept(h) and ok_values(theirs := idx[h.index].get((scenario, mtp, engine), []), "output_tok_s")]
    found = [f for f in found if before is None or f[0] < before]
    if not found:
        return None
    _, h, theirs = max(found, key=lambda f: (f[0], f[1].index))
    return h, theirs


def _moved(now: list, before: list) -> str:
    """Output tok/s and median TPOT of cells ``now`` against ``before``: Welch deltas."""
    tok, tpot = (fmt_delta(stats.welch_delta(ok_values(now, c), ok_values(before, c)))
                 for c in ("output_tok_s", "tpot_median_ms"))
    return f"output tok/s {tok}, median TPOT {tpot}"


def _source(h: Group, cells: list, anchor: Callable[[Group], str]) -> str:
    return md_link(f"{h.index}", f"#{anchor(h)}") + f" ({', '.join(sorted({str(r['run_id']) for r in cells}))})"


def _patched_cells(groups: list[Group], cells: pd.DataFrame, current: set[int]):
    """The per-group cell indexes, and (group, scenario, MTP mode, cells) for each group in ``current`` and each
    scenario and MTP mode where its sglang-patched has ok cells."""
    idx = {g.index: index_cells(cells[cells["group"] == g.index]) for g in groups} if not cells.empty else {}
    found = [(g, s, m, idx[g.index][(s, m, PATCHED)]) for g in groups if g.index in current and g.index in idx
             for s, m in sorted({(s, m) for s, m, e in idx[g.index] if e == PATCHED})
             if ok_values(idx[g.index][(s, m, PATCHED)], "output_tok_s")]
    return idx, found


def cross_lease_table(groups: list[Group], cells: pd.DataFrame, current: set[int], title: Callable[[Group], str],
                      anchor: Callable[[Group], str]) -> pd.DataFrame:
    """For each group in `current` (those that measured the patch stack asked about), each scenario and MTP mode where
    sglang-patched has ok cells and a reference engine has none in that group: the standing deltas against the
    reference's ok cells of the latest other group with the same machine key and scenario definition."""
    idx, found = _patched_cells(groups, cells, current)
    rows = []
    for g, scenario, mtp, mine in found:
        for ref in REFERENCES:
            if ok_values(idx[g.index].get((scenario, mtp, ref), []), "output_tok_s"):
                continue  # measured in the same group: the standing table has it
            if (other := _latest_other(groups, idx, g, scenario, mtp, ref)) is None:
                continue
            h, theirs = other
            rows.append([md_link(f"{g.index}", f"#{anchor(g)}"), md_escape(title(g)), scenario, MTP_LABEL[mtp],
                         ref, _source(h, theirs, anchor), *_standing_cells(mine, theirs, mtp, g.weights)])
    return pd.DataFrame(rows, columns=["Group", "Setting", "Scenario", "MTP", "vs", "reference from group",
                                       "n (patched / ref)", "Δ output tok/s ↑", "Δ median TTFT ↓", "Δ median TPOT ↓",
                                       "sglang-patched is"])


FIGURE_METRICS = tuple(m for m in METRICS if m[0] in ("output_tok_s", "tpot_median_ms"))


def _figure(cells: list, col: str, unit: str, g: Group, anchor: Callable[[Group], str], same: bool = True) -> str:
    """``mean ± half-width (n=…) · [group]``, marked when the cells ran in another lease than the row's."""
    return (fmt_summary(stats.summarize(ok_values(cells, col)), unit) + " · " + md_link(f"{g.index}", f"#{anchor(g)}")
            + ("" if same else ", other lease"))


def latest_figures_table(groups: list[Group], cells: pd.DataFrame, current: set[int],
                         anchor: Callable[[Group], str]) -> pd.DataFrame:
    """The absolute figures of the stack the groups in ``current`` measured, one block per machine key, scenario and
    MTP mode where sglang-patched has ok cells there: sglang-patched's cells from the group that also ran a reference
    engine (else the latest such group); each reference engine's from that same group where it ran there, else from
    the latest other group with the same machine key and scenario definition (marked "other lease"); output tok/s and
    median TPOT as mean ± 95% half-width (n) with the group, and sglang-patched's Welch delta against each."""
    idx, found = _patched_cells(groups, cells, current)
    chosen: dict[tuple, tuple] = {}
    for g, scenario, mtp, mine in found:
        with_ref = any(ok_values(idx[g.index].get((scenario, mtp, ref), []), "output_tok_s") for ref in REFERENCES)
        rank = (with_ref, max(str(r["run_id"]) for r in mine), g.index)
        if (k := (g.key, scenario, mtp)) not in chosen or rank > chosen[k][0]:
            chosen[k] = (rank, g, scenario, mtp, mine)
    rows = []
    for _rank, g, scenario, mtp, mine in sorted(chosen.values(), key=lambda v: (setting_title(v[1]), v[2], v[3],
                                                                                v[1].index)):
        refs: dict[str, tuple[Group, list, bool]] = {}
        for ref in REFERENCES:
            theirs = idx[g.index].get((scenario, mtp, ref), [])
            if ok_values(theirs, "output_tok_s"):
                refs[ref] = (g, theirs, True)
            elif (other := _latest_other(groups, idx, g, scenario, mtp, ref)) is not None:
                refs[ref] = (*other, False)
        for col, label, unit, higher in FIGURE_METRICS:
            cols = [md_escape(setting_title(g)), scenario, MTP_LABEL[mtp], f"{label} ({unit}) {'↑' if higher else '↓'}",
                    _figure(mine, col, unit, g, anchor)]
            for ref in REFERENCES:
                h, theirs, same = refs.get(ref, (None, [], True))
                cols += ([_figure(theirs, col, unit, h, anchor, same),
                          fmt_delta(stats.welch_delta(ok_values(mine, col), ok_values(theirs, col)))]
                         if h is not None else ["not measured", ""])
            rows.append(cols)
    return pd.DataFrame(rows, columns=["Setting", "Scenario", "MTP", "Metric", PATCHED,
                                       *(c for ref in REFERENCES for c in (ref, f"Δ {PATCHED} vs {ref}"))])


def stack_change_table(groups: list[Group], cells: pd.DataFrame, current: set[int], current_stacks: set[str],
                       stack_of: Callable[[Group], str | None], title: Callable[[Group], str],
                       anchor: Callable[[Group], str]) -> pd.DataFrame:
    """For each group in `current`, each scenario and MTP mode where sglang-patched has ok cells: the standing
    deltas of those cells against sglang-patched's ok cells of the latest earlier group (all its cells' runs before
    these) with the same machine key and scenario definition that ran another stack's code (``stack_of`` not in
    ``current_stacks``), and how each reference engine that both groups ran moved between them (the same deltas,
    this group's cells against the other group's): the two leases' offset, which the stack change's delta carries
    too."""
    idx, found = _patched_cells(groups, cells, current)
    rows = []
    for g, scenario, mtp, mine in found:
        other = _latest_other(groups, idx, g, scenario, mtp, PATCHED,
                              lambda h: stack_of(h) is not None and stack_of(h) not in current_stacks,
                              before=min(str(r["run_id"]) for r in mine))
        if other is None:
            continue
        h, theirs = other
        moved = []
        for ref in REFERENCES:
            now, before = (idx[x.index].get((scenario, mtp, ref), []) for x in (g, h))
            if ok_values(now, "output_tok_s") and ok_values(before, "output_tok_s"):
                moved.append(f"{ref}: {_moved(now, before)}")
        if not moved:
            moved.append("no reference in both")
            # without a reference, the same code measured in another lease says how far two leases can differ
            same = _latest_other(groups, idx, g, scenario, mtp, PATCHED, lambda x: stack_of(x) in current_stacks)
            if same is not None:
                moved.append(f"sglang-patched on the same code in group {same[0].index} (another lease): "
                             f"{_moved(mine, same[1])}")
        rows.append([md_link(f"{g.index}", f"#{anchor(g)}"), md_escape(title(g)), scenario, MTP_LABEL[mtp],
                     f"stack {stack_of(h)[:12]}", _source(h, theirs, anchor),
                     *_standing_cells(mine, theirs, mtp, g.weights), "; ".join(moved)])
    return pd.DataFrame(rows, columns=["Group", "Setting", "Scenario", "MTP", "against", "earlier group",
                                       "n (now / before)", "Δ output tok/s ↑", "Δ median TTFT ↓", "Δ median TPOT ↓",
                                       "this stack is", "references between the two groups"])


# --------------------------------------------------------------------------------------------- roofline


def params_table(ap: ActiveParams) -> pd.DataFrame:
    rows = [[name, f"{n:,}", f"{n * ap.dtype_bytes / 1e9:.3f}"] for name, n in ap.components]
    rows.append(["**total read per token**", f"**{ap.total:,}**", f"**{ap.total_bytes / 1e9:.3f}**"])
    return pd.DataFrame(rows, columns=["Component", "Parameters", "GB (bf16)"])


def roofline_table(cells: pd.DataFrame, engines: list[str], ap: ActiveParams, bw: Bandwidth, gpus: int = 1) -> pd.DataFrame:
    """Per (scenario, MTP, engine): measured median TPOT vs the batch-1 HBM bound (over ``gpus`` TP ranks)."""
    bound = bound_ms_per_token(ap.total_bytes, bw, gpus)
    order = engine_order(engines)
    rows = []
    for (scenario, mtp, engine), sub in sorted(index_cells(cells).items(),
                                              key=lambda kv: (kv[0][0], kv[0][1], order.index(kv[0][2])
                                                              if kv[0][2] in order else 99, kv[0][2])):
        if engine not in engines:
            continue
        tpot = stats.summarize(ok_values(sub, "tpot_median_ms"))
        acc = stats.summarize(ok_values(sub, "accept_length")) if mtp else None
        if tpot is None:
            continue
        spec_bound = bound / acc.mean if acc is not None and acc.mean > 0 else None
        rows.append([
            scenario, MTP_LABEL[mtp], engine, str(tpot.n), fmt_fixed(tpot.mean, 2), fmt_fixed(bound, 3),
            fmt_pct_plain(bound / tpot.mean) if tpot.mean > 0 else "n/a",
            fmt_fixed(acc.mean, 2) if acc is not None else "—",
            fmt_fixed(spec_bound, 3) if spec_bound is not None else "—",
            fmt_pct_plain(spec_bound / tpot.mean) if spec_bound is not None and tpot.mean > 0 else "—",
        ])
    return pd.DataFrame(rows, columns=[
        "Scenario", "MTP", "Engine", "n", "median TPOT (ms, mean of repeats)", "bound (ms/token, batch 1)",
        "achieved = bound / TPOT", "accept length", "bound / accept length (ms)", "achieved (spec)",
    ])


def fmt_pct_plain(x: float) -> str:
    return f"{100 * x:.1f}%"


# --------------------------------------------------------------------------------------------- cell index


def cell_index_table(cells: pd.DataFrame, link: Link) -> pd.DataFrame:
    rows = []
    for r in cells.sort_values(["scenario", "mtp", "engine", "repeat", "run_id"], kind="mergesort").itertuples():
        if r.status == "failed":
            detail = f"{r.failure_stage}: {one_line(r.failure_message)}"
            if isinstance(getattr(r, "failure_cause", None), str) and r.failure_cause:
                detail += f" — cause: {one_line(r.failure_cause, 200)}"
        elif r.status == "skipped":
            detail = one_line(r.skipped_reason)
        elif r.status == "missing":
            detail = "planned in the manifest, no record"
        else:
            detail = f"{int(r.failed_requests)} failed requests" if r.failed_requests else ""
        ww = getattr(r, "window_warnings", "")
        if isinstance(ww, str) and ww:
            n = ww.count(" | ") + 1
            detail = (detail + "; " if detail else "") + f"⚠ {n} server warning(s) in the measured window"
        target = link(r.record)
        rows.append([
            r.run_id, r.engine, r.scenario, MTP_LABEL[bool(r.mtp)], str(r.repeat),
            "**failed**" if r.status == "failed" else r.status,
            fmt_fixed(r.output_tok_s, 1) if r.status == "ok" else "—",
            fmt_fixed(r.tpot_median_ms, 2) if r.status == "ok" else "—",
            detail, md_link("manifest" if r.status == "missing" else "record", target),
        ])
    return pd.DataFrame(rows, columns=[
        "Run", "Engine", "Scenario", "MTP", "Repeat", "Status", "output tok/s", "median TPOT (ms)", "Notes", "Record",
    ])


# --------------------------------------------------------------------------------------------- server start-up


def startup_table(runs: list[Any], link: Link) -> pd.DataFrame:
    """One row per server start: each cell record with ``timings.server_start_s`` is the first cell of a server
    (spawn -> healthy; an interleaved run restarts its servers per repeat). An engine and MTP mode of a run with no
    such record gets a row only where its first failed cell says the start failed or was cut while starting;
    older records of cells that failed after the start kept no time and get no row."""
    rows = []
    for run in runs:
        timed: set[tuple[str, bool]] = set()
        failed: dict[tuple[str, bool], tuple[Any, Any]] = {}
        for cell, path in sorted(run.cells, key=lambda cp: cp[0].started_at or ""):
            key = (cell.engine, bool(cell.mtp))
            if cell.timings is not None and cell.timings.server_start_s is not None:
                timed.add(key)
                rows.append([run.run_id, cell.engine, MTP_LABEL[key[1]], f"{cell.timings.server_start_s:.1f} s",
                             md_link(cell.cell_id, link(path))])
            elif cell.status == "failed" and cell.failure is not None:
                failed.setdefault(key, (cell, path))
        for key, (cell, path) in failed.items():
            f = cell.failure
            if key in timed or not (f.stage == "server-start" or "starting" in (f.message or "")):
                continue
            rows.append([run.run_id, cell.engine, MTP_LABEL[key[1]],
                         f"not healthy: {f.stage}: {one_line(f.message, 200)}", md_link(cell.cell_id, link(path))])
    df = pd.DataFrame(rows, columns=["Run", "Engine", "MTP", "Spawn → healthy", "First cell"])
    if not df.empty:
        rank = {e: i for i, e in enumerate(engine_order(df["Engine"]))}
        df = df.assign(_r=df["Engine"].map(rank)).sort_values(["Run", "MTP", "_r"], kind="mergesort")
        df = df.drop(columns="_r").reset_index(drop=True)
    return df


# --------------------------------------------------------------------------------------------- kernel benches


def kernel_table(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    cols = list(columns) or sorted({k for r in rows for k in r})
    extra = sorted({k for r in rows for k in r} - set(cols))
    cols = cols + extra
    return pd.DataFrame([[fmt_value(r.get(c)) for c in cols] for r in rows], columns=cols)


# --------------------------------------------------------------------------------------------- MMLU / parity


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value (binomial test of b vs c at p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = math.fsum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def mmlu_scores_table(records: list[EvalRecord], link: Link) -> pd.DataFrame:
    rows = []
    order = engine_order([x.engine or "" for x in records])
    for r in sorted(records, key=lambda r: (order.index(r.engine or ""), r.run_id or "", str(r.path))):
        engine = f"{r.engine} (**dummy weights**)" if r.dummy else r.engine
        if r.status != "ok":
            rows.append([engine, r.run_id or "", "—", "—", f"**failed**: {one_line(r.failure)}", md_link("record", link(r.path))])
            continue
        ci = "—"
        if r.n and r.correct is not None:
            lo, hi = wilson(r.correct, r.n)
            ci = f"[{lo:.3f}, {hi:.3f}]"
        rows.append([engine, r.run_id or "", str(r.n or "?"), str(r.correct if r.correct is not None else "?"),
                     f"{r.score:.3f} {ci}", md_link("record", link(r.path))])
    return pd.DataFrame(rows, columns=["Engine", "Run", "n", "correct", "score [Wilson 95% CI]", "Record"])


def paired_mmlu(ref: EvalRecord, cand: EvalRecord) -> dict[str, Any] | None:
    """Question-by-question comparison on the common questions; b = reference alone right, c = candidate alone
    right (the convention of ``harness.evals.gate``); the interval is a paired t-interval of the per-question
    differences (candidate - reference)."""
    if not ref.per_question or not cand.per_question:
        return None
    common = sorted(set(ref.per_question) & set(cand.per_question))
    if not common:
        return None
    diffs = [int(cand.per_question[q]) - int(ref.per_question[q]) for q in common]
    s = stats.summarize(diffs)
    b = sum(1 for d in diffs if d == -1)
    c = sum(1 for d in diffs if d == 1)
    return {"n": len(common), "b": b, "c": c, "delta": s.mean, "lo": s.lo, "hi": s.hi,
            "p": mcnemar_exact_p(b, c), "ci": "paired t"}


def mmlu_pairs(records: list[EvalRecord]) -> list[tuple[EvalRecord, EvalRecord]]:
    """(reference, candidate) pairs: vllm / sglang vs sglang-patched, same run first, else the latest of each."""
    ok = [r for r in records if r.status == "ok"]
    out = []
    for ref in REFERENCES:
        cands = sorted((r for r in ok if r.engine == PATCHED), key=lambda r: (r.run_id or "", str(r.path)))
        refs = sorted((r for r in ok if r.engine == ref), key=lambda r: (r.run_id or "", str(r.path)))
        if not cands or not refs:
            continue
        same = [(r, c) for c in cands for r in refs if c.run_id == r.run_id]
        out.extend(same if same else [(refs[-1], cands[-1])])
    return out


def _pp(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f} pp"


def mmlu_pairs_table(records: list[EvalRecord], link: Link) -> pd.DataFrame:
    rows = []
    for ref, cand in mmlu_pairs(records):
        p = paired_mmlu(ref, cand)
        g = eval_records.run_gate(ref, cand)
        usable = g is not None and g.get("verdict") in ("pass", "fail")
        if usable:
            pc = g["paired"]
            n, b, c, delta = g["n"], pc["b"], pc["c"], g["delta"]
            lo, hi = g["bootstrap"]["ci95_delta"]
            ci = f"[{_pp(lo)}, {_pp(hi)}] (paired bootstrap)"
            pval = g["mcnemar_p_two_sided"]
            verdict = (f"**{g['verdict'].upper()}** ({g['rule']}, margin {g['margin_pp']:g} pp, alpha {g['alpha']:g}; "
                       f"one-sided upper bound of the reference's lead {100 * g['bootstrap']['drop_upper']:.2f} pp)")
        elif p is not None:
            n, b, c, delta = p["n"], p["b"], p["c"], p["delta"]
            ci = f"[{_pp(p['lo'])}, {_pp(p['hi'])}] (paired t)" if p["lo"] is not None else "n/a"
            pval = p["p"]
            if g is None:
                verdict = "— (harness.evals.gate not available for these records)"
            else:
                verdict = f"unusable: {one_line(g.get('error'), 200)}"
        else:
            n = b = c = None
            delta = (cand.score - ref.score) if cand.score is not None and ref.score is not None else None
            ci, pval = "n/a (no per-question results)", None
            verdict = f"unusable: {one_line(g.get('error'), 200)}" if g else "—"
        runs = ref.run_id if ref.run_id == cand.run_id else f"{ref.run_id or '?'} / {cand.run_id or '?'}"
        rows.append([
            f"{cand.engine} vs {ref.engine}", runs or "", "—" if n is None else str(n),
            "—" if b is None else str(b), "—" if c is None else str(c), _pp(delta), ci,
            "—" if pval is None else f"{pval:.3g}", verdict,
            f"{md_link('ref', link(ref.path))} {md_link('cand', link(cand.path))}",
        ])
    return pd.DataFrame(rows, columns=[
        "Candidate vs reference", "Run(s)", "n paired", "b (ref only right)", "c (cand only right)",
        "Δ (cand − ref)", "95% CI of Δ", "McNemar p (exact, two-sided)", "Gate", "Records",
    ])


def parity_table(records: list[EvalRecord], link: Link, max_divergences: int = 5) -> pd.DataFrame:
    rows = []
    for r in sorted(records, key=lambda r: (r.engines or ("", ""), r.run_id or "", str(r.path))):
        pair = " vs ".join(r.engines or ("?", "?")) + (" (**dummy weights**)" if r.dummy else
                                                        " (**random-init weights**)" if r.random_init else "")
        if r.status != "ok":
            rows.append([pair, _runs_text(r), "—", "—", f"**failed**: {one_line(r.failure)}", "—", "—", "—",
                         md_link("record", link(r.path))])
            continue
        divs = "; ".join(f"prompt {d.prompt} @ {d.position}" for d in r.divergences[:max_divergences])
        if len(r.divergences) > max_divergences:
            divs += f"; … (+{len(r.divergences) - max_divergences})"
        rate = "n/a" if r.match_rate is None else f"{r.match_rate:.3f}"
        matches = "?" if r.matches is None else str(r.matches)
        rows.append([pair, _runs_text(r), f"{matches}/{r.n if r.n is not None else '?'}", rate, divs or "none",
                     parity_signal_text(r.signal) + prompt_tokens_text(r.prompt_tokens),
                     batching_text(*r.concurrency), divergence_margins_text(r.margins),
                     md_link("record", link(r.path))])
    return pd.DataFrame(rows, columns=["Engines", "Run", "matches", "match rate", "first divergences", "Signal",
                                       "Batching", "Divergence margins", "Record"])


def _runs_text(r: EvalRecord) -> str:
    """The run of an in-run record; for one computed from two runs' stored answers, both (a's, then b's)."""
    if r.run_id:
        return r.run_id
    return " + ".join(dict.fromkeys(r.side_runs)) if r.side_runs else ""


def parity_signal_text(signal: dict[str, Any] | None) -> str:
    """'none: …' when both engines' answers are degenerate (the match rate then says nothing), else what the
    answers look like (distinct answers per side)."""
    if not signal:
        return "not recorded"
    if not signal.get("informative", True):
        return "**none**: " + md_escape(str(signal.get("why") or "degenerate answers"))
    a, b = signal.get("a") or {}, signal.get("b") or {}
    deg = [s for s, v in (("a", a), ("b", b)) if v.get("degenerate")]
    text = f"{a.get('distinct_texts', '?')} / {b.get('distinct_texts', '?')} distinct answers"
    return text + (f" (side {' and '.join(deg)} degenerate)" if deg else "")


def parity_record_here(r: Any, root: Path) -> Path:
    """Where the parity record a reference record read is in this checkout: its stored path, or, for a reference
    computed on another host (path outside the repository), the file of that name beside the reference record or
    in the run it names, when its sha256 matches the one recorded."""
    import hashlib

    src = Path(r.parity_record)
    p = src if src.is_absolute() else root / src
    if p.is_file():
        return p
    want = (r.raw or {}).get("parity_record_sha256")
    run_dirs = [r.path.parent.parent / src.parent.parent.name] if src.parent.name == "evals" else []
    for cand in [r.path.parent / src.name] + [d / "evals" / src.name for d in run_dirs]:
        if cand.is_file() and (not want or hashlib.sha256(cand.read_bytes()).hexdigest() == want):
            return cand
    return p


def reference_table(records: list[Any], link: Link) -> pd.DataFrame:
    """One row per `harness parity-reference` record: which engine's token transformers' float32 forward prefers
    at the pair's first divergences."""
    from harness.evals.reference import summary_text
    from harness.paths import repo_root

    rows = []
    for r in sorted(records, key=lambda r: (r.engines or ("", ""), str(r.path))):
        a, b = r.engines or ("A", "B")
        ref = r.reference or {}
        who = _reference_text(ref, with_dtype=True)
        src = r.parity_record
        if src:
            src = md_link(Path(src).name, link(parity_record_here(r, repo_root())))
        rows.append([f"{a} vs {b}", src or "not recorded", md_escape(summary_text(r.reference_summary, a, b)), who,
                     md_link("record", link(r.path))])
    return pd.DataFrame(rows, columns=["Engines", "Parity record", "Reference verdict", "Reference", "Record"])


def _reference_text(ref: dict[str, Any], with_dtype: bool) -> str:
    """'transformers 5.6.0, torch 2.11.0[, float32] on cuda (NVIDIA H200, driver …)': what computed a reference or
    floor record, and where (the GPU when it ran on one and recorded it)."""
    m = ref.get("machine") or {}
    gpu = ("" if not m.get("gpu_name") or str(ref.get("device", "")).startswith("cpu")
           else f" ({m['gpu_name']}, driver {m.get('driver', '?')})")
    dtype = f", {ref.get('dtype', '?')}" if with_dtype else ""
    return (f"{ref.get('implementation', 'transformers')} {ref.get('transformers', '?')}, torch "
            f"{ref.get('torch', '?')}{dtype} on {ref.get('device', '?')}{gpu}")


def floor_table(records: list[Any], link: Link) -> pd.DataFrame:
    """One row per `harness parity-floor` record: how often bf16 and float32 transformers agree on the checkpoint."""
    from harness.evals.reference import floor_text

    rows = []
    for r in sorted(records, key=lambda r: str(r.path)):
        ref, cfg = r.reference or {}, r.config or {}
        shape = ", ".join(f"{k.replace('num_hidden_layers', 'layers').replace('_size', '')} {cfg[k]}"
                          for k in ("num_hidden_layers", "hidden_size", "vocab_size") if cfg.get(k) is not None)
        who = _reference_text(ref, with_dtype=False)
        rows.append([md_escape(f"{r.model or '?'} ({shape})" if shape else (r.model or "?")),
                     md_escape(floor_text(r.reference_summary, ref.get("control_dtype") or "bfloat16")), who,
                     md_link("record", link(r.path))])
    return pd.DataFrame(rows, columns=["Checkpoint", "bfloat16 vs float32 (first answer token)", "Reference",
                                       "Record"])


def prompt_tokens_text(pt: dict[str, Any] | None) -> str:
    """'; same prompt token counts (K)' or '; **inputs differ**: …' from a parity record's prompt_tokens (empty for
    records without it, or when no prompt was counted by both servers)."""
    if not pt or not pt.get("known"):
        return ""
    differ = pt.get("differ") or []
    if not differ:
        return f"; same prompt token counts ({pt['known']} prompts)"
    eg = ", ".join(f"{md_escape(str(d.get('id')))} {d.get('a')}/{d.get('b')}" for d in differ[:3])
    return (f"; **inputs differ**: prompt token counts differ on {len(differ)} of {pt['known']} prompts ({eg}"
            f"{', …' if len(differ) > 3 else ''}): the engines did not answer the same input there")


def setting_title(g: Group) -> str:
    """Model, GPUs, TP and weights: a group's title without what tells same-setting groups apart."""
    return f"{g.model} · {g.gpu_count}× {g.gpu_name}" + (f" · TP={g.tp}" if g.tp > 1 else "") + f" · {g.weights} weights"


def group_title(g: Group) -> str:
    title = setting_title(g)
    return f"{title} · {g.variant}" if g.variant else title
