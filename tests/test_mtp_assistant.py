"""The synthetic MTP assistant's config class (harness/hf_remote_code): transformers 5.6.0, the version both engine
environments run, has no ``gemma4_assistant``; the assistant directory ships the class as remote code (docs/mtp.md).

The loading test runs AutoConfig in a subprocess (its own HF modules cache, no ``transformers_modules`` left in this
process) with the transformers of the test environment: ``pip install -e '.[test]'`` installs 5.6.0, the engines'
pin (checked below against scenarios/engine-pins.yaml).
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from harness.definitions import load_definitions
from harness.synth import ASSISTANT_AUTO_CONFIG, ASSISTANT_CONFIG_MODULE, synth_model

ROOT = Path(__file__).resolve().parents[1]

LOAD = r"""
import json, sys
import transformers
from transformers import AutoConfig
from transformers.models.gemma4.configuration_gemma4 import Gemma4TextConfig
c = AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=True)
t = c.text_config
again = type(c).from_dict(c.to_dict())
print(json.dumps({
    "transformers": transformers.__version__,
    "module": type(c).__module__, "class": type(c).__name__, "model_type": c.model_type,
    "text_is_gemma4_text_config": isinstance(t, Gemma4TextConfig),
    "get_text_config_is_text_config": c.get_text_config() is t,
    "top": {k: getattr(c, k) for k in ("architectures", "backbone_hidden_size", "use_ordered_embeddings", "num_centroids",
                                       "centroid_intermediate_top_k", "tie_word_embeddings")},
    "text": {k: getattr(t, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                        "num_key_value_heads", "num_global_key_value_heads", "head_dim", "global_head_dim",
                                        "attention_k_eq_v", "num_kv_shared_layers", "hidden_size_per_layer_input",
                                        "vocab_size_per_layer_input", "vocab_size", "sliding_window", "layer_types",
                                        "max_position_embeddings", "enable_moe_block", "use_double_wide_mlp",
                                        "rope_parameters", "tie_word_embeddings")},
    "round_trip": again.to_dict() == c.to_dict(),
}))
"""

NO_AUTO_MAP = r"""
import sys
from transformers import AutoConfig
try:
    AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=True)
except ValueError as e:
    print("ValueError:", str(e).splitlines()[0])
else:
    print("loaded")
"""


def _run(script: str, path: Path, tmp_path: Path) -> str:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_MODULES_CACHE", None)
    r = subprocess.run([sys.executable, "-c", script, str(path)], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture()
def assistant_dir(tmp_path):
    return synth_model(load_definitions().model("26B-A4B"), tmp_path / "26b", assistant=True)["assistant"]


def test_synthetic_assistant_loads_with_autoconfig_trust_remote_code(assistant_dir, tmp_path):
    pytest.importorskip("transformers", reason="the test extra installs transformers==5.6.0 (pip install -e '.[test]')")
    got = json.loads(_run(LOAD, assistant_dir, tmp_path))
    a = load_definitions().model("26B-A4B").assistant_config
    # the harness's class from the assistant directory, not a built-in one (transformers >= 5.8.0 has one)
    assert got["module"].startswith("transformers_modules.") and got["module"].endswith(".configuration_gemma4_assistant")
    assert got["class"] == "Gemma4AssistantConfig" and got["model_type"] == "gemma4_assistant"
    assert got["text_is_gemma4_text_config"] and got["get_text_config_is_text_config"]
    assert got["top"] == {"architectures": ["Gemma4AssistantForCausalLM"], "backbone_hidden_size": a["backbone_hidden_size"],
                          "use_ordered_embeddings": False, "num_centroids": 2048, "centroid_intermediate_top_k": 32,
                          "tie_word_embeddings": True}
    for k, v in a["text_config"].items():
        if k in got["text"]:
            assert got["text"][k] == v, k
    # not in the definition: Gemma4TextConfig defaults the engines rely on
    assert got["text"]["max_position_embeddings"] == 131072
    assert got["text"]["enable_moe_block"] is False and got["text"]["use_double_wide_mlp"] is False
    assert got["round_trip"]


def test_without_the_remote_code_transformers_5_6_cannot_load_the_assistant(assistant_dir, tmp_path):
    """The failure the remote code fixes: the same config.json without auto_map is an unknown model type."""
    transformers = pytest.importorskip("transformers", reason="the test extra installs transformers==5.6.0")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if "gemma4_assistant" in CONFIG_MAPPING_NAMES:
        pytest.skip(f"transformers {transformers.__version__} has gemma4_assistant built in (>= 5.8.0)")
    cfg = json.loads((assistant_dir / "config.json").read_text())
    del cfg["auto_map"]
    (assistant_dir / "config.json").write_text(json.dumps(cfg))
    out = _run(NO_AUTO_MAP, assistant_dir, tmp_path)
    assert out.startswith("ValueError:") and "gemma4_assistant" in out


def test_test_extra_pins_the_engines_transformers():
    """The loading test is only evidence for the engines if it runs the transformers they run."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    spec = [d for d in extra if d.replace(" ", "").startswith("transformers")]
    assert spec, "pyproject [test] extra must pin transformers"
    pins = yaml.safe_load((ROOT / "scenarios" / "engine-pins.yaml").read_text())["engines"]
    for engine in ("sglang", "vllm"):
        assert spec[0].replace(" ", "") == "transformers" + pins[engine]["pins"]["transformers"]["spec"], engine


def test_assistant_dir_ships_the_module_and_auto_map(assistant_dir):
    cfg = json.loads((assistant_dir / "config.json").read_text())
    assert cfg["auto_map"] == {"AutoConfig": ASSISTANT_AUTO_CONFIG}
    module_file, cls = ASSISTANT_AUTO_CONFIG.split(".")
    shipped = assistant_dir / f"{module_file}.py"
    assert shipped.read_bytes() == ASSISTANT_CONFIG_MODULE.read_bytes()
    src = shipped.read_text()
    assert f"class {cls}(PretrainedConfig)" in src and 'model_type = "gemma4_assistant"' in src
    # imports only transformers (AutoConfig checks a remote module's imports are installed)
    imports = {line.split()[1].split(".")[0] for line in src.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"typing", "transformers"}, imports
