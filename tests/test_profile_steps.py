"""harness.profile_steps and `harness profile steps`: forwards as steps, GPU busy / idle and the host calls in the gaps."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.errors import HarnessError
from harness.profile_steps import forward_steps


def _k(name, ts, dur, cat="kernel"):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}


def _h(name, ts, dur, cat="cuda_runtime"):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}


def write_steps_trace(path, forwards=3, layers=2):
    """Forward f starts at 1000 f: per layer an attention kernel (10 us) and a GEMM (20 us) back to back
    (layer 0 at +0, layer 1 at +30), so the GPU is busy 60 us; a memcpy on another stream overlapping the
    second GEMM (counted once); then idle to the next forward: 940 us. The host: a cudaStreamSynchronize from
    +5 to +400 (in the step, not in a gap of 50 us or more: the GPU is busy until +60, idle after; it overlaps
    the gap by 340 us), a cudaGraphLaunch from +700 to +990 (in the gap: 290 us), a cudaLaunchKernel of 3 us at
    +2 (on busy GPU: not in a gap), a cpu_op (not a CUDA call) over everything, and a decode-looking attention
    kernel with fewer launches."""
    ev = []
    for f in range(forwards):
        t = 1000.0 * f
        for i in range(layers):
            ev.append(_k("attn_k", t + 30 * i, 10))
            ev.append(_k("nvjet_gemm", t + 30 * i + 10, 20))
        ev.append(_k("Memcpy DtoD", t + 45, 10, cat="gpu_memcpy"))
        ev.append(_h("cudaStreamSynchronize", t + 5, 395))
        ev.append(_h("cudaGraphLaunch", t + 700, 290))
        ev.append(_h("cudaLaunchKernel", t + 2, 3))
    ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 10 ** 6})
    ev.append(_k("_fwd_kernel_stage2", 5000, 5))
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as fh:
        json.dump({"traceEvents": ev[::-1]}, fh)  # out of time order
    return path


@pytest.mark.parametrize("name", ["t.json", "t.json.gz"])
def test_steps_busy_idle_and_host_calls(tmp_path, name):
    r = forward_steps(write_steps_trace(tmp_path / name), 2)
    assert r["kernel"] == "attn_k" and r["picked"] == "auto" and r["why"] is None
    steps = r["steps"]
    assert [s["step"] for s in steps] == [0, 1]  # 3 forwards: the last has no next start
    for s in steps:
        assert s["wall_us"] == 1000.0 and s["busy_us"] == 60.0 and s["idle_us"] == 940.0
        assert s["kernel_idle_us"] == 940.0  # the memcpy lies inside the kernels' time
        assert s["gaps"] == 1 and s["idle_in_gaps_us"] == 940.0
        assert s["host_in_gaps_us"] == {"cudaStreamSynchronize": 340.0, "cudaGraphLaunch": 290.0}
        assert s["host_sync_us"] == 395.0 and s["host_syncs"] == 1
    m = r["median"]
    assert m["wall_us"] == 1000.0 and m["busy_us"] == 60.0 and m["host_sync_us"] == 395.0
    assert list(m["host_in_gaps_us"]) == ["cudaStreamSynchronize", "cudaGraphLaunch"]


def test_kernels_and_families_per_step(tmp_path):
    """Per step: each GPU event that started in it, by name and by family; the median step's are per-name medians
    (a kernel missing from a step counts 0 there)."""
    p = write_steps_trace(tmp_path / "t.json")
    r = forward_steps(p, 2)
    for s in r["steps"]:
        assert s["kernels"] == {"attn_k": {"us": 20.0, "launches": 2}, "nvjet_gemm": {"us": 40.0, "launches": 2},
                                "Memcpy DtoD": {"us": 10.0, "launches": 1}}
        assert s["families_us"] == {"gemm": 40.0, "attention": 20.0, "memory": 10.0}
    m = r["median"]
    assert [(k["name"], k["family"], k["us"], k["launches"]) for k in m["kernels"]] == [
        ("nvjet_gemm", "gemm", 40.0, 2), ("attn_k", "attention", 20.0, 2), ("Memcpy DtoD", "memory", 10.0, 1)]
    assert m["families_us"] == {"gemm": 40.0, "attention": 20.0, "memory": 10.0}
    # the lone stage-2 kernel at 5000 us is after the last step's end (2000): counted nowhere
    assert all("_fwd_kernel_stage2" not in s["kernels"] for s in r["steps"])


def test_median_step_kernel_absent_from_some_steps(tmp_path):
    ev = []
    for f in range(4):  # 4 forwards of 1 layer, 3 steps; an extra kernel in step 0 only
        ev.append(_k("attn_k", 1000.0 * f, 10))
    ev.append(_k("rare_kernel", 500, 100))
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": ev}))
    m = forward_steps(p, 1)["median"]
    assert [k["name"] for k in m["kernels"]] == ["attn_k"] and "other" not in m["families_us"]


def test_steps_delimited_by_a_per_layer_norm(tmp_path):
    """A norm launched once per layer in every forward delimits the steps when it has the most launches: SGLang's
    Triton attention has one kernel for prefill and another for decode, its post-attention norm runs in both."""
    ev = []
    for f in range(3):
        t = 1000.0 * f
        ev.append(_k("_fwd_kernel" if f == 0 else "_fwd_grouped_kernel_stage1", t, 10))  # prefill, then decode
        ev.append(_k("_gemma4_post_attn_triple_rmsnorm_kernel", t + 10, 5))
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": ev}))
    r = forward_steps(p, 1)
    assert r["kernel"] == "_gemma4_post_attn_triple_rmsnorm_kernel" and len(r["steps"]) == 2


def test_an_async_copy_hides_idle_from_busy_but_not_from_no_kernel_time(tmp_path):
    """vLLM stages the next step's inputs host-to-device during a step: the copy fills a gap between two kernels in
    the busy union, but no kernel runs there."""
    ev = []
    for f in range(3):
        t = 1000.0 * f
        ev += [_k("attn_k", t, 100), _k("nvjet_gemm", t + 400, 100),
               _k("Memcpy HtoD (Pinned -> Device)", t + 100, 300, cat="gpu_memcpy")]
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": ev}))
    m = forward_steps(p, 1)["median"]
    assert m["busy_us"] == 500.0 and m["idle_us"] == 500.0 and m["kernel_idle_us"] == 800.0


def test_gap_threshold_and_busy_union(tmp_path):
    p = write_steps_trace(tmp_path / "t.json")
    # no gap reaches 1000 us: nothing is attributed, the idle time is still counted
    r = forward_steps(p, 2, gap_us=1000.0)
    assert all(s["gaps"] == 0 and s["host_in_gaps_us"] == {} and s["idle_us"] == 940.0 for s in r["steps"])
    assert r["median"]["host_in_gaps_us"] == {}


def test_named_kernel_and_no_steps(tmp_path):
    p = write_steps_trace(tmp_path / "t.json")
    # GEMMs delimit the same forwards when named
    assert forward_steps(p, 2, kernel="nvjet_gemm")["steps"][0]["wall_us"] == 1000.0
    r = forward_steps(p, 4)
    assert r["steps"] is None and r["why"] == "`attn_k`: 6 launches, `_fwd_kernel_stage2`: 1 launches, not a positive multiple of 4 layers"
    r = forward_steps(p, 6)
    assert r["steps"] is None and r["why"] == "`attn_k` gives 1 forward: a step needs the next forward's start"
    r = forward_steps(p, 2, kernel="absent")
    assert r["steps"] is None and r["why"] == "`absent`: 0 launches, not a positive multiple of 2 layers"
    with pytest.raises(ValueError):
        forward_steps(p, 0)


def test_cli_steps(tmp_path, monkeypatch):
    """26B-A4B has 30 layers: a trace of 3 forwards of 30 attention launches."""
    write_steps_trace(tmp_path / "x-TP-0.trace.json.gz", forwards=3, layers=30)
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "26B-A4B", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "`attn_k` (auto), 2 steps of 30 layers" in res.output
    assert "host in synchronising calls 0.40 ms (1 calls)" in res.output
    assert "no kernel running 0.10 ms" in res.output  # 30 layers of 30 us busy in each 1000 us step
    assert "cudaGraphLaunch" in res.output
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "26B-A4B", "--json", str(tmp_path)])
    (rec,) = json.loads(res.output)
    assert rec["layers"] == 30 and len(rec["steps"]) == 2
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "26B-A4B", "--steps", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "host sync ms" in res.output
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "26B-A4B", "--kernels", "1", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "GPU time of the median step by family: gemm 0.60 ms, attention 0.30 ms, memory 0.01 ms" in res.output
    assert "nvjet_gemm" in res.output and "Memcpy DtoD" not in res.output  # top 1 only
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "26B-A4B", str(tmp_path / "missing")])
    assert isinstance(res.exception, HarnessError) and "no such file or directory" in str(res.exception)
    res = CliRunner().invoke(app, ["profile", "steps", "-m", "27B", str(tmp_path)])
    assert isinstance(res.exception, HarnessError) and "unknown model '27B'" in str(res.exception)
