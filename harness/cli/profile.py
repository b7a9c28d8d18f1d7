"""``harness profile summarize``: GPU time per kernel and kernel family of torch-profiler traces (harness.profiles);
``harness profile layers``: an attention kernel's time split by layer type (harness.profile_layers);
``harness profile steps``: each forward's GPU busy and idle time and the host calls in the idle gaps (harness.profile_steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.app import app
from harness.cli.common import OverridesOpt, console, definitions
from harness.errors import HarnessError

profile_app = typer.Typer(help="Torch-profiler traces (`bench`/`compare --profile` write them).", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


def _trace_files(paths: list[Path]) -> list[Path]:
    """The trace files named, or found under the directories named (recursively)."""
    from harness.profiles import trace_files

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
    return files


def _read(f: Path, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn(f)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{f}: not a readable trace ({type(exc).__name__}: {exc})") from None


@profile_app.command("summarize")
def summarize_cmd(
    paths: list[Path] = typer.Argument(..., help="Trace files (*.json, *.json.gz) or directories holding them (searched recursively), e.g. runs/<id>/profiles/<session>/<scenario>."),
    top: int = typer.Option(15, "--top", min=1, help="Kernels to list per trace."),
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON (one list) instead of tables."),
) -> None:
    """Summarise each trace as a --profile record does (complete GPU kernel and memory events), with more rows."""
    from harness.profiles import summarize_trace

    out = [{"path": str(f), **_read(f, lambda p: summarize_trace(p, top=top))} for f in _trace_files(paths)]
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


def _short(layer_type: str) -> str:
    return layer_type.removesuffix("_attention")


@profile_app.command("layers")
def layers_cmd(
    paths: list[Path] = typer.Argument(..., help="Trace files (*.json, *.json.gz) or directories holding them (searched recursively)."),
    model: str = typer.Option(..., "--model", "-m", help="Model definition whose layer_types order the launches: 31B, 26B-A4B, E4B, E2B."),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Kernel to split (default: the attention kernel with the most GPU time whose launch count is a multiple of the layer count)."),
    forwards: bool = typer.Option(False, "--forwards", help="Also a table per forward: the grid of its first launch and the mean time per launch of each layer type."),
    as_json: bool = typer.Option(False, "--json", help="Print the splits as JSON (one list) instead of tables."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Split an attention kernel's GPU time by layer type: launch i of a kernel launched once per layer per forward,
    in layer order (SGLang's Triton `_fwd_kernel`, vLLM's `kernel_unified_attention`), belongs to layer i % layers."""
    from harness.profile_layers import attention_layer_split

    mdef = definitions(overrides).model(model)
    layer_types = mdef.text_config.get("layer_types")
    if not layer_types:
        raise HarnessError(f"model {mdef.name} defines no layer_types (hf_config.text_config), so there is nothing to split by")
    out = [{"path": str(f), **_read(f, lambda p: attention_layer_split(p, layer_types, kernel))} for f in _trace_files(paths)]
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for r in out:
        s = r["split"]
        if s is None:
            console.print(f"[bold]{escape(r['path'])}[/]: no split: {escape(r['why'])}", highlight=False, soft_wrap=True)
            continue
        console.print(f"[bold]{escape(r['path'])}[/]: `{escape(r['kernel'])}` ({r['picked']}), {s['launches']} launches = {s['forwards']} "
                      f"forwards of {r['layers']} layers, {s['us'] / 1e3:.2f} ms", highlight=False, soft_wrap=True)
        t = Table("layer type", "layers", "launches", "total ms", "ms per launch", "share")
        for name, b in s["by_type"].items():
            t.add_row(_short(name), str(b["layers"]), str(b["launches"]), f"{b['us'] / 1e3:.2f}",
                      f"{b['us_per_launch'] / 1e3:.3f}", f"{b['share']:.1%}")
        console.print(t)
        if forwards:
            t = Table("forward", "grid", *(f"{_short(n)} ms per launch" for n in s["by_type"]))
            for f in s["per_forward"]:
                t.add_row(str(f["forward"]), str(f["grid"]), *(f"{us / 1e3:.3f}" for us in f["us_per_launch"].values()))
            console.print(t)


def _clip(name: str, width: int = 90) -> str:
    """A kernel name cut to ``width`` characters (template instantiations run to hundreds)."""
    return name if len(name) <= width else name[: width - 1] + "…"


def _ms(us: float) -> str:
    return f"{us / 1e3:.2f} ms"


@profile_app.command("steps")
def steps_cmd(
    paths: list[Path] = typer.Argument(..., help="Trace files (*.json, *.json.gz) or directories holding them (searched recursively)."),
    model: str = typer.Option(..., "--model", "-m", help="Model definition whose layer count delimits the forwards: 31B, 26B-A4B, E4B, E2B."),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Kernel whose launches 0, L, 2L, ... start the forwards (default: the attention- or norm-family kernel with the most launches whose count is a multiple of the layer count L)."),
    gap_us: float = typer.Option(50.0, "--gap-us", min=0.0, help="Shortest GPU idle gap whose overlapping host calls are counted (microseconds)."),
    per_step: bool = typer.Option(False, "--steps", help="Also a table per step."),
    top: int = typer.Option(0, "--kernels", min=0, help="Also the median step's GPU time by kernel family and its N largest kernels (launches and ms per step): set two engines' steps side by side."),
    as_json: bool = typer.Option(False, "--json", help="Print the steps as JSON (one list) instead of tables."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Each forward's GPU busy and idle time and what the host did meanwhile: the CUDA runtime and driver calls that
    overlap the idle gaps, and the time in synchronising calls. A decode step whose host spends most of its time in a
    synchronise has no lead over the GPU (every later host call is on the critical path). With --kernels, where the
    median step's busy time goes."""
    from harness.profile_steps import forward_steps

    mdef = definitions(overrides).model(model)
    layer_types = mdef.text_config.get("layer_types")
    layers = len(layer_types) if layer_types else mdef.text_config.get("num_hidden_layers")
    if not layers:
        raise HarnessError(f"model {mdef.name} defines neither layer_types nor num_hidden_layers (hf_config.text_config)")
    out = [{"path": str(f), **_read(f, lambda p: forward_steps(p, int(layers), kernel, gap_us))} for f in _trace_files(paths)]
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for r in out:
        if r["steps"] is None:
            console.print(f"[bold]{escape(r['path'])}[/]: no steps: {escape(r['why'])}", highlight=False, soft_wrap=True)
            continue
        m = r["median"]
        calls = ", ".join(f"{escape(n)} {_ms(us)}" for n, us in m["host_in_gaps_us"].items() if us >= 5) or "none traced"
        console.print(
            f"[bold]{escape(r['path'])}[/]: `{escape(r['kernel'])}` ({r['picked']}), {len(r['steps'])} steps of "
            f"{r['layers']} layers. Per step (median): wall {_ms(m['wall_us'])}, GPU busy {_ms(m['busy_us'])}, idle "
            f"{_ms(m['idle_us'])} ({_ms(m['idle_in_gaps_us'])} in {m['gaps']:g} gaps of at least {r['gap_us']:g} us; "
            f"no kernel running {_ms(m['kernel_idle_us'])}); "
            f"host in synchronising calls {_ms(m['host_sync_us'])} ({m['host_syncs']:g} calls); host calls in the "
            f"gaps: {calls}.", highlight=False, soft_wrap=True)
        if top:
            fams = ", ".join(f"{escape(f)} {_ms(us)}" for f, us in m["families_us"].items())
            console.print(f"GPU time of the median step by family: {fams}", highlight=False, soft_wrap=True)
            t = Table("kernel", "family", "launches per step", "ms per step", "share of busy")
            for k in m["kernels"][:top]:
                t.add_row(escape(_clip(k["name"])), k["family"], f"{k['launches']:g}", f"{k['us'] / 1e3:.3f}",
                          f"{k['us'] / m['busy_us']:.1%}" if m["busy_us"] else "-")
            console.print(t)
        if per_step:
            t = Table("step", "wall ms", "busy ms", "idle ms", "no kernel ms", "gaps", "idle in gaps ms", "host sync ms",
                      "host calls in gaps")
            for s in r["steps"]:
                top = ", ".join(f"{n} {us / 1e3:.2f}" for n, us in list(s["host_in_gaps_us"].items())[:3])
                t.add_row(str(s["step"]), f"{s['wall_us'] / 1e3:.2f}", f"{s['busy_us'] / 1e3:.2f}",
                          f"{s['idle_us'] / 1e3:.2f}", f"{s['kernel_idle_us'] / 1e3:.2f}", str(s["gaps"]),
                          f"{s['idle_in_gaps_us'] / 1e3:.2f}",
                          f"{s['host_sync_us'] / 1e3:.2f}", escape(top))
            console.print(t)
