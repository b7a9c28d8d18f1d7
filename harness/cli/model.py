"""``harness model synth``: a real-size Gemma-4 model directory without weights (for --load-format dummy)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from harness.cli.app import app
from harness.cli.common import OverridesOpt, console, definitions

model_app = typer.Typer(help="Model directories for dummy-weight runs.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("synth")
def synth(
    model: str = typer.Option(..., "--model", "-m", help="Model definition: 31B, 26B-A4B, E4B, E2B."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write (config.json, tokenizer, chat template, processor files)."),
    assistant: bool = typer.Option(False, "--assistant", help="Also write the MTP assistant's config into OUT/assistant (where its shape is published)."),
    force: bool = typer.Option(False, "--force", help="Rewrite OUT even if it holds something else."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Write a real-size config + synthetic tokenizer; runs from it are labelled `weights: dummy`."""
    from harness.synth import synth_model

    mdef = definitions(overrides).model(model)
    paths = synth_model(mdef, out, assistant=assistant, force=force)
    for k, p in paths.items():
        console.print(f"{k}: {p}")
