"""``harness report``: render COMPARISON.md and its plots from run records (no network, no GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from harness.cli.app import app
from harness.paths import repo_root, runs_dir as default_runs_dir

_console = Console(stderr=True)


@app.command("report")
def report(
    runs: Optional[list[str]] = typer.Argument(
        None,
        metavar="RUN",
        help="Run ids under --runs-dir, run directories, or MMLU/parity records made outside a run "
        "(default: every run under --runs-dir and every MMLU/parity record there).",
    ),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Directory holding run directories (default: runs/)."),
    out: Path = typer.Option(
        None, "--out", help="Markdown file to write (default: COMPARISON.md in the repository root). Plots go to "
        "<stem>_plots/ beside it, where PNGs this render did not produce are removed.",
    ),
    plots: bool = typer.Option(
        True, "--plots/--no-plots",
        help="Draw the PNG plots (matplotlib, in HARNESS_REPORT_JOBS worker processes; default: one per CPU).",
    ),
) -> None:
    """Render the comparison report (headline tables, decode roofline, MMLU/parity, kernel benches, plots).

    Deterministic: the same records give byte-identical markdown and PNGs (with the same matplotlib and
    fonts). A group's tables never mix GPUs, engine versions or weights; the opening sections that set one group's
    cells against another lease's (same model, weights, GPU, driver, CUDA, TP) mark every such figure or row. No
    network, no GPU.
    """
    from analysis.render import build, write_report

    rdir = runs_dir if runs_dir is not None else default_runs_dir()
    target = out if out is not None else repo_root() / "COMPARISON.md"
    rep = build(runs, rdir, target, with_plots=plots)
    written = write_report(rep)
    n_png = sum(1 for p in written if p.suffix == ".png")
    _console.print(f"wrote {target}" + (f" and {n_png} plot(s) in {rep.plots_dir}" if n_png else ""))
