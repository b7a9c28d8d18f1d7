"""``harness model synth``: a real-size Gemma-4 model directory without weights (for --load-format dummy);
``harness model init-weights``: seeded random weights in such a directory (one checkpoint for every engine)."""

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


@model_app.command("init-weights")
def init_weights_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Model definition: 31B, 26B-A4B, E4B, E2B."),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="A `harness model synth` directory (default: the model's synthetic directory under the state dir, written first if missing)."),
    seed: int = typer.Option(0, "--seed", help="torch seed of the initialisation (same seed, same weights)."),
    env: str = typer.Option("sglang", "--env", help="Environment whose interpreter runs it (needs torch and transformers; an engine environment has both)."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter to use instead of --env's."),
    device: Optional[str] = typer.Option(None, "--device", help="Where to build the model (default: cuda when available, else cpu)."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Write seeded random weights (transformers' own initialisation, post-sublayer norms scaled by the
    `postnorm-v1` recipe of harness/weights_init.py, saved as safetensors) into a synthetic model directory. Every engine then loads the same checkpoint through its real loader (no --load-format dummy), so
    greedy answers vary and parity compares real numerics; runs from it are labelled `weights: random-init`.
    Accuracy stays meaningless. Sizes: about 2 bytes per parameter (26B-A4B ~52 GB, 31B ~62 GB on disk)."""
    from harness.engines import resolve_interpreter
    from harness.synth import default_synth_dir, init_weights, is_synthetic, synth_model

    mdef = definitions(overrides).model(model)
    path = model_path or default_synth_dir(mdef.name)
    if model_path is None:
        synth_model(mdef, path, force=is_synthetic(path))
    interp = resolve_interpreter(env, python)
    console.print(f"writing seed-{seed} random weights for {mdef.name} into {path} with {interp.python}")
    info = init_weights(path, python=interp.python, pythonpath=list(interp.pythonpath), seed=seed, device=device)
    console.print(f"{info['parameters']:,} parameters ({info['bytes'] / 1e9:.2f} GB, {info['dtype']}) on {info['device']} "
                  f"in {info['total_s']} s with transformers {info['transformers']}, torch {info['torch']}: "
                  + ", ".join(info["files"]), highlight=False)
