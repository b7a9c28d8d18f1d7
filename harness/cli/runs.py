"""``harness runs list`` / ``harness runs show``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from harness.cli.app import app
from harness.cli.common import console
from harness.runs import RunDir, dumps, export_runs, import_runs, iter_runs, run_summary

runs_app = typer.Typer(help="List and inspect run records under runs/.", no_args_is_help=True)
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


@runs_app.command("export")
def export_cmd(
    runs: list[str] = typer.Argument(..., help="Run ids (under --runs-dir) or run directories."),
    out: Path = typer.Option(..., "--out", "-o", help="Archive to write (.tar.gz)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    logs: bool = typer.Option(False, "--logs/--no-logs", help="Include the full server and client logs (cells keep their tails either way)."),
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
