"""``harness profile summarize``: GPU time per kernel and kernel family of torch-profiler traces (harness.profiles)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from harness.cli.app import app
from harness.cli.common import console
from harness.errors import HarnessError

profile_app = typer.Typer(help="Torch-profiler traces (`bench`/`compare --profile` write them).", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("summarize")
def summarize_cmd(
    paths: list[Path] = typer.Argument(..., help="Trace files (*.json, *.json.gz) or directories holding them (searched recursively), e.g. runs/<id>/profiles/<session>/<scenario>."),
    top: int = typer.Option(15, "--top", min=1, help="Kernels to list per trace."),
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON (one list) instead of tables."),
) -> None:
    """Summarise each trace as a --profile record does (complete GPU kernel and memory events), with more rows."""
    from harness.profiles import summarize_trace, trace_files

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += trace_files(p)
        elif p.is_file():
            files.append(p)
        else:
            raise HarnessError(f"{p}: no such file or directory")
    if not files:
        raise HarnessError(f"no trace (*.json, *.json.gz) under {', '.join(map(str, paths))}")
    out = []
    for f in files:
        try:
            out.append({"path": str(f), **summarize_trace(f, top=top)})
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{f}: not a readable trace ({type(exc).__name__}: {exc})") from None
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for s in out:
        fams = ", ".join(f"{k} {v['share']:.1%}" for k, v in s["families"].items())
        console.print(f"[bold]{s['path']}[/]: {s['gpu_time_us'] / 1e3:.2f} ms of GPU time in {s['kernels']} events "
                      f"({s['distinct_kernels']} kernels); {fams}", highlight=False)
        t = Table("kernel", "family", "ms", "count", "share")
        for k in s["top"]:
            t.add_row(k["name"][:100], k["family"], f"{k['us'] / 1e3:.3f}", str(k["count"]), f"{k['share']:.1%}")
        console.print(t)
