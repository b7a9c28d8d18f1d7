"""`harness model init-weights`: seeded random weights in a synthetic directory, loaded for real by every engine
(no --load-format dummy), labelled `weights: random-init` in runs and the report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.synth import MARKER, resolve_model_path, weights_kind

sys.path.insert(0, str(Path(__file__).parent))
from test_report_grouping import cell, manifest, report_of_one_run  # noqa: E402

FAKE_PY = """#!{python}
import json, sys
args = sys.argv[1:]
assert args[:2] == ["-m", "harness.weights_init"], args
d = args[args.index("--model-dir") + 1]
seed = int(args[args.index("--seed") + 1])
if seed == 13:
    print("RuntimeError: CUDA out of memory while building the model", file=sys.stderr)
    sys.exit(1)
open(d + "/model.safetensors", "wb").write(b"x" * 10)
print("progress line")
print(json.dumps({{"weights": "random-init", "seed": seed, "parameters": 5, "bytes": 10, "files": ["model.safetensors"],
                  "dtype": "bfloat16", "device": "cpu", "transformers": "5.6.0", "torch": "2.11.0", "total_s": 0.1,
                  "init_s": 0.1, "architecture": "Gemma4ForConditionalGeneration"}}))
"""


def _fake_python(tmp_path: Path) -> Path:
    p = tmp_path / "fakepy"
    p.write_text(FAKE_PY.format(python=sys.executable))
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p


def _synth(tmp_path: Path) -> Path:
    d = tmp_path / "e2b"
    r = CliRunner().invoke(app, ["model", "synth", "-m", "E2B", "-o", str(d)])
    assert r.exit_code == 0, r.output
    return d


def test_init_weights_marks_the_directory_and_engines_stop_loading_dummy(tmp_path):
    d = _synth(tmp_path)
    assert weights_kind(d) == "dummy"
    r = CliRunner().invoke(app, ["model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", "7",
                                 "--python", str(_fake_python(tmp_path))])
    assert r.exit_code == 0, r.output
    marker = json.loads((d / MARKER).read_text())
    assert marker["weights"] == "random-init" and marker["init"]["seed"] == 7 and marker["model"] == "E2B"
    assert weights_kind(d) == "random-init" and (d / "model.safetensors").is_file()
    from harness.definitions import load_definitions

    path, dummy, _ = resolve_model_path(load_definitions().model("E2B"), d)
    assert path == d and dummy is False
    # launch lines: the real loader (no --load-format dummy), and the run note says what the weights are
    r = CliRunner().invoke(app, ["compare", "-m", "E2B", "--model-path", str(d), "--engines", "sglang,vllm", "-s", "chat",
                                 "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "sglang.launch_server" in r.output and "--load-format" not in r.output
    # MTP: the assistant has no weights, so that is refused with a reason
    r = CliRunner().invoke(app, ["compare", "-m", "E2B", "--model-path", str(d), "--engines", "sglang", "-s", "chat",
                                 "--mtp", "on", "--dry-run"])
    assert r.exit_code != 0 and "random-init weights but its MTP assistant has none" in str(r.exception)


def test_a_failing_interpreter_is_a_clear_error_and_changes_nothing(tmp_path):
    d = _synth(tmp_path)
    from test_bench_cli import harness

    r = harness("model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", "13",
                "--python", str(_fake_python(tmp_path)))
    assert r.returncode == 2
    assert "failed (exit 1)" in r.stderr and "CUDA out of memory" in r.stderr
    assert weights_kind(d) == "dummy" and not (d / "model.safetensors").exists()
    r = harness("model", "init-weights", "-m", "E2B", "--model-path", str(tmp_path / "nope"),
                "--python", str(_fake_python(tmp_path)))
    assert r.returncode == 2 and "not a `harness model synth` directory" in r.stderr


def test_report_labels_random_init_runs(tmp_path):
    rid = "20261128T01-r"
    m = manifest(rid, "abc")
    m.weights = "random-init"
    text = report_of_one_run(tmp_path, m, [cell(rid, True)])
    assert "random-init weights" in text and "RANDOM-INIT WEIGHTS" in text and "DUMMY WEIGHTS" not in text


TORCH_PYTHON = os.environ.get("HARNESS_TORCH_PYTHON")


def tiny_e2b_with_random_weights(tmp_path: Path, python: str, *, tokenizer: bool = False) -> Path:
    """A synthetic E2B directory shrunk to a CPU-sized config (vocabulary 1024), with seeded random weights written
    by the real `harness model init-weights` on the CPU; ``tokenizer``: also a tokenizer of that vocabulary (the
    synthetic one covers the full-size 262,144 ids)."""
    from harness.synth import write_tokenizer

    d = _synth(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    t = cfg["text_config"]
    t.update(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_kv_shared_layers=2, num_attention_heads=2,
             num_key_value_heads=1, head_dim=32, global_head_dim=64, hidden_size_per_layer_input=8, vocab_size=1024,
             vocab_size_per_layer_input=1024,
             layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2)
    cfg["vision_config"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=16)
    cfg["audio_config"] = None
    (d / "config.json").write_text(json.dumps(cfg))
    if tokenizer:
        write_tokenizer(d, 1024, 8192)
    r = CliRunner().invoke(app, ["model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", "0",
                                 "--python", python, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    return d


@pytest.mark.skipif(not TORCH_PYTHON, reason="set HARNESS_TORCH_PYTHON to an interpreter with torch and "
                    "transformers 5.6.0 (CI: the patch CPU venv)")
def test_real_init_gives_a_loadable_checkpoint_with_varied_greedy_answers(tmp_path):
    """The real module on a shrunken E2B config: the checkpoint loads with transformers and greedy answers differ
    between prompts (under --load-format dummy every answer was '<pad>' repeated)."""
    d = tiny_e2b_with_random_weights(tmp_path, TORCH_PYTHON)
    info = json.loads((d / MARKER).read_text())["init"]
    assert info["files"] == ["model.safetensors"] and info["parameters"] > 100_000
    # the fingerprint: the same seed gives the same one, another seed another
    fp = info["fingerprint"]
    assert len(fp) == 16 and int(fp, 16) >= 0
    for seed, same in (("0", True), ("1", False)):
        r = CliRunner().invoke(app, ["model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", seed,
                                     "--python", TORCH_PYTHON, "--device", "cpu"])
        assert r.exit_code == 0, r.output
        assert (json.loads((d / MARKER).read_text())["init"]["fingerprint"] == fp) is same
    r = CliRunner().invoke(app, ["model", "init-weights", "-m", "E2B", "--model-path", str(d), "--seed", "0",
                                 "--python", TORCH_PYTHON, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    probe = (
        "import json, sys, torch\n"
        "from transformers import Gemma4ForConditionalGeneration as M\n"
        "m = M.from_pretrained(sys.argv[1], dtype=torch.bfloat16)\n"
        "outs = [m.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)[0, len(ids):].tolist()\n"
        "        for ids in ([2, 10, 20, 30], [2, 500, 600], [2, 7, 7, 7, 900])]\n"
        "print(json.dumps(outs))\n"
    )
    p = subprocess.run([TORCH_PYTHON, "-c", probe, str(d)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    outs = json.loads(p.stdout.strip().splitlines()[-1])
    assert len({tuple(o) for o in outs}) == 3, outs  # three prompts, three different greedy answers
    assert all(len(set(o)) > 1 for o in outs), outs  # none is one token repeated


@pytest.mark.skipif(not TORCH_PYTHON, reason="set HARNESS_TORCH_PYTHON to an interpreter with torch and "
                    "transformers 5.6.0 (CI: the patch CPU venv)")
def test_kv_shared_layers_get_the_k_norm_that_vllm_requires(tmp_path):
    """transformers saves no self_attn.k_norm for the KV-shared layers (4, 5 of 6 here), vLLM 0.22.0 refuses a
    checkpoint without them: init-weights adds ones shaped like the same layer type's last non-shared k_norm, and
    transformers still loads the directory."""
    d = tiny_e2b_with_random_weights(tmp_path, TORCH_PYTHON)
    info = json.loads((d / MARKER).read_text())["init"]
    added = ["model.language_model.layers.4.self_attn.k_norm.weight",
             "model.language_model.layers.5.self_attn.k_norm.weight"]
    assert info["added_for_engines"] == added and info["files"] == ["model.safetensors"]
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from safetensors import safe_open\n"
        "d = Path(sys.argv[1]); index = d / 'model.safetensors.index.json'\n"
        "files = sorted(set(json.loads(index.read_text())['weight_map'].values())) if index.is_file() "
        "else ['model.safetensors']\n"
        "out = {}\n"
        "for name in files:\n"
        "    with safe_open(str(d / name), 'pt') as f:\n"
        "        for k in f.keys():\n"
        "            if k.startswith('model.language_model.') and k.endswith('self_attn.k_norm.weight'):\n"
        "                t = f.get_tensor(k)\n"
        "                out[k] = [list(t.shape), str(t.dtype), bool((t == 1).all())]\n"
        "from transformers import Gemma4ForConditionalGeneration as M\n"
        "M.from_pretrained(str(d))\n"
        "print(json.dumps(out))\n"
    )
    p = subprocess.run([TORCH_PYTHON, "-c", probe, str(d)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    k_norm = json.loads(p.stdout.strip().splitlines()[-1])
    key = "model.language_model.layers.{}.self_attn.k_norm.weight".format
    assert sorted(k_norm) == [key(i) for i in range(6)]
    # layer_types: sliding, sliding, full, sliding, [sliding, full] shared -> 4 is shaped like 3, 5 like 2
    for i, j in ((4, 3), (5, 2)):
        assert k_norm[key(i)][:2] == k_norm[key(j)][:2] and k_norm[key(i)][2] is True
    assert k_norm[key(2)][0] != k_norm[key(3)][0]  # full and sliding k_norm differ in shape (head_dim 64 vs 32)
    # a sharded checkpoint (as the full-size models are written) gets them as one extra shard listed in the index
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run([TORCH_PYTHON, "-m", "harness.weights_init", "--model-dir", str(d), "--seed", "0", "--device",
                        "cpu", "--max-shard-size", "300KB"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["added_for_engines"] == added and "model-kv-shared-k-norm.safetensors" in out["files"]
    index = json.loads((d / "model.safetensors.index.json").read_text())
    assert {index["weight_map"][k] for k in added} == {"model-kv-shared-k-norm.safetensors"}
    assert len(set(index["weight_map"].values())) > 2 and not (d / "model.safetensors").exists()
    p = subprocess.run([TORCH_PYTHON, "-c", probe, str(d)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == k_norm
