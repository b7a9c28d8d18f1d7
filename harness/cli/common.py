"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from harness.definitions import Definitions, load_definitions

console = Console()
err_console = Console(stderr=True)

OverridesOpt = typer.Option(
    None, "--overrides", envvar="HARNESS_OVERRIDES",
    help="YAML file merged over the definitions in scenarios/ (keys: engines, models, scenarios, loadgen).",
)


def definitions(overrides: Optional[Path]) -> Definitions:
    return load_definitions(overrides=overrides)


def split_csv(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out

# Options shared by the commands that start servers (bench, serve, compare): one wording everywhere.
NumPromptsOpt = typer.Option(None, "--num-prompts", min=1, help="Override every scenario's prompt count (smoke runs).")
ModelPathOpt = typer.Option(
    None, "--model-path",
    help="Model directory (real weights or a `harness model synth` dir). Default: a synthetic dir under the state dir (dummy weights).",
)
AssistantPathOpt = typer.Option(None, "--assistant-path", help="MTP assistant directory (default with dummy weights: synthesised).")
TpOpt = typer.Option(1, "--tp", min=1, help="Tensor-parallel size.")
ServerArgOpt = typer.Option(None, "--server-arg", help="Extra server argument for every engine, appended verbatim (repeatable).")
PatchedTreeOpt = typer.Option(
    None, "--patched-tree", help="Patched SGLang tree for sglang-patched (default: the state dir's, by stack hash)."
)
StartupTimeoutOpt = typer.Option(None, "--startup-timeout", help="Seconds to wait for a healthy server (default: the engine profile's).")
NoteOpt = typer.Option(
    None, "--note",
    help="A note kept in the run manifest and shown in the report's environment block, e.g. what else ran on the host (repeatable).",
)
ProfileOpt = typer.Option(
    False, "--profile/--no-profile",
    help="After each server's measured cells, one profiled pass per scenario (the engine's torch profiler around a "
         "short load with the scenario's shapes, output capped at --profile-output-len tokens); the record under "
         "profiles/ summarises the rank-0 trace (GPU time per kernel and kernel family, attention time per layer type). "
         "Never inside a measured window.",
)
ProfileOutputLenOpt = typer.Option(32, "--profile-output-len", min=1, help="Output tokens per request in a profiled pass.")
RunsDirOpt = typer.Option(None, "--runs-dir", help="Where run directories go (default: runs/).")
