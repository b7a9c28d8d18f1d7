"""Seeded random weights for a synthetic model directory, as a real checkpoint that every engine loads the same way.

Why: with ``--load-format dummy`` SGLang and vLLM fill every parameter with the same small uniform values
(``initialize_dummy_weights``: uniform(-1e-3, 1e-3), seed 1234, norms included). The logits come out nearly flat and
greedy decoding returns one token forever (``<pad> <pad> ...`` on SGLang, the empty string on vLLM, on every
Gemma-4 size: runs of 2026-11-27), so greedy parity between engines or between a patch on and off carries no
information. This module instead builds the model class named in ``config.json`` with transformers' own
initialisation (``_init_weights``: normal(0, initializer_range) for linear and embedding weights, the norms as the
class defines them) from a fixed torch seed and saves it with ``save_pretrained`` (safetensors, the checkpoint
layout the engines load from the Hub). Every engine then loads the *same* weights through its real loader, so
greedy answers vary from prompt to prompt and parity compares real numerics. Accuracy stays meaningless.

It needs torch and transformers, which the harness itself does not depend on: run it with an engine
environment's interpreter (``harness model init-weights`` does that). It imports nothing from the harness.

    python -m harness.weights_init --model-dir DIR [--seed 0] [--device cuda] [--dtype bfloat16]

Writes ``model*.safetensors`` (+ ``model.safetensors.index.json`` when sharded) into DIR, leaves DIR's
config.json, tokenizer and processor files as they are, and prints one JSON line with what it did.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

WEIGHT_FILES = ("*.safetensors", "model.safetensors.index.json")


def _model_class(config):
    import transformers

    archs = list(getattr(config, "architectures", None) or [])
    for name in archs:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    raise SystemExit(f"transformers {transformers.__version__} has none of the architectures {archs} in config.json")


def init_and_save(model_dir: Path, *, seed: int, device: str, dtype_name: str, max_shard_size: str) -> dict:
    import torch
    import transformers
    from transformers import AutoConfig

    t0 = time.monotonic()
    config = AutoConfig.from_pretrained(str(model_dir))
    cls = _model_class(config)
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(seed)
    if device.startswith("cuda"):
        torch.cuda.manual_seed_all(seed)
    with torch.device(device):
        try:
            model = cls._from_config(config, dtype=dtype)
        except TypeError:  # older transformers spell it torch_dtype
            model = cls._from_config(config, torch_dtype=dtype)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    t_init = time.monotonic() - t0
    for pattern in WEIGHT_FILES:  # an earlier init of another seed
        for old in model_dir.glob(pattern):
            old.unlink()
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=f".{model_dir.name}.weights-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        written = []
        for pattern in WEIGHT_FILES:
            for f in sorted(Path(tmp).glob(pattern)):
                shutil.move(str(f), model_dir / f.name)
                written.append(f.name)
    if not written:
        raise SystemExit("save_pretrained wrote no safetensors file")
    return {
        "weights": "random-init",
        "seed": seed,
        "architecture": cls.__name__,
        "parameters": n_params,
        "dtype": dtype_name,
        "device": device,
        "files": written,
        "bytes": sum((model_dir / f).stat().st_size for f in written),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "init_s": round(t_init, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-shard-size", default="5GB")
    args = ap.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        print(f"{args.model_dir}: no config.json", file=sys.stderr)
        return 2
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    info = init_and_save(args.model_dir, seed=args.seed, device=device, dtype_name=args.dtype,
                         max_shard_size=args.max_shard_size)
    print(json.dumps(info, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
