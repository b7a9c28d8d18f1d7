from pathlib import Path

import pytest
import yaml

from harness.definitions import DefinitionError, load_definitions
from harness.paths import definitions_dir


def copy_defs(tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "defs"
    shutil.copytree(definitions_dir(), dst)
    return dst


def test_shipped_definitions_load():
    d = load_definitions()
    assert set(d.models) == {"31B", "26B-A4B", "E4B", "E2B"}
    assert {"chat", "summarization", "decode-burst", "mm-images", "prefill-3k", "balanced-500", "long-prefill-7k"} <= set(d.scenarios)
    assert set(d.engines) == {"sglang", "sglang-patched", "vllm", "sglang-patched-no-ar-fusion", "sglang-patched-no-custom-ar", "sglang-patched-yoco",
                             "sglang-patched-chunk8192", "sglang-patched-no-moe-default", "sglang-patched-no-i32-offsets",
                             "sglang-patched-no-swa-prefill-tile", "sglang-patched-no-full-attn-prefill",
                             "sglang-patched-swa-metadata-sync", "sglang-patched-qkv-norm-per-token",
                             "sglang-patched-router-input-eager", "sglang-patched-qkv-per-token-router-eager",
                             "sglang-patched-mixed-chunk"}
    # variants are the base profile plus their own keys (lists replaced)
    base, off = d.engine("sglang-patched"), d.engine("sglang-patched-no-ar-fusion")
    assert off.extends == "sglang-patched" and off.overlay == "patch-stack" and off.env == base.env
    assert off.launch == base.launch and off.default_args == ["--enforce-disable-flashinfer-allreduce-fusion"]
    assert d.engine("sglang-patched-no-custom-ar").default_args == ["--disable-custom-all-reduce"]
    assert d.engine("sglang-patched-chunk8192").default_args == ["--chunked-prefill-size", "8192"]
    assert d.engine("sglang-patched-mixed-chunk").default_args == ["--enable-mixed-chunk"]
    # the same-stack control of patch 0023: the base profile with its switch off
    ctl = d.engine("sglang-patched-no-moe-default")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_MOE_SCALED_DEFAULT_CONFIG": "0"} and ctl.default_args == base.default_args
    # and of patch 0024
    ctl = d.engine("sglang-patched-no-i32-offsets")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_EXTEND_ATTN_I32_OFFSETS": "0"} and ctl.default_args == base.default_args
    # and of patch 0026
    ctl = d.engine("sglang-patched-no-swa-prefill-tile")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_EXTEND_ATTN_SWA_PREFILL_TILE": "0"} and ctl.default_args == base.default_args
    # and of patches 0028-0030 together
    ctl = d.engine("sglang-patched-no-full-attn-prefill")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_EXTEND_ATTN_SKIP_EMPTY_BLOCKS": "0",
                            "SGLANG_EXTEND_ATTN_I32_KV_SLOTS": "0", "SGLANG_EXTEND_ATTN_HD512_PREFILL_TILE": "0"}
    assert ctl.default_args == base.default_args
    # and of patches 0031, 0032 and 0033
    ctl = d.engine("sglang-patched-swa-metadata-sync")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_TRITON_SWA_METADATA_NO_SYNC": "0"}
    ctl = d.engine("sglang-patched-qkv-norm-per-token")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_GEMMA4_QKV_NORM_PER_HEAD": "0"} and ctl.default_args == base.default_args
    ctl = d.engine("sglang-patched-router-input-eager")
    assert ctl.env_vars == {**base.env_vars, "SGLANG_GEMMA4_FUSED_ROUTER_INPUT": "0"} and ctl.default_args == base.default_args
    ctl = d.engine("sglang-patched-qkv-per-token-router-eager")  # the pair 0032 + 0033
    assert ctl.env_vars == {**base.env_vars, "SGLANG_GEMMA4_QKV_NORM_PER_HEAD": "0", "SGLANG_GEMMA4_FUSED_ROUTER_INPUT": "0"}
    assert ctl.default_args == base.default_args
    chat = d.scenario("chat")
    assert (chat.input_len, chat.output_len, chat.num_prompts, chat.max_concurrency) == (1000, 1000, 80, 32)
    summ = d.scenario("summarization")
    assert (summ.input_len, summ.output_len, summ.max_concurrency) == (8000, 1000, 64)
    mm = d.scenario("mm-images")
    assert mm.api == "chat" and mm.images.count == 6 and (mm.images.width, mm.images.height) == (480, 480)
    moe = d.model("26B-A4B")
    assert moe.text_config["num_experts"] == 128 and moe.text_config["top_k_experts"] == 8
    # layer pattern expanded: 25 sliding : 5 full, last layer full
    lt = moe.text_config["layer_types"]
    assert len(lt) == 30 and lt.count("full_attention") == 5 and lt[-1] == "full_attention"
    assert d.model("E2B").text_config["layer_types"].count("full_attention") == 7
    assert d.model("E4B").text_config["num_kv_shared_layers"] == 18


def test_malformed_scenario_names_file_field_and_allowed_values(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "scenarios" / "chat.yaml"
    data = yaml.safe_load(p.read_text())
    data["api"] = "chatty"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError) as ei:
        load_definitions(root)
    msg = str(ei.value)
    assert "chat.yaml" in msg and "'api'" in msg and "'completions' or 'chat'" in msg and "chatty" in msg


def test_unknown_field_and_bad_number(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "scenarios" / "chat.yaml"
    data = yaml.safe_load(p.read_text())
    data["num_prompt"] = 3
    data["input_len"] = -1
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError) as ei:
        load_definitions(root)
    msg = str(ei.value)
    assert "'num_prompt': unknown field" in msg
    assert "'input_len'" in msg and "greater than 0" in msg


def test_invalid_yaml_and_name_mismatch(tmp_path):
    root = copy_defs(tmp_path)
    (root / "scenarios" / "chat.yaml").write_text("name: chat\napi: [unclosed\n")
    with pytest.raises(DefinitionError, match="chat.yaml: not valid YAML"):
        load_definitions(root)
    root2 = copy_defs(tmp_path / "b")
    p = root2 / "scenarios" / "chat.yaml"
    p.write_text(p.read_text().replace("name: chat", "name: kitchen"))
    with pytest.raises(DefinitionError, match="must equal the file name 'chat'"):
        load_definitions(root2)


def test_mm_scenario_consistency(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "scenarios" / "mm-images.yaml"
    data = yaml.safe_load(p.read_text())
    data["api"] = "completions"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError, match="random-mm.*needs api 'chat'"):
        load_definitions(root)


def test_unknown_model_engine_scenario_list_known_ones():
    d = load_definitions()
    with pytest.raises(DefinitionError, match=r"unknown model 'gemma-9'; known models: 26B-A4B, 31B, E2B, E4B"):
        d.model("gemma-9")
    with pytest.raises(DefinitionError, match="unknown engine 'trt'"):
        d.engine("trt")
    with pytest.raises(DefinitionError, match="unknown scenario"):
        d.scenario("nope")


def test_model_refers_to_unknown_scenario(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "models" / "E2B.yaml"
    data = yaml.safe_load(p.read_text())
    data["scenarios"].append("does-not-exist")
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError, match="E2B.yaml: field 'scenarios': unknown scenario 'does-not-exist'"):
        load_definitions(root)


def test_layer_types_length_checked(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "models" / "31B.yaml"
    data = yaml.safe_load(p.read_text())
    data["hf_config"]["text_config"]["num_hidden_layers"] = 59
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError, match="layer_types has 60 entries but num_hidden_layers is 59"):
        load_definitions(root)


def test_overrides_merge_and_add(tmp_path, monkeypatch):
    ov = tmp_path / "local.yaml"
    ov.write_text(yaml.safe_dump({
        "engines": {"vllm": {"default_args": ["--gpu-memory-utilization", "0.85"], "python": "/opt/vllm/bin/python"}},
        "scenarios": {"tiny": {"api": "completions", "dataset": "random", "input_len": 8, "output_len": 8, "num_prompts": 2}},
    }))
    d = load_definitions(overrides=ov)
    assert d.engine("vllm").default_args == ["--gpu-memory-utilization", "0.85"]
    assert d.engine("vllm").python == "/opt/vllm/bin/python"
    assert d.engine("vllm").family == "vllm"  # untouched fields survive the merge
    assert d.scenario("tiny").num_prompts == 2
    monkeypatch.setenv("HARNESS_OVERRIDES", str(ov))
    assert load_definitions().engine("vllm").python == "/opt/vllm/bin/python"


def test_overrides_unknown_key(tmp_path):
    ov = tmp_path / "bad.yaml"
    ov.write_text("enignes: {}\n")
    with pytest.raises(DefinitionError, match="unknown top-level key"):
        load_definitions(overrides=ov)


def test_vision_scenario_skipped_for_model_without_tower(tmp_path):
    root = copy_defs(tmp_path)
    p = root / "models" / "E2B.yaml"
    data = yaml.safe_load(p.read_text())
    data["hf_config"]["vision_config"] = None
    p.write_text(yaml.safe_dump(data))
    d = load_definitions(root)
    scs, skipped = d.scenarios_for(d.model("E2B"))
    assert "mm-images" in skipped and "vision" in skipped["mm-images"]
    assert "mm-images" not in [s.name for s in scs]


def _engine_yaml(dst, name, body):
    (dst / "engines" / f"{name}.yaml").write_text(f"name: {name}\n" + body)


def test_engine_extends_errors_name_the_file(tmp_path):
    dst = copy_defs(tmp_path)
    _engine_yaml(dst, "orphan", "extends: nope\n")
    with pytest.raises(DefinitionError, match=r"orphan.yaml: field 'extends': unknown engine profile 'nope'"):
        load_definitions(dst)
    _engine_yaml(dst, "orphan", "extends: loop-b\n")
    _engine_yaml(dst, "loop-b", "extends: orphan\n")
    with pytest.raises(DefinitionError, match="makes a cycle"):
        load_definitions(dst)


def test_engine_extends_chain_merges_env_vars(tmp_path):
    dst = copy_defs(tmp_path)
    _engine_yaml(dst, "v1", "extends: vllm\nenv_vars: {A: '1'}\n")
    _engine_yaml(dst, "v2", "extends: v1\ndescription: two deep\nenv_vars: {B: '2'}\n")
    d = load_definitions(dst)
    v2 = d.engine("v2")
    assert v2.family == "vllm" and v2.extends == "v1" and v2.description == "two deep"
    assert v2.env_vars == {"VLLM_SERVER_DEV_MODE": "1", "A": "1", "B": "2"}
    assert d.engine("v1").description == ""  # a description is not inherited
