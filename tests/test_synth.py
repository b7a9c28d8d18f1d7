"""`harness model synth`: a real-size config dir with a synthetic tokenizer that both engines can load (dummy weights)."""

import json

from tokenizers import Tokenizer
from typer.testing import CliRunner

from harness.cli.app import app
from harness.definitions import load_definitions
from harness.errors import HarnessError
from harness.synth import MARKER, is_synthetic, resolve_model_path


def test_synth_writes_a_loadable_dummy_model_dir(tmp_path):
    out = tmp_path / "26b"
    r = CliRunner().invoke(app, ["model", "synth", "--model", "26B-A4B", "--out", str(out), "--assistant"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    defs = load_definitions()
    m = defs.model("26B-A4B")
    assert cfg["model_type"] == "gemma4" and cfg["architectures"] == ["Gemma4ForConditionalGeneration"]
    assert cfg["text_config"]["num_experts"] == m.text_config["num_experts"]
    assert cfg["text_config"]["layer_types"] == m.text_config["layer_types"]  # expanded, 30 entries
    assert cfg["eoa_token_id"] == 258883 and cfg["image_token_id"] == 258880  # ids SGLang's processor reads
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json",
              "generation_config.json", MARKER):
        assert (out / f).is_file(), f
    assert is_synthetic(out) and json.loads((out / MARKER).read_text())["weights"] == "dummy"
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tok.get_vocab_size() == cfg["text_config"]["vocab_size"]
    # random token ids survive decode -> encode (what vllm bench serve's random dataset relies on)
    ids = [10, 20, 30000, 262000]
    assert tok.encode(tok.decode(ids)).ids == ids
    assert tok.encode("<|image|>").ids == [258880]
    acfg = json.loads((out / "assistant" / "config.json").read_text())
    assert acfg["architectures"] == ["Gemma4AssistantForCausalLM"] and acfg["backbone_hidden_size"] == 2816


def test_existing_foreign_dir_is_refused_and_outdated_state_dir_rewritten(tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    r = CliRunner().invoke(app, ["model", "synth", "--model", "E2B", "--out", str(foreign)])
    assert isinstance(r.exception, HarnessError) and "pass --force" in str(r.exception)
    assert (foreign / "notes.txt").read_text() == "keep me"
    # the state-dir copy the harness owns is rewritten when the definition changed
    m = load_definitions().model("E2B")
    path, dummy, _ = resolve_model_path(m)
    assert dummy and is_synthetic(path)
    m.hf_config["text_config"]["sliding_window"] = 256
    path2, _, _ = resolve_model_path(m)
    assert path2 == path and json.loads((path / "config.json").read_text())["text_config"]["sliding_window"] == 256


def test_no_assistant_shape_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(app, ["model", "synth", "--model", "31B", "--out", str(tmp_path / "x"), "--assistant"])
    assert isinstance(r.exception, HarnessError) and "no published MTP assistant shape" in str(r.exception)
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_vision_configs_carry_default_output_length_vllm_reads(tmp_path):
    """vLLM 0.22.0 reads vision_config.default_output_length at start-up (transformers 5.6.0 has no default for it);
    a synthetic E4B without it failed to start on the H200 (run 20261127T083641Z-E4B-bab8, vllm mm-images cell)."""
    defs = load_definitions()
    for name in ("31B", "26B-A4B", "E4B", "E2B"):
        m = defs.model(name)
        vc = m.hf_config.get("vision_config")
        assert vc, name
        assert vc["default_output_length"] == m.hf_config["vision_soft_tokens_per_image"], name
    out = tmp_path / "e4b"
    r = CliRunner().invoke(app, ["model", "synth", "--model", "E4B", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["vision_config"]["default_output_length"] == 280


def test_assistant_config_passes_the_gemma4_assistant_validator_rule(tmp_path):
    """transformers >= 5.8.0 validates Gemma4AssistantConfig: text_config.vocab_size_per_layer_input must be 0."""
    out = tmp_path / "26b"
    r = CliRunner().invoke(app, ["model", "synth", "--model", "26B-A4B", "--out", str(out), "--assistant"])
    assert r.exit_code == 0, r.output
    acfg = json.loads((out / "assistant" / "config.json").read_text())
    assert acfg["text_config"]["vocab_size_per_layer_input"] == 0
    assert acfg["text_config"]["hidden_size_per_layer_input"] == 0


def test_outdated_synthetic_assistant_is_rewritten(tmp_path):
    """An assistant written before it shipped its remote-code config class (or from another assistant_config) is
    rewritten on the next synth/resolve; an up-to-date one is left as it is."""
    from harness.synth import _config_digest, synth_model

    m = load_definitions().model("26B-A4B")
    out = tmp_path / "26b"
    a = synth_model(m, out, assistant=True)["assistant"]
    # what an older harness wrote: no module, no auto_map, the marker digest of the bare assistant_config
    (a / "configuration_gemma4_assistant.py").unlink()
    cfg = json.loads((a / "config.json").read_text())
    del cfg["auto_map"]
    (a / "config.json").write_text(json.dumps(cfg))
    marker = json.loads((a / MARKER).read_text())
    marker["config"] = _config_digest(m.assistant_config)
    (a / MARKER).write_text(json.dumps(marker))
    assert synth_model(m, out, assistant=True)["assistant"] == a
    assert "auto_map" in json.loads((a / "config.json").read_text())
    assert (a / "configuration_gemma4_assistant.py").is_file()
    before = (a / "config.json").stat().st_mtime_ns
    synth_model(m, out, assistant=True)
    assert (a / "config.json").stat().st_mtime_ns == before
    m.assistant_config["text_config"]["sliding_window"] = 512
    _, dummy, a2 = resolve_model_path(m, out, assistant=True)  # the path `bench`/`compare` take
    assert dummy and a2 == a
    assert json.loads((a / "config.json").read_text())["text_config"]["sliding_window"] == 512


def test_parity_prompts_tokenize_to_distinct_sequences_without_unk(tmp_path):
    """Every word of the parity prompts is in the synthetic vocabulary: no prompt turns into a run of <unk>, and
    the 20 prompts of v1 are 20 distinct token sequences through the chat template (they were 18, differing mostly
    in length, when every English word was <unk>)."""
    from transformers import PreTrainedTokenizerFast

    from harness.evals.parity import default_prompts_path, load_prompts

    out = tmp_path / "e2b"
    r = CliRunner().invoke(app, ["model", "synth", "--model", "E2B", "--out", str(out)])
    assert r.exit_code == 0, r.output
    tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    prompts, _ = load_prompts(default_prompts_path())
    seqs = []
    for p in prompts.prompts:
        ids = tok.apply_chat_template(p.chat_messages(), add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert tok.unk_token_id not in ids, p.id
        seqs.append(tuple(ids))
    assert len(set(seqs)) == len(prompts.prompts)
    # random token ids still survive decode -> encode, prompt words among them
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    ids = [10, 20, 30000, 262143, 261500]
    assert raw.encode(raw.decode(ids)).ids == ids
    assert json.loads((out / MARKER).read_text())["tokenizer"].startswith("wordlevel-v2:")
