"""Command construction for every engine profile x mode (dummy/real weights, MTP on/off, text-only/multimodal)."""

import json
import os
from pathlib import Path

import pytest

from harness.definitions import load_definitions
from harness.engines import build_launch
from harness.errors import HarnessError
from harness.loadgen import bench_command


@pytest.fixture()
def defs():
    return load_definitions()


def opt(argv, flag):
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
@pytest.mark.parametrize("mtp", [False, True])
@pytest.mark.parametrize("dummy", [False, True])
def test_launch_matrix(defs, engine, mtp, dummy, tmp_path):
    m = defs.model("26B-A4B")
    plan = build_launch(defs, engine, m, "/models/26b", dummy=dummy, mtp=mtp, assistant_path="/models/26b-assistant", port=31000)
    a = plan.argv
    assert plan.base_url == "http://127.0.0.1:31000"
    assert ("--load-format" in a and opt(a, "--load-format") == "dummy") == dummy
    if engine == "sglang":
        assert a[1:3] == ["-m", "sglang.launch_server"]
        assert opt(a, "--model-path") == "/models/26b" and opt(a, "--port") == "31000"
        assert opt(a, "--served-model-name") == "gemma-4-26B-A4B-it"
        if mtp:
            assert opt(a, "--speculative-algorithm") == "NEXTN"
            assert opt(a, "--speculative-draft-model-path") == "/models/26b-assistant"
            assert (opt(a, "--speculative-num-steps"), opt(a, "--speculative-num-draft-tokens"), opt(a, "--speculative-eagle-topk")) == ("3", "4", "1")
        else:
            assert "--speculative-algorithm" not in a
    else:
        assert a[1:5] == ["-m", "vllm.entrypoints.cli.main", "serve", "/models/26b"]
        assert plan.env["VLLM_SERVER_DEV_MODE"] == "1"
        assert json.loads(opt(a, "--limit-mm-per-prompt")) == {"image": 0, "audio": 0, "video": 0}
        if mtp:
            cfg = json.loads(opt(a, "--speculative-config"))
            assert cfg == {"method": "mtp", "model": "/models/26b-assistant", "num_speculative_tokens": 3}
        else:
            assert "--speculative-config" not in a


def test_multimodal_session_drops_text_only_limits(defs):
    plan = build_launch(defs, "vllm", defs.model("26B-A4B"), "/m", dummy=True, text_only=False, port=1)
    assert "--limit-mm-per-prompt" not in plan.argv


def test_patched_sglang_enables_multimodal_only_for_image_sessions(defs, tmp_path):
    tree = tmp_path / "tree"
    (tree / "python" / "sglang").mkdir(parents=True)
    (tree / ".harness-patchstack.json").write_text(json.dumps({"schema": 1, "stack_hash": "0" * 64}))
    m = defs.model("E4B")
    for engine in ("sglang-patched", "sglang-patched-yoco"):
        text = build_launch(defs, engine, m, "/m", dummy=True, text_only=True, port=1, patched_tree=tree)
        mm = build_launch(defs, engine, m, "/m", dummy=True, text_only=False, port=1, patched_tree=tree)
        assert "--enable-multimodal" not in text.argv and mm.argv[-1] == "--enable-multimodal"
    yoco = build_launch(defs, "sglang-patched-yoco", m, "/m", dummy=True, port=1, patched_tree=tree)
    assert "--kv-sharing-fast-prefill" in yoco.argv
    # the unpatched engine has multimodal on by default: nothing added
    base = build_launch(defs, "sglang", m, "/m", dummy=True, text_only=False, port=1)
    assert "--enable-multimodal" not in base.argv


def test_mtp_requires_assistant(defs):
    with pytest.raises(HarnessError, match="needs an assistant checkpoint"):
        build_launch(defs, "sglang", defs.model("31B"), "/m", dummy=True, mtp=True, port=1)


def test_patched_profile_needs_tree_and_overlays_it(defs, tmp_path, monkeypatch):
    with pytest.raises(HarnessError, match="needs the patched SGLang tree"):
        build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1, patched_tree=tmp_path / "nope")
    (tmp_path / "tree" / "python" / "sglang").mkdir(parents=True)
    with pytest.raises(HarnessError, match="no completed patch application"):
        build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1, patched_tree=tmp_path / "tree")
    from harness.patchstack import stack_hash

    marker = tmp_path / "tree" / ".harness-patchstack.json"
    marker.write_text(json.dumps({"stack_hash": "0" * 64}))
    # an explicit tree is used as it is; the default tree (by stack hash) must match the current series
    build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1, patched_tree=tmp_path / "tree")
    import harness.engines as eng

    monkeypatch.setattr(eng, "patched_tree_default", lambda: tmp_path / "tree")
    with pytest.raises(HarnessError, match="re-run `harness patches apply"):
        build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1)
    marker.write_text(json.dumps({"stack_hash": stack_hash()}))
    build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1)
    plan = build_launch(defs, "sglang-patched", defs.model("26B-A4B"), "/m", dummy=True, port=1, patched_tree=tmp_path / "tree")
    assert plan.env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "tree" / "python")
    base = build_launch(defs, "sglang", defs.model("26B-A4B"), "/m", dummy=True, port=1)
    assert "PYTHONPATH" not in base.env  # the baseline environment is never changed


def test_extra_args_and_tp(defs):
    plan = build_launch(defs, "sglang", defs.model("31B"), "/m", dummy=False, port=1, tp=2, extra_args=["--mem-fraction-static", "0.8"])
    assert opt(plan.argv, "--tp-size") == "2" and plan.argv[-2:] == ["--mem-fraction-static", "0.8"]


def test_bench_command_flags(defs, tmp_path):
    chat = defs.scenario("chat")
    cmd = bench_command(defs.loadgen, chat, python="py", base_url="http://h:1", served_model_name="s", tokenizer="/tok",
                        result_dir=tmp_path, result_filename="r.json", metadata={"engine": "vllm", "scenario": "chat"})
    assert cmd[:5] == ["py", "-m", "vllm.entrypoints.cli.main", "bench", "serve"]
    assert opt(cmd, "--backend") == "openai" and opt(cmd, "--temperature") == "0.0"
    assert opt(cmd, "--percentile-metrics") == "ttft,tpot,itl,e2el" and opt(cmd, "--metric-percentiles") == "50,90,99"
    assert (opt(cmd, "--random-input-len"), opt(cmd, "--random-output-len"), opt(cmd, "--num-prompts"), opt(cmd, "--max-concurrency")) == ("1000", "1000", "80", "32")
    assert opt(cmd, "--random-range-ratio") == "0.0" and "--save-result" in cmd and "--save-detailed" in cmd
    i = cmd.index("--metadata")
    assert cmd[i + 1:i + 3] == ["engine=vllm", "scenario=chat"]
    mm = bench_command(defs.loadgen, defs.scenario("mm-images"), python="py", base_url="http://h:1", served_model_name="s",
                       tokenizer="/tok", result_dir=tmp_path, result_filename="r.json", metadata={}, save=False)
    assert opt(mm, "--backend") == "openai-chat" and opt(mm, "--endpoint") == "/v1/chat/completions"
    assert opt(mm, "--dataset-name") == "random-mm" and opt(mm, "--random-mm-base-items-per-request") == "6"
    assert opt(mm, "--random-mm-bucket-config") == "{(480, 480, 1): 1.0}"
    assert "--save-result" not in mm


def test_free_port_leaves_room_for_sglangs_derived_grpc_port():
    """SGLang refuses --port P when P + 10000 > 65535 (seen on the GPU host with a kernel-chosen port 58831)."""
    import random
    import socket

    from harness import engines

    for seed in range(50):
        p = engines.free_port(rng=random.Random(seed))
        assert engines.PORT_RANGE[0] <= p <= engines.PORT_RANGE[1] and p + 10000 <= 65535
    # a port whose derived port is taken is not handed out
    rng = random.Random(7)
    first = random.Random(7).randint(*engines.PORT_RANGE)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", first + 10000))
        assert engines.free_port(rng=rng) != first


def test_launch_ports_are_below_sglangs_limit(defs):
    m = defs.model("26B-A4B")
    for _ in range(20):
        plan = build_launch(defs, "sglang", m, "/m", dummy=True)
        assert plan.port + 10000 <= 65535


def test_variant_gets_the_model_args_of_its_base(defs):
    m = defs.model("26B-A4B").model_copy(update={"engine_args": {"sglang-patched": ["--base-only"], "sglang": ["--family"]}})
    from harness.engines import model_engine_args

    assert model_engine_args(defs, m, defs.engine("sglang-patched-no-ar-fusion")) == ["--base-only"]
    assert model_engine_args(defs, m, defs.engine("sglang")) == ["--family"]
    m2 = m.model_copy(update={"engine_args": {"sglang": ["--family"]}})
    assert model_engine_args(defs, m2, defs.engine("sglang-patched-yoco")) == ["--family"]


@pytest.mark.parametrize("engine", ["sglang", "sglang-patched", "sglang-patched-yoco", "vllm"])
def test_mtp_adds_trust_remote_code_and_sglang_draft_context_env_only(defs, engine, tmp_path):
    """MTP on = MTP off + the profile's mtp_args (with --trust-remote-code, for the assistant's remote-code config
    class) + for SGLang SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1 (the FROZEN_KV_MTP draft gets the target's
    context length); nothing else differs, and neither mode caps the target's context length."""
    tree = tmp_path / "tree"
    (tree / "python" / "sglang").mkdir(parents=True)
    (tree / ".harness-patchstack.json").write_text(json.dumps({"schema": 1, "stack_hash": "0" * 64}))
    m = defs.model("26B-A4B")
    kw = dict(dummy=True, assistant_path="/models/26b-assistant", port=31000, patched_tree=tree)
    off = build_launch(defs, engine, m, "/models/26b", mtp=False, **kw)
    on = build_launch(defs, engine, m, "/models/26b", mtp=True, **kw)
    assert "--trust-remote-code" in on.argv and "--trust-remote-code" not in off.argv
    block = [a.replace("{assistant_path}", "/models/26b-assistant") for a in defs.engine(engine).mtp_args]
    i = on.argv.index(block[0])
    assert on.argv[i:i + len(block)] == block
    assert on.argv[:i] + on.argv[i + len(block):] == off.argv
    for plan in (on, off):
        assert not {"--context-length", "--max-model-len", "--max-running-requests"} & set(plan.argv)
    if engine.startswith("sglang"):
        assert on.env == {**off.env, "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN": "1"}
        assert "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN" not in off.env
    else:
        assert on.env == off.env
