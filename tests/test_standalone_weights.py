"""Quality records made outside a run (`harness parity` / `harness mmlu` with a server the harness starts) say
which random weights the server had: dummy (`--load-format dummy`) or a seeded random-init checkpoint
(`harness model init-weights`), and the report files them under the right weights."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import fake_overrides
from harness.cli.app import app
from harness.synth import MARKER, weights_kind


def _random_init_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rinit"
    r = CliRunner().invoke(app, ["model", "synth", "-m", "26B-A4B", "-o", str(d)])
    assert r.exit_code == 0, r.output
    marker = json.loads((d / MARKER).read_text())
    marker["weights"] = "random-init"  # what `harness model init-weights` records once it has written the weights
    (d / MARKER).write_text(json.dumps(marker))
    assert weights_kind(d) == "random-init"
    return d


def _report(tmp_path: Path, runs: Path) -> str:
    out = tmp_path / "C.md"
    r = CliRunner().invoke(app, ["report", "--runs-dir", str(runs), "--out", str(out), "--no-plots"])
    assert r.exit_code == 0, r.output
    return out.read_text()


def test_parity_with_random_init_weights_is_recorded_and_reported_as_random_init(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_OVERRIDES", str(fake_overrides(tmp_path)))
    d = _random_init_dir(tmp_path)
    runs = tmp_path / "runs"
    out = runs / "parity" / "parity-p.json"
    r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "sglang-patched", "--model", "26B-A4B",
                                 "--model-path", str(d), "--max-tokens", "8", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "random-init weights" in r.output and "dummy (random) weights" not in r.output
    assert "harness parity-floor --model-path DIR" in " ".join(r.output.split())  # where to read a mismatch against
    rec = json.loads(out.read_text())
    for side in ("a", "b"):
        assert rec[side]["weights"] == "random-init"
        assert rec[side]["dummy_weights"] is True  # random of any kind: `harness gate` refuses it
        assert "--load-format" not in rec[side]["environment"]["server_command"]
    text = _report(tmp_path, runs)
    assert "### 26B-A4B · random-init weights" in text
    assert "sglang vs sglang-patched (**random-init weights**)" in text
    assert "dummy weights" not in text.split("## Quality records outside benchmark runs", 1)[1]


def test_older_records_without_weights_are_told_apart_by_the_server_command(tmp_path):
    """Records written before `weights` existed flagged random-init weights as dummy_weights; the server command
    says which: only dummy weights are loaded with --load-format dummy."""
    base = {"kind": "parity", "model": "31B", "n": 2, "matches": 1, "match_rate": 0.5, "per_prompt": [],
            "started_at": "2026-11-27T14:30:08+00:00"}
    side = {"engine": "sglang-patched", "server": "managed", "dummy_weights": True,
            "environment": {"server_command": ["python", "-m", "sglang.launch_server", "--model-path", "/m",
                                               "--tp-size", "2"]}}
    rinit = dict(base, a=copy.deepcopy(side), b=dict(copy.deepcopy(side), engine="sglang-patched-no-ar-fusion"))
    dummy = copy.deepcopy(rinit)
    for s in ("a", "b"):
        dummy[s]["environment"]["server_command"] += ["--load-format", "dummy"]
    dummy["model"] = "E4B"
    runs = tmp_path / "runs"
    (runs / "parity").mkdir(parents=True)
    (runs / "parity" / "parity-rinit.json").write_text(json.dumps(rinit))
    (runs / "parity" / "parity-dummy.json").write_text(json.dumps(dummy))
    text = _report(tmp_path, runs).split("## Quality records outside benchmark runs", 1)[1]
    assert "### 31B · random-init weights" in text and "### E4B · dummy weights" in text
    assert "sglang-patched vs sglang-patched-no-ar-fusion (**random-init weights**)" in text
    assert "sglang-patched vs sglang-patched-no-ar-fusion (**dummy weights**)" in text


def test_a_run_on_random_init_weights_records_their_seed_recipe_and_fingerprint(tmp_path):
    from test_bench_cli import harness, only_run

    ov = fake_overrides(tmp_path)
    d = _random_init_dir(tmp_path)
    marker = json.loads((d / MARKER).read_text())
    marker["init"] = {"seed": 3, "recipe": "postnorm-v1", "parameters": 123, "fingerprint": "0123456789abcdef",
                      "files": ["model.safetensors"], "torch": "2.11.0"}
    (d / MARKER).write_text(json.dumps(marker))
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--model-path", str(d),
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    m = json.loads((only_run(runs) / "manifest.json").read_text())
    assert m["weights"] == "random-init"
    assert m["weights_init"] == {"seed": 3, "recipe": "postnorm-v1", "parameters": 123,
                                 "fingerprint": "0123456789abcdef"}
