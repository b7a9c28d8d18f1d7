"""harness.profile_layers and `harness profile layers`: an attention kernel's time split by layer type."""

import gzip
import json
import random

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli.app import app
from harness.errors import HarnessError
from harness.profile_layers import attention_layer_split

S, F = "sliding_attention", "full_attention"
SIX = [S, S, S, S, S, F]
GEMMA_26B = SIX * 5  # 26B-A4B's layer_types


def write_trace(path, layer_types, forwards, decode_launches=7):
    """``forwards`` forwards of one ``_fwd_kernel`` launch per layer (sliding 10 us x (forward + 1), full 100 us x
    (forward + 1); the first launch of forward f has grid [f + 1, 16, 8]), a GEMM after each, a decode attention
    kernel with more time but ``decode_launches`` launches, host events and a memcpy; written out of time order."""
    ev, ts = [], 0
    for f in range(forwards):
        for i, t in enumerate(layer_types):
            dur = (10 if t == S else 100) * (f + 1)
            ev.append({"ph": "X", "cat": "kernel", "name": "_fwd_kernel", "ts": ts, "dur": dur,
                       "args": {"grid": [f + 1, 16, 8 + i]}})
            ev.append({"ph": "X", "cat": "kernel", "name": "nvjet_tst_gemm", "ts": ts + dur, "dur": 500.0})
            ts += dur + 600
    ev += [{"ph": "X", "cat": "kernel", "name": "_fwd_kernel_stage2", "ts": ts + k, "dur": 1000.0}
           for k in range(decode_launches)]
    ev += [{"ph": "X", "cat": "cpu_op", "name": "_fwd_kernel", "ts": 1, "dur": 99999.0},  # host time, not a launch
           {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD", "ts": 2, "dur": 5.0},
           {"ph": "i", "cat": "kernel", "name": "_fwd_kernel", "ts": 3}]
    random.Random(0).shuffle(ev)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as fh:
        json.dump({"traceEvents": ev}, fh)
    return path


@pytest.mark.parametrize("name", ["x-TP-0.trace.json", "x-TP-0.trace.json.gz"])
def test_split_by_layer_type_and_forward(tmp_path, name):
    r = attention_layer_split(write_trace(tmp_path / name, SIX, 3), SIX)
    assert r["kernel"] == "_fwd_kernel" and r["picked"] == "auto" and r["layers"] == 6 and r["why"] is None
    assert r["trace"] == name
    s = r["split"]
    assert s["launches"] == 18 and s["forwards"] == 3 and s["us"] == 900.0
    assert s["by_type"] == {
        S: {"layers": 5, "launches": 15, "us": 300.0, "us_per_launch": 20.0, "share": 0.3333},
        F: {"layers": 1, "launches": 3, "us": 600.0, "us_per_launch": 200.0, "share": 0.6667},
    }
    assert s["per_forward"] == [{"forward": f, "grid": [f + 1, 16, 8],
                                 "us_per_launch": {S: 10.0 * (f + 1), F: 100.0 * (f + 1)}} for f in range(3)]


def test_no_split_with_a_draft_model(tmp_path):
    """MTP: the draft's launches would be counted as layers; the split refuses, even where the counts divide."""
    r = attention_layer_split(write_trace(tmp_path / "t.json", SIX, 3), SIX, draft=True)
    assert r["split"] is None and r["why"].startswith("MTP on: the draft model's attention launches interleave")


def test_named_kernel_and_kernels_that_do_not_fit(tmp_path):
    p = write_trace(tmp_path / "t.json.gz", SIX, 3)
    # a kernel named outright, even outside the attention family, is split when its count fits
    r = attention_layer_split(p, SIX, kernel="nvjet_tst_gemm")
    assert r["picked"] == "named" and r["split"]["by_type"][F] == {"layers": 1, "launches": 3, "us": 1500.0,
                                                                    "us_per_launch": 500.0, "share": 0.1667}
    r = attention_layer_split(p, SIX, kernel="_fwd_kernel_stage2")
    assert r["split"] is None and r["kernel"] == "_fwd_kernel_stage2"
    assert r["why"] == "`_fwd_kernel_stage2`: 7 launches, not a positive multiple of 6 layers"
    assert attention_layer_split(p, SIX, kernel="absent")["why"] == "`absent`: 0 launches, not a positive multiple of 6 layers"
    # 18 launches of _fwd_kernel are no multiple of 4 layers: no kernel fits, every candidate is named, most time first
    r = attention_layer_split(p, [S, S, S, F])
    assert r["split"] is None and r["kernel"] is None and r["picked"] == "auto"
    assert r["why"] == ("`_fwd_kernel_stage2`: 7 launches, `_fwd_kernel`: 18 launches, "
                        "not a positive multiple of 4 layers")
    # a decode kernel whose count fits and has the most time is picked before the prefill kernel
    r = attention_layer_split(write_trace(tmp_path / "d.json", SIX, 3, decode_launches=12), SIX)
    assert r["kernel"] == "_fwd_kernel_stage2" and r["split"]["forwards"] == 2
    q = tmp_path / "gemm.json"
    q.write_text(json.dumps([{"ph": "X", "cat": "kernel", "name": "nvjet_tst_gemm", "ts": 0, "dur": 5.0}] * 6))
    assert attention_layer_split(q, SIX)["why"] == "no attention-family kernel in the trace"


def invoke(*args):
    return CliRunner().invoke(app, ["profile", "layers", *map(str, args)], env={"COLUMNS": "200"})


def test_profile_layers_cli(tmp_path):
    d = tmp_path / "traces" / "prefill"
    d.mkdir(parents=True)
    write_trace(d / "a-TP-0.trace.json.gz", GEMMA_26B, 2)
    (d / "notes.txt").write_text("not a trace")
    r = invoke(tmp_path / "traces", "--model", "26B-A4B", "--json")
    assert r.exit_code == 0, r.output + repr(r.exception)
    (out,) = json.loads(r.output)
    assert out["path"] == str(d / "a-TP-0.trace.json.gz") and out["kernel"] == "_fwd_kernel" and out["layers"] == 30
    assert out["split"]["by_type"][S] == {"layers": 25, "launches": 50, "us": 750.0, "us_per_launch": 15.0, "share": 0.3333}
    assert out["split"]["by_type"][F]["us_per_launch"] == 150.0
    r = invoke(d, "-m", "26B-A4B")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "`_fwd_kernel` (auto), 60 launches = 2 forwards of 30 layers, 2.25 ms" in r.output
    rows = [line.split() for line in r.output.splitlines() if line.startswith("│")]
    assert [x for x in rows[0] if x != "│"] == ["sliding", "25", "50", "0.75", "0.015", "33.3%"]
    assert [x for x in rows[1] if x != "│"] == ["full", "5", "10", "1.50", "0.150", "66.7%"]
    assert "ms per launch ┃" in r.output and "grid" not in r.output
    r = invoke(d / "a-TP-0.trace.json.gz", "-m", "26B-A4B", "--forwards")
    rows = [[x for x in line.split("│") if x.strip()] for line in r.output.splitlines() if line.startswith("│")]
    assert "sliding ms per launch" in r.output and "full ms per launch" in r.output
    assert [[x.strip() for x in row] for row in rows[2:]] == [["0", "[1, 16, 8]", "0.010", "0.100"],
                                                            ["1", "[2, 16, 8]", "0.020", "0.200"]]
    r = invoke(d, "-m", "26B-A4B", "--kernel", "_fwd_kernel_stage2")
    assert r.exit_code == 0 and "no split: `_fwd_kernel_stage2`: 7 launches, not a positive multiple of 30 layers" in r.output


def test_profile_layers_cli_errors(tmp_path):
    p = write_trace(tmp_path / "a.json", GEMMA_26B, 1)
    r = invoke(p, "-m", "27B")
    assert isinstance(r.exception, HarnessError) and "unknown model '27B'" in str(r.exception)
    ov = tmp_path / "ov.yaml"
    ov.write_text(yaml.safe_dump({"models": {"26B-A4B": {"hf_config": {"text_config": {"layer_types": None}}}}}))
    r = invoke(p, "-m", "26B-A4B", "--overrides", ov)
    assert isinstance(r.exception, HarnessError) and "model 26B-A4B defines no layer_types" in str(r.exception)
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    r = invoke(bad, "-m", "26B-A4B")
    assert isinstance(r.exception, HarnessError) and str(r.exception).startswith(f"{bad}: not a readable trace")
    r = invoke(tmp_path / "missing", "-m", "26B-A4B")
    assert isinstance(r.exception, HarnessError) and "no such file" in str(r.exception)
