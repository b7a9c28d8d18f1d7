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
