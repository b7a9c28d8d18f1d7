"""Seeded random weights for a synthetic model directory, as a real checkpoint that every engine loads the same way.

Why: with ``--load-format dummy`` SGLang and vLLM fill every parameter with the same small uniform values
(``initialize_dummy_weights``: uniform(-1e-3, 1e-3), seed 1234, norms included). The logits come out nearly flat and
greedy decoding returns one token forever (``<pad> <pad> ...`` on SGLang, the empty string on vLLM, on every
Gemma-4 size: runs of 2026-11-27), so greedy parity between engines or between a patch on and off carries no
information. This module instead builds the model class named in ``config.json`` with transformers' own
initialisation (``_init_weights``: normal(0, initializer_range) for linear and embedding weights, the norms as the
class defines them) from a fixed torch seed, adjusts it with a deterministic *recipe* (below), and saves it with
``save_pretrained`` (safetensors, the checkpoint layout the engines load from the Hub). Every engine then loads the
*same* weights through its real loader, so greedy answers vary from prompt to prompt and parity compares real
numerics. Accuracy stays meaningless.

Recipe ``postnorm-v1`` (the default; docs/random-init-findings.md): transformers' init alone makes the full-size
models copy their last input token forever (31B: `` model model model ...`` for every parity prompt). Gemma-4 ties
lm_head to the embedding and scales the input embedding by sqrt(hidden), while every sublayer output passes a
post-norm of weight 1, so the current token's own logit stands about
``std*hidden / sqrt(std^2*hidden + sublayers)`` standard deviations above the others (31B: 9.7; the largest of
262,144 random logits sits near 5). The recipe sets the text decoder layers' post-sublayer norm weights
(``post_attention_layernorm``, ``post_feedforward_layernorm``, ``post_per_layer_input_norm``) to the constant that
brings that figure to 1 (``apply_recipe``; never below 1, so small test configs keep transformers' init exactly).
No random numbers are drawn for it: the same seed still gives the same weights. ``--recipe hf`` keeps
transformers' init as is (the checkpoints written before the recipe existed).

It needs torch and transformers, which the harness itself does not depend on: run it with an engine
environment's interpreter (``harness model init-weights`` does that). It imports nothing from the harness.

    python -m harness.weights_init --model-dir DIR [--seed 0] [--device cuda] [--dtype bfloat16] [--recipe postnorm-v1]

Writes ``model*.safetensors`` (+ ``model.safetensors.index.json`` when sharded) into DIR, leaves DIR's
config.json, tokenizer and processor files as they are, and prints one JSON line with what it did (``recipe`` and
``recipe_info`` say which initialisation; a line without ``recipe`` is an older ``hf`` checkpoint).

KV-shared layers (E2B, E4B: the last ``num_kv_shared_layers`` text layers reuse an earlier layer's KV cache):
transformers 5.6.0 neither creates nor saves their ``self_attn.k_norm.weight``, but vLLM 0.22.0 has that parameter
and refuses a checkpoint without it ("Following weights were not initialized from checkpoint", session 8).
``add_kv_shared_k_norms`` therefore adds them after ``save_pretrained``: ones, shaped like the k_norm of the last
non-shared layer of the same layer type (an extra shard ``model-kv-shared-k-norm.safetensors`` in a sharded
checkpoint, rewritten into ``model.safetensors`` otherwise), listed as ``added_for_engines`` in the JSON line. A
KV-shared layer computes no keys, so the values are never read; the fingerprint covers the model as initialised
and does not include them.
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


RECIPES = ("postnorm-v1", "hf")
DEFAULT_RECIPE = "postnorm-v1"
# The greedy copy bias left over: the z-score of the last input token's own logit among all logits (see the module
# docstring). The largest of 262,144 roughly normal logits sits near z = 5, so 1 leaves the copy one candidate
# among many.
TARGET_SELF_Z = 1.0


def _text_layers(model) -> list:
    return [m for m in model.modules() if type(m).__name__ == "Gemma4TextDecoderLayer"]


def predicted_self_z(*, hidden: int, std: float, sublayers: int, post_norm: float = 1.0) -> float:
    """The z-score of the current token's own logit with tied, sqrt(hidden)-scaled embeddings (module docstring):
    std*hidden / sqrt(std^2*hidden + sublayers*post_norm^2)."""
    return std * hidden / ((std * std * hidden + sublayers * post_norm * post_norm) ** 0.5)


def apply_recipe(model, recipe: str) -> dict:
    """Adjust a freshly initialised model in place (no random numbers drawn); return what was done.

    ``hf``: nothing (transformers' init as is). ``postnorm-v1``: every text decoder layer's post-sublayer norms
    (``post_attention_layernorm``, ``post_feedforward_layernorm``, ``post_per_layer_input_norm``) get the constant
    weight ``c = max(1, sqrt((std^2*hidden^2 / TARGET_SELF_Z^2 - std^2*hidden) / sublayers))`` instead of 1, so that
    the current token's scaled embedding no longer dominates the residual stream at the tied lm_head."""
    if recipe == "hf":
        return {"recipe": "hf"}
    if recipe != "postnorm-v1":
        raise SystemExit(f"unknown init recipe {recipe!r} (known: {', '.join(RECIPES)})")
    import torch

    layers = _text_layers(model)
    if not layers:
        return {"recipe": "hf", "note": "no Gemma4TextDecoderLayer in the model: transformers' init left as is"}
    emb = model.get_input_embeddings().weight.detach()  # tied to lm_head; std as initialised (row 0, <pad>, is 0)
    hidden, std = int(emb.shape[1]), float(emb[1:1025].float().std())
    names = ["post_attention_layernorm", "post_feedforward_layernorm", "post_per_layer_input_norm"]
    sublayers = sum(1 for layer in layers for n in names if getattr(layer, n, None) is not None)
    c2 = (std * std * hidden * hidden / (TARGET_SELF_Z * TARGET_SELF_Z) - std * std * hidden) / sublayers
    c = max(1.0, c2 ** 0.5 if c2 > 0 else 1.0)
    c = float(torch.tensor(c, dtype=torch.bfloat16).item())  # what the checkpoint stores
    with torch.no_grad():
        for layer in layers:
            for n in names:
                norm = getattr(layer, n, None)
                if norm is not None:
                    norm.weight.fill_(c)
    return {"recipe": "postnorm-v1", "post_norm_weight": c, "sublayers": sublayers, "embedding_std": round(std, 5),
            "self_z_before": round(predicted_self_z(hidden=hidden, std=std, sublayers=sublayers), 2),
            "self_z_after": round(predicted_self_z(hidden=hidden, std=std, sublayers=sublayers, post_norm=c), 2)}


def fingerprint(model, n: int = 2048) -> str:
    """sha256 (16 hex digits) over every parameter's name, shape, dtype and the raw bytes of its first and last
    ``n`` values: the same seed, recipe and config give the same fingerprint, so two leases can tell whether their
    engines loaded the same checkpoint without hashing tens of GB."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        flat = p.detach().reshape(-1)
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}|".encode())
        for part in (flat[:n], flat[-n:]):
            h.update(part.cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


KV_SHARED_K_NORM_SHARD = "model-kv-shared-k-norm.safetensors"


def add_kv_shared_k_norms(ckpt_dir: Path, text_config: dict) -> list[str]:
    """Add ``self_attn.k_norm.weight`` (ones) for every KV-shared text layer that the checkpoint in ``ckpt_dir``
    lacks (module docstring: vLLM requires the key, the layer never reads it); return the added keys.

    Layer ``i`` in ``[n - shared, n)`` gets the shape, dtype and name of layer ``j``'s k_norm, ``j`` the last
    non-shared layer with ``layer_types[j] == layer_types[i]``. A sharded checkpoint gets one extra shard and index
    entries; a single ``model.safetensors`` is rewritten with the added tensors."""
    import re

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    n, shared = text_config.get("num_hidden_layers") or 0, text_config.get("num_kv_shared_layers") or 0
    if not shared:
        return []
    types = text_config["layer_types"]
    index_path, single = ckpt_dir / "model.safetensors.index.json", ckpt_dir / "model.safetensors"
    index = json.loads(index_path.read_text()) if index_path.is_file() else None
    if index is not None:
        file_of = dict(index["weight_map"])
    else:
        with safe_open(str(single), "pt") as f:
            file_of = dict.fromkeys(f.keys(), single.name)
    k_norm = {}  # text layer index -> its k_norm key (not the vision or audio tower's layers)
    for key in file_of:
        m = re.fullmatch(r"(.*)layers\.(\d+)\.self_attn\.k_norm\.weight", key)
        if m and "vision" not in m.group(1) and "audio" not in m.group(1):
            k_norm[int(m.group(2))] = key
    added = {}
    for i in range(n - shared, n):
        same_type = [j for j in range(n - shared) if types[j] == types[i] and j in k_norm]
        if i in k_norm or not same_type:
            continue
        src = k_norm[same_type[-1]]
        with safe_open(str(ckpt_dir / file_of[src]), "pt") as f:
            like = f.get_tensor(src)
        added[src.replace(f"layers.{same_type[-1]}.", f"layers.{i}.")] = torch.ones_like(like)
    if not added:
        return []
    if index is not None:
        save_file(added, str(ckpt_dir / KV_SHARED_K_NORM_SHARD), metadata={"format": "pt"})
        index["weight_map"].update(dict.fromkeys(added, KV_SHARED_K_NORM_SHARD))
        if "total_size" in index.get("metadata", {}):
            index["metadata"]["total_size"] += sum(t.numel() * t.element_size() for t in added.values())
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    else:
        with safe_open(str(single), "pt") as f:
            metadata = f.metadata()
        save_file({**load_file(str(single)), **added}, str(single), metadata=metadata)
    return sorted(added)


def init_and_save(model_dir: Path, *, seed: int, device: str, dtype_name: str, max_shard_size: str,
                  recipe: str = DEFAULT_RECIPE) -> dict:
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
    recipe_info = apply_recipe(model, recipe)
    n_params = sum(p.numel() for p in model.parameters())
    fp = fingerprint(model)
    t_init = time.monotonic() - t0
    for pattern in WEIGHT_FILES:  # an earlier init of another seed
        for old in model_dir.glob(pattern):
            old.unlink()
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=f".{model_dir.name}.weights-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size=max_shard_size)
        cfg = json.loads((model_dir / "config.json").read_text())
        added = add_kv_shared_k_norms(Path(tmp), cfg.get("text_config") or cfg)
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
        "recipe": recipe_info["recipe"],
        "recipe_info": recipe_info,
        "fingerprint": fp,
        "architecture": cls.__name__,
        "parameters": n_params,
        "dtype": dtype_name,
        "device": device,
        "files": written,
        "added_for_engines": added,
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
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, choices=RECIPES,
                    help="postnorm-v1: scaled post-sublayer norms (default); hf: transformers' init as is")
    args = ap.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        print(f"{args.model_dir}: no config.json", file=sys.stderr)
        return 2
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    info = init_and_save(args.model_dir, seed=args.seed, device=device, dtype_name=args.dtype,
                         max_shard_size=args.max_shard_size, recipe=args.recipe)
    print(json.dumps(info, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
