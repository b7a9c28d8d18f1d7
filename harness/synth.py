"""Model directories without weights: a real-size Gemma-4 config, a synthetic tokenizer and a chat template.

Both engines load such a directory with ``--load-format dummy`` (random weights), which is enough for
throughput and latency with ``ignore_eos`` but meaningless for accuracy: every run made from a synthetic
directory is labelled ``weights: dummy`` (the directory carries a ``harness-synth.json`` marker that the run
manifest reads).

The tokenizer is a ``tokenizers`` WordLevel model with ``vocab_size`` entries (``w<id>`` words, whitespace
pre-tokenizer) so that random token ids decode and re-encode to the same length, plus the Gemma-4 special
tokens at their real ids (anchors.md section 4), plus every word of the versioned parity prompts at the top ids
(so that parity prompts are distinct token sequences, not ``<unk>`` runs; the marker's ``tokenizer`` names the
version and a digest of those words, and an outdated directory is rewritten like one of another config). Processor files (image processor, video processor, audio
feature extractor) are written for models with a vision tower, because SGLang 0.5.12 loads the HF processor
for Gemma-4 whenever multimodal is on.

The MTP assistant directory (``--assistant``) also carries its config class as Hugging Face remote code
(``configuration_gemma4_assistant.py`` + ``auto_map``), because transformers 5.6.0, the engines' pin, has no
``gemma4_assistant`` (harness/hf_remote_code/configuration_gemma4_assistant.py, docs/mtp.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from harness import __version__
from harness.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from harness.definitions import ModelDef
from harness.errors import HarnessError
from harness.paths import harness_module_env

MARKER = "harness-synth.json"

# The MTP assistant's config class as Hugging Face remote code (transformers 5.6.0 has no gemma4_assistant).
ASSISTANT_MODEL_TYPE = "gemma4_assistant"
ASSISTANT_CONFIG_MODULE = Path(__file__).parent / "hf_remote_code" / "configuration_gemma4_assistant.py"
ASSISTANT_AUTO_CONFIG = "configuration_gemma4_assistant.Gemma4AssistantConfig"

# Gemma-4 special tokens at their real ids (anchors.md section 4); names are this harness's choice.
SPECIAL_TOKENS: dict[int, str] = {
    0: "<pad>",
    1: "<eos>",
    2: "<bos>",
    3: "<unk>",
    105: "<|turn>",
    106: "<turn|>",
    255999: "<|image>",
    256000: "<|audio>",
    258880: "<|image|>",
    258881: "<|audio|>",
    258882: "<image|>",
    258883: "<audio|>",
    258884: "<|video|>",
}
ROLE_WORDS = {4: "user", 5: "model", 6: "system"}

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }} "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }} "
    "{% elif part['type'] in ['image', 'image_url'] %}<|image|> "
    "{% endif %}{% endfor %}{% endif %}"
    "<turn|> "
    "{% endfor %}"
    "{% if add_generation_prompt %}<|turn>model {% endif %}"
)


def is_synthetic(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def weights_kind(path: str | Path) -> str:
    """``real`` (no synth marker), ``dummy`` (a synthetic dir the engines load with --load-format dummy) or
    ``random-init`` (a synthetic dir with seeded random weights written by ``harness model init-weights``)."""
    marker = read_marker(path)
    if marker is None:
        return "real"
    return str(marker.get("weights") or "dummy")


def init_weights(model_dir: Path, *, python: str, pythonpath: list[str], seed: int = 0, device: str | None = None,
                 timeout_s: float = 3600) -> dict[str, Any]:
    """Write seeded random weights into a synthetic model directory with an interpreter that has torch and
    transformers (``python -m harness.weights_init``; see that module for why), and record them in its marker."""
    import subprocess

    model_dir = Path(model_dir)
    marker = read_marker(model_dir)
    if marker is None:
        raise HarnessError(f"{model_dir}: not a `harness model synth` directory (no {MARKER}); random weights are only "
                           "written into synthetic directories")
    env = harness_module_env(pythonpath)
    argv = [python, "-m", "harness.weights_init", "--model-dir", str(model_dir), "--seed", str(seed)]
    if device:
        argv += ["--device", device]
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"writing random weights into {model_dir} took longer than {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise HarnessError(f"cannot run {python}: {exc}") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise HarnessError(f"writing random weights into {model_dir} failed (exit {proc.returncode}) with "
                           f"{python}:\n{tail}")
    info = json.loads(lines[-1])
    marker.update(weights="random-init", init=info,
                  note="Synthetic config + tokenizer with seeded random weights (transformers' own init, recipe "
                       f"{info.get('recipe', 'hf')}, `harness model init-weights`): every engine loads the same "
                       "checkpoint; text is meaningless.")
    atomic_write_json(model_dir / MARKER, marker)
    return info


def weights_init_summary(path: str | Path | None) -> dict[str, Any] | None:
    """Seed, recipe, parameter count and fingerprint of the random-init weights in ``path`` (None for others)."""
    init = (read_marker(path) or {}).get("init") if path else None
    if not isinstance(init, dict):
        return None
    return {k: init.get(k) for k in ("seed", "recipe", "parameters", "fingerprint")}


def read_marker(path: str | Path) -> dict[str, Any] | None:
    p = Path(path) / MARKER
    if not p.is_file():
        return None
    return json.loads(p.read_text())


def config_sha256(path: str | Path) -> str | None:
    p = Path(path) / "config.json"
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def prompt_words() -> list[str]:
    """Every whitespace-separated word of the versioned parity prompt sets (``scenarios/parity/*.yaml``), sorted.
    The synthetic vocabulary holds them, so that parity prompts tokenize to their own words instead of ``<unk>``:
    with ``w<id>`` words alone every English word was ``<unk>`` and the 20 prompts of v1 were 18 distinct token
    sequences that differed mostly in length (docs/random-init-findings.md, finding 0)."""
    import yaml

    from harness.paths import definitions_dir

    words: set[str] = set()
    for f in sorted((definitions_dir() / "parity").glob("*.yaml")):
        data = yaml.safe_load(f.read_text()) or {}
        for p in data.get("prompts") or []:
            texts = [p.get("prompt") or ""] + [m.get("content") or "" for m in p.get("messages") or []
                                                if isinstance(m.get("content"), str)]
            for t in texts:
                words.update(t.split())
    taken = set(SPECIAL_TOKENS.values()) | set(ROLE_WORDS.values())
    return sorted(w for w in words if w not in taken and not re.fullmatch(r"w\d+", w))


def tokenizer_version() -> str:
    """What the synthetic tokenizer is: the layout version and a digest of the prompt words it carries."""
    return "wordlevel-v2:" + hashlib.sha256("\n".join(prompt_words()).encode()).hexdigest()[:12]


def _vocab(vocab_size: int) -> dict[str, int]:
    """``w<id>`` for every id, the special tokens and role words at their ids, and the parity prompt words at the
    top ids (from ``vocab_size - 1`` down, never more than half of the remaining ids)."""
    vocab = {f"w{i}": i for i in range(vocab_size)}
    reserved = {i for i in {**SPECIAL_TOKENS, **ROLE_WORDS} if i < vocab_size}
    for i, tok in {**SPECIAL_TOKENS, **ROLE_WORDS}.items():
        if i < vocab_size:
            del vocab[f"w{i}"]
            vocab[tok] = i
    words = prompt_words()[: max(0, (vocab_size - len(reserved)) // 2)]
    i = vocab_size - 1
    for w in words:
        while i in reserved:
            i -= 1
        del vocab[f"w{i}"]
        vocab[w] = i
        i -= 1
    return vocab


def write_tokenizer(out: Path, vocab_size: int, max_len: int) -> None:
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from tokenizers import AddedToken
    except ImportError as exc:  # pragma: no cover - tokenizers ships with transformers on every engine host
        raise HarnessError("`harness model synth` needs the `tokenizers` package (pip install tokenizers)") from exc
    tok = Tokenizer(models.WordLevel(vocab=_vocab(vocab_size), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for i, t in sorted(SPECIAL_TOKENS.items()) if i < vocab_size])
    tok.save(str(out / "tokenizer.json"))
    atomic_write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "model_max_length": max_len,
            "padding_side": "left",
            "add_bos_token": False,
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
            "extra_special_tokens": {
                "image_token": "<|image|>",
                "boi_token": "<|image>",
                "eoi_token": "<image|>",
                "audio_token": "<|audio|>",
                "boa_token": "<|audio>",
                "eoa_token": "<audio|>",
            },
        },
    )
    atomic_write_text(out / "chat_template.jinja", CHAT_TEMPLATE + "\n")
    atomic_write_json(
        out / "special_tokens_map.json",
        {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    )


def processor_config(hf_config: dict[str, Any]) -> dict[str, Any]:
    """``processor_config.json`` for Gemma4Processor, with its sub-processors inline (transformers 5 layout)."""
    vc = hf_config.get("vision_config") or {}
    return {
        "processor_class": "Gemma4Processor",
        "image_seq_length": int(hf_config.get("vision_soft_tokens_per_image", 280)),
        "audio_seq_length": 750,
        "audio_ms_per_token": 40,
        "image_processor": {
            "image_processor_type": "Gemma4ImageProcessor",
            "processor_class": "Gemma4Processor",
            "do_convert_rgb": True,
            "do_normalize": False,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.0, 0.0, 0.0],
            "image_std": [1.0, 1.0, 1.0],
            "resample": 3,
            "rescale_factor": 1 / 255,
            "patch_size": int(vc.get("patch_size", 16)),
            "pooling_kernel_size": int(vc.get("pooling_kernel_size", 3)),
            "max_soft_tokens": int(hf_config.get("vision_soft_tokens_per_image", 280)),
        },
        "video_processor": {
            "video_processor_type": "Gemma4VideoProcessor",
            "processor_class": "Gemma4Processor",
            "patch_size": int(vc.get("patch_size", 16)),
            "pooling_kernel_size": int(vc.get("pooling_kernel_size", 3)),
        },
        "feature_extractor": {
            "feature_extractor_type": "Gemma4AudioFeatureExtractor",
            "processor_class": "Gemma4Processor",
        },
    }


def synth_model(model: ModelDef, out: Path, *, assistant: bool = False, force: bool = False) -> dict[str, Path]:
    """Write the model directory (and the assistant's, with ``assistant=True``); return their paths."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        marker = read_marker(out) or {}
        if (marker.get("model") == model.name and marker.get("config") == _config_digest(model.hf_config)
                and marker.get("tokenizer") == tokenizer_version()):
            paths = {"model": out}
            if assistant:
                # rewritten when missing or written from another assistant_config / remote-code module
                if (read_marker(out / "assistant") or {}).get("config") != _assistant_digest(model):
                    _write_assistant(model, out / "assistant")
                paths["assistant"] = out / "assistant"
            return paths
        if not force:
            raise HarnessError(f"{out} exists and is not an up-to-date synthetic {model.name} directory; pass --force to rewrite it")
    final = out
    out = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        cfg = _config_json(model.hf_config)
        atomic_write_json(out / "config.json", cfg)
        text = cfg["text_config"]
        atomic_write_json(
            out / "generation_config.json",
            {"bos_token_id": cfg.get("bos_token_id", 2), "eos_token_id": cfg.get("eos_token_id", [1, 106]),
             "pad_token_id": cfg.get("pad_token_id", 0)},
        )
        write_tokenizer(out, int(text["vocab_size"]), int(text.get("max_position_embeddings", 131072)))
        if cfg.get("vision_config"):
            pc = processor_config(cfg)
            atomic_write_json(out / "processor_config.json", pc)
            atomic_write_json(out / "preprocessor_config.json", pc["image_processor"])
        if assistant:
            _write_assistant(model, out / "assistant")
        atomic_write_json(
            out / MARKER,
            {
                "model": model.name,
                "hf_repo": model.hf_repo,
                "weights": "dummy",
                "config": _config_digest(model.hf_config),
                "tokenizer": tokenizer_version(),
                "harness_version": __version__,
                "note": "Synthetic config + tokenizer for --load-format dummy. Random weights: text is meaningless.",
            },
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    paths = {"model": final}
    if assistant:
        paths["assistant"] = final / "assistant"
    return paths


def _write_assistant(model: ModelDef, out: Path) -> Path:
    if not model.assistant_config:
        raise HarnessError(
            f"model {model.name!r} has no published MTP assistant shape in its definition "
            f"(scenarios/models/{model.name}.yaml: assistant_config); MTP with a dummy assistant is only "
            f"available where that shape is known"
        )
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config_json(model.assistant_config)
    if cfg.get("model_type") == ASSISTANT_MODEL_TYPE:
        # transformers 5.6.0 (the engines' pin) has no gemma4_assistant: ship the config class as remote code
        # (the engines' mtp_args pass --trust-remote-code); see the module's docstring
        cfg.setdefault("auto_map", {"AutoConfig": ASSISTANT_AUTO_CONFIG})
        atomic_write_bytes(out / ASSISTANT_CONFIG_MODULE.name, ASSISTANT_CONFIG_MODULE.read_bytes())
    atomic_write_json(out / "config.json", cfg)
    write_tokenizer(out, int(cfg["text_config"]["vocab_size"]), 131072)
    atomic_write_json(out / MARKER, {"model": model.name + "-assistant", "weights": "dummy",
                                     "config": _assistant_digest(model), "harness_version": __version__})
    return out


def _assistant_digest(model: ModelDef) -> str:
    """The assistant_config digest, plus the remote-code module it ships, so that a change of either rewrites it."""
    module = hashlib.sha256(ASSISTANT_CONFIG_MODULE.read_bytes()).hexdigest()
    return _config_digest({"assistant_config": model.assistant_config, "remote_code": module})


def _config_json(hf_config: dict[str, Any]) -> dict[str, Any]:
    cfg = json.loads(json.dumps(hf_config))
    if "torch_dtype" in cfg:
        cfg.setdefault("dtype", cfg.pop("torch_dtype"))
    cfg.setdefault("dtype", "bfloat16")
    tc = cfg.get("text_config") or {}
    tc.setdefault("dtype", cfg["dtype"])
    # transformers' strict dataclass rejects unknown keys on some sub-configs; drop the harness-only ones
    return cfg


def _config_digest(hf_config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(hf_config, sort_keys=True).encode()).hexdigest()[:16]


def default_synth_dir(model_name: str) -> Path:
    from harness.paths import state_dir

    return state_dir() / "models" / model_name


def resolve_model_path(
    model: ModelDef, explicit: str | Path | None = None, *, assistant: bool = False, assistant_path: str | Path | None = None
) -> tuple[Path, bool, Path | None]:
    """(model dir, dummy weights?, assistant dir or None). ``dummy`` means the engines load it with
    --load-format dummy; ``weights_kind(path)`` tells real, dummy and random-init apart.

    Order: an explicit path; the definition's ``path`` (real weights); else the synthetic directory under the
    state dir, written on first use. A directory with the synth marker holds dummy weights unless
    ``harness model init-weights`` wrote random-init weights into it.
    """
    if explicit is not None:
        path = Path(explicit)
        if not (path / "config.json").is_file():
            raise HarnessError(f"--model-path {path}: no config.json there")
    elif model.path:
        path = Path(model.path)
        if not (path / "config.json").is_file():
            raise HarnessError(f"model {model.name}: path {path} from its definition has no config.json")
    else:
        path = default_synth_dir(model.name)
        # the harness owns this directory: an outdated synthetic config is rewritten
        synth_model(model, path, assistant=assistant, force=is_synthetic(path))
    kind = weights_kind(path)
    dummy = kind == "dummy"
    a_path: Path | None = Path(assistant_path) if assistant_path else None
    if assistant and a_path is None:
        if kind == "random-init":
            raise HarnessError(f"{path} holds random-init weights but its MTP assistant has none: MTP runs take dummy "
                               "weights (a fresh `harness model synth` directory) or a real --assistant-path")
        if dummy:
            a_path = synth_model(model, path, assistant=True)["assistant"]
        else:
            raise HarnessError(f"MTP with real weights needs --assistant-path (the {model.assistant_repo} checkpoint)")
    return path, dummy, a_path
