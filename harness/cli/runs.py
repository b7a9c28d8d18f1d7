"""``harness runs list|show|compare|export|import|abandon|annotate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from harness.cli.app import app
from harness.cli.common import console, split_csv
from harness.errors import HarnessError
from harness.runs import RunDir, annotation_note, dumps, export_runs, import_runs, iter_runs, run_summary

runs_app = typer.Typer(help="List, inspect, compare, move (export/import), close (abandon) and annotate run records under runs/.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def list_runs(
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """One line per run: id, model, GPU, weights, engines, cells ok/failed."""
    rows = [run_summary(rd) for rd in iter_runs(runs_dir)]
    if as_json:
        typer.echo(dumps(rows))
        return
    t = Table("run", "status", "model", "weights", "gpu", "engines", "ok", "failed", "kernels")
    for r in rows:
        t.add_row(r["run_id"], r["status"], r["model"], r["weights"], r["gpu"] or "-", ",".join(r["engines"]),
                  str(r["cells_ok"]), str(r["cells_failed"]), ",".join(r["kernels"]))
    console.print(t)


@runs_app.command("show")
def show_run(
    run: str = typer.Argument(..., help="Run id (under --runs-dir) or a run directory."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest and every cell as JSON."),
) -> None:
    """The manifest and each cell's status and headline figures (failed cells with their failure)."""
    rd = RunDir.open(run, runs_dir)
    cells = rd.cells()
    if as_json:
        typer.echo(dumps({"manifest": rd.manifest.model_dump(mode="json"), "cells": [c.model_dump(mode="json") for c in cells]}))
        return
    m = rd.manifest
    console.print(f"[bold]{m.run_id}[/] ({m.status}) model {m.model}, weights {m.weights}, GPU {m.machine.gpu_name} "
                  f"x{m.machine.gpu_count}, driver {m.machine.driver}, patch stack {m.patch_stack_hash}")
    for name, e in sorted(m.engines.items()):
        console.print(f"  engine {name}: {e.family} {e.version} torch {e.packages.get('torch')} python {e.python}")
    for n in m.notes:  # as recorded: "note: ..." (given with --note), "annotated at ...", "weights: ...", ...
        console.print(f"  manifest note · {n}", markup=False, highlight=False, soft_wrap=True)
    t = Table("cell", "status", "out tok/s", "total tok/s", "TTFT med ms", "TPOT med ms", "accept", "note")
    for c in cells:
        mt = c.metrics
        note = c.failure.message if c.failure else ""
        t.add_row(c.cell_id, c.status,
                  f"{mt.output_throughput:.1f}" if mt else "-", f"{mt.total_token_throughput:.1f}" if mt else "-",
                  f"{mt.ttft_ms.median:.1f}" if mt and mt.ttft_ms.median is not None else "-",
                  f"{mt.tpot_ms.median:.2f}" if mt and mt.tpot_ms.median is not None else "-",
                  f"{c.spec_decode.accept_length:.2f}" if c.spec_decode and c.spec_decode.accept_length else "-",
                  note[:80])
    console.print(t)
    missing = [cid for cid in m.cells if not rd.cell_path(cid).exists()]
    if missing:
        console.print(f"[yellow]{len(missing)} planned cell(s) have no record:[/] {', '.join(missing)}")


@runs_app.command("compare")
def compare_runs(
    a: str = typer.Argument(..., metavar="A", help="RUN[:ENGINE], or several comma-separated (their cells pooled); ENGINE may be left out of a one-engine run."),
    b: str = typer.Argument(..., metavar="B", help="The reference side, in the same form; Δ is (A − B) / B."),
    metric: Optional[list[str]] = typer.Option(None, "--metric", help="Metric column (repeatable or comma-separated): output_tok_s, total_tok_s, ttft_median_ms, tpot_median_ms, itl_median_ms, e2el_p99_ms, accept_length. Default: output_tok_s, ttft_median_ms, tpot_median_ms."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """One engine of one run (or of several, pooled) against another, across report groups: per scenario and MTP mode on
    both sides, each metric's means, Δ with Welch's 95% interval and better/worse where it excludes 0; what differs
    between the sides' environments, with a warning where GPU, weights, model or a scenario definition differ."""
    from rich.markup import escape

    from analysis import run_compare as rc

    res = rc.compare(rc.parse_side(a, runs_dir), rc.parse_side(b, runs_dir), split_csv(metric) or rc.DEFAULT_METRICS)
    if as_json:
        typer.echo(rc.to_json(res))
        return
    for line in rc.header_lines(res):
        console.print(line, style="yellow" if line.startswith("WARNING") else None, markup=False, highlight=False)
    df = rc.table(res)
    t = Table(*df.columns)
    for row in df.itertuples(index=False):
        t.add_row(*(escape(v) for v in row))
    console.print(t)
    for line in rc.footer_lines(res):
        console.print(line, markup=False, highlight=False)


@runs_app.command("export")
def export_cmd(
    runs: list[str] = typer.Argument(..., help="Run ids (under --runs-dir) or run directories."),
    out: Path = typer.Option(..., "--out", "-o", help="Archive to write (.tar.gz)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    logs: bool = typer.Option(False, "--logs/--no-logs", help="Include the full server and client logs and the profiler traces (cells keep their log tails, profile records their summaries, either way)."),
) -> None:
    """Pack run directories into one archive, e.g. to bring them back from a GPU host."""
    path = export_runs([RunDir.open(r, runs_dir) for r in runs], out, include_logs=logs)
    console.print(f"wrote {path} ({path.stat().st_size} bytes, {len(runs)} run(s))")


@runs_app.command("import")
def import_cmd(
    archive: Path = typer.Argument(..., help="An archive made by `harness runs export`."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
) -> None:
    """Unpack runs from an archive into runs/ after validating every record; never overwrites a run."""
    for name in import_runs(archive, runs_dir):
        console.print(f"imported {name}")


@runs_app.command("abandon")
def abandon_run(
    run: str = typer.Argument(..., help="Run id (under --runs-dir) or a run directory."),
    reason: str = typer.Option(..., "--reason", help="What happened, in words (kept in the manifest and in every unfinished cell)."),
    log_tail: Optional[Path] = typer.Option(None, "--log-tail", help="A text file with the last output seen (e.g. a server log tail copied from the host); kept with each unfinished cell."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
) -> None:
    """Close a run that can no longer finish (its host went away mid-run): every planned cell without a record is
    recorded as failed with the reason, and the run's status becomes 'failed'. Nothing is dropped or invented."""
    from harness.results import CellResult, Failure, parse_cell_id
    from harness.runs import utcnow

    rd = RunDir.open(run, runs_dir)
    m = rd.manifest
    if m.status not in ("running", "interrupted"):
        raise HarnessError(f"run {m.run_id} is {m.status!r}; only a 'running' or 'interrupted' run can be abandoned")
    tail = log_tail.read_text(errors="replace")[-20000:] if log_tail else ""
    now = utcnow()
    n = 0
    for cid in m.cells:
        if rd.cell_path(cid).exists():
            continue
        parsed = parse_cell_id(cid)
        if parsed is None:
            raise HarnessError(f"not a cell id: {cid!r}")
        engine, scenario, mtp, repeat = parsed
        rd.write_cell(CellResult(run_id=m.run_id, cell_id=cid, engine=engine, model=m.model, scenario=scenario, mtp=mtp,
                                 repeat=repeat, status="failed", failure=Failure(stage="other", message=f"not finished: {reason}", log_tail=tail),
                                 started_at=m.created_at, finished_at=now))
        n += 1
    m.status = "failed"
    m.finished_at = now
    m.notes.append(f"abandoned at {now}: {reason}" + (f" (log tail from {log_tail.name} kept in the unfinished cells)" if tail else ""))
    rd.save_manifest()
    console.print(f"run {m.run_id}: failed; {n} unfinished cell(s) recorded as failed")


@runs_app.command("annotate")
def annotate_run(
    run: str = typer.Argument(..., help="Run id (under --runs-dir) or a run directory."),
    text: str = typer.Argument(..., help="What to add, in words: e.g. a correction of a --note given at the start."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
) -> None:
    """Add a dated note to a finished (or any) run after the fact, e.g. to correct a --note that turned out wrong. The
    run's records are not otherwise changed and earlier notes stay as they were; the report shows the annotation in
    the group's environment block, beside the notes given at the start."""
    note = annotation_note(text)
    rd = RunDir.open(run, runs_dir)
    rd.manifest.notes.append(note)
    rd.save_manifest()
    console.print(f"run {rd.manifest.run_id}: annotation added ({len(rd.manifest.notes)} note(s) in all)")
