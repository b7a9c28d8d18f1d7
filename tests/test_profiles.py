"""--profile: a profiled pass per scenario after the measured cells, its record and the trace summary."""

import gzip
import json

import pytest
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, fake_overrides
from harness.profiles import rank0_trace, summarize_trace


def harness(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_summarize_trace_counts_gpu_events_only(tmp_path):
    ev = [
        {"ph": "X", "cat": "kernel", "name": "_fwd_kernel_extend", "ts": 0, "dur": 60.0},
        {"ph": "X", "cat": "kernel", "name": "_fwd_kernel_extend", "ts": 70, "dur": 20.0},
        {"ph": "X", "cat": "kernel", "name": "nvjet_tst_128x256", "ts": 100, "dur": 50.0},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "ts": 200, "dur": 10.0},
        {"ph": "X", "cat": "kernel", "name": "cross_device_reduce_1stage", "ts": 300, "dur": 10.0},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 5000.0},  # host time: not GPU time
        {"ph": "i", "cat": "kernel", "name": "instant", "ts": 0},
    ]
    p = tmp_path / "x-TP-0.trace.json.gz"
    with gzip.open(p, "wt") as fh:
        json.dump({"traceEvents": ev}, fh)
    s = summarize_trace(p)
    assert s["gpu_time_us"] == 150.0 and s["kernels"] == 5 and s["distinct_kernels"] == 4
    assert [t["name"] for t in s["top"]] == ["_fwd_kernel_extend", "nvjet_tst_128x256", "Memcpy HtoD (Pageable -> Device)",
                                             "cross_device_reduce_1stage"]
    assert s["top"][0]["count"] == 2 and s["top"][0]["share"] == round(80 / 150, 4)
    assert {k: v["us"] for k, v in s["families"].items()} == {"attention": 80.0, "gemm": 50.0, "memory": 10.0,
                                                              "communication": 10.0}
    assert rank0_trace([tmp_path / "a-TP-1.trace.json.gz", p]) == p
    assert rank0_trace([tmp_path / "w_rank1.pt.trace.json.gz", tmp_path / "w_rank0.pt.trace.json.gz"]).name == "w_rank0.pt.trace.json.gz"


def test_sglang_decode_attention_kernels_count_as_attention():
    from harness.profiles import _family

    assert _family("_fwd_grouped_kernel_stage1") == "attention"
    assert _family("_fwd_kernel_stage2") == "attention"
    assert _family("_fwd_kernel") == "attention"


def test_fused_norm_kernels_count_as_norm_and_gemma_is_not_gemm():
    from harness.profiles import _family

    assert _family("_gemma_qkv_rmsnorm_kernel") == "norm"
    assert _family("_gemma4_post_attn_triple_rmsnorm_kernel") == "norm"
    assert _family("void flashinfer::norm::RMSNormKernel<8u, __nv_bfloat16>(__nv_bfloat16*)") == "norm"
    assert _family("triton_red_fused_add_moe_forward_mul_rms_norm_0") == "norm"
    assert _family("_gemma4_moe_router_kernel") == "moe"  # "gemma" alone is no family
    assert _family("nvjet_sm90_tst_64x32_64x16_2x1_v_bz_TNT") == "gemm"
    assert _family("grouped_gemm_kernel") == "moe"
    assert _family("cutlass_gemm") == "gemm"


def test_bench_profile_pass_after_the_measured_cells(tmp_path):
    # the fake SGLang launches its extend attention kernel 60 times a trace (2 forwards of 26B-A4B's 30 layers), vLLM once
    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--profile-attention-launches", "60"]})
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang,vllm", "-m", "26B-A4B", "-s", "chat,prefill-3k", "--num-prompts", "4", "--profile",
                "--profile-output-len", "8", "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = next(p for p in runs.iterdir() if p.is_dir())
    cells = {p.stem: json.loads(p.read_text()) for p in (rd / "cells").glob("*.json")}
    assert len(cells) == 4 and all(c["status"] == "ok" for c in cells.values())
    for engine in ("sglang", "vllm"):
        for sc in ("chat", "prefill-3k"):
            rec = json.loads((rd / "profiles" / f"{engine}__{sc}__mtp-off.json").read_text())
            assert rec["status"] == "ok", rec
            assert rec["output_len"] == 8 and rec["num_prompts"] == 4 and "--random-output-len" in rec["client_command"]
            assert rec["client_command"][rec["client_command"].index("--random-output-len") + 1] == "8"
            # the profiled pass came after every measured cell of its server
            assert all(c["finished_at"] <= rec["started_at"] for c in cells.values() if c["engine"] == engine)
            s = rec["summary"]
            assert ("TP-0" in s["trace"]) if engine == "sglang" else ("rank0" in s["trace"])  # rank 0, not rank 1
            assert len(rec["traces"]) == 2 and all((rd / t).is_file() for t in rec["traces"])
            assert {t["name"] for t in s["top"]} >= {"fake_extend_attention_fwd_kernel", "nvjet_tst_gemm_fake"}
            assert "aten::mm" not in {t["name"] for t in s["top"]}
            assert s["gpu_time_us"] > 0 and abs(sum(f["share"] for f in s["families"].values()) - 1) < 1e-3
            # the attention split is of the summary's trace (rank 0)
            lay = rec["layers"]
            assert lay["trace"] == s["trace"] and lay["layers"] == 30 and lay["picked"] == "auto"
            attn_us = next(t["us"] for t in s["top"] if t["name"] == "fake_extend_attention_fwd_kernel")
            if engine == "sglang":
                split = lay["split"]
                assert lay["kernel"] == "fake_extend_attention_fwd_kernel" and lay["why"] is None
                assert split["launches"] == 60 and split["forwards"] == 2 and abs(split["us"] - attn_us) < 0.5
                assert {t: (b["layers"], b["launches"]) for t, b in split["by_type"].items()} == {
                    "sliding_attention": (25, 50), "full_attention": (5, 10)}
                assert [f["grid"] for f in split["per_forward"]] == [[1, 16, 0], [1, 16, 30]]
            else:
                assert lay["split"] is None and lay["kernel"] is None
                assert lay["why"].endswith("1 launches, not a positive multiple of 30 layers")
                assert "`fake_extend_attention_fwd_kernel`: 1 launches" in lay["why"]
            # the steps of the same trace: two forwards of 30 launches make one step; one launch makes none
            st = rec["steps"]
            assert st["trace"] == s["trace"] and st["layers"] == 30
            if engine == "sglang":
                assert st["kernel"] == "fake_extend_attention_fwd_kernel" and st["steps"] == 1 and st["why"] is None
                m = st["median"]
                assert m["wall_us"] > 0 and m["busy_us"] + m["idle_us"] == pytest.approx(m["wall_us"], abs=0.2)
            else:
                assert st["steps"] is None and st["median"] is None and "not a positive multiple of 30 layers" in st["why"]
    # the server commands carried the profiler configuration
    sg = json.loads((rd / "cells" / "vllm__chat__mtp-off__r1.json").read_text())["server_command"]
    assert "--profiler-config" in sg and str(rd.resolve() / "profiles" / "vllm__mtp-off") in sg[sg.index("--profiler-config") + 1]
    sg = json.loads((rd / "cells" / "sglang__chat__mtp-off__r1.json").read_text())["server_command"]
    assert f"SGLANG_TORCH_PROFILER_DIR={rd.resolve() / 'profiles' / 'sglang__mtp-off'}" in sg
    # the export leaves the traces behind (git-ignored like the logs) and keeps the records
    arch = tmp_path / "r.tgz"
    assert harness("runs", "export", rd.name, "--runs-dir", str(runs), "--out", str(arch)).returncode == 0
    import tarfile

    with tarfile.open(arch) as t:
        names = t.getnames()
    assert f"{rd.name}/profiles/vllm__chat__mtp-off.json" in names
    assert not any(n.endswith(".trace.json.gz") for n in names)


def test_profile_refused_for_an_engine_without_profiler_calls(tmp_path):
    ov = fake_overrides(tmp_path)
    data = yaml.safe_load(ov.read_text())
    data["engines"]["vllm"]["profile_start"] = None
    ov.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--profile",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 2 and "define no profile_start/profile_stop" in r.stderr
    assert not runs.exists()


def test_report_shows_the_profiles_next_to_the_numbers(tmp_path):
    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--profile-attention-launches", "30"]})
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang", "-m", "26B-A4B", "-s", "prefill-3k", "--num-prompts", "4", "--profile",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "C.md"
    r = harness("report", "--runs-dir", str(runs), "--out", str(out), "--no-plots")
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    assert "### Profiles (torch profiler, rank 0)" in text
    row = next(line for line in text.splitlines() if line.startswith("| prefill-3k | off | sglang |"))
    assert "fake_extend_attention_fwd_kernel" in row and " ms [record](" in row
    assert "| Attention per launch by layer type |" in text
    # the attention split: one forward of 30 launches of equal time
    m = re.search(r"\| `fake_extend_attention_fwd_kernel` sliding (\d+\.\d\d) ms ×25, full (\d+\.\d\d) ms ×5 \| ", row)
    assert m and m[1] == m[2] and float(m[1]) > 0, row
    assert "| Step (median) |" in text
    # one forward of 30 launches: no step (a step needs the next forward's start), and why
    assert row.endswith("| — (`fake_extend_attention_fwd_kernel` gives 1 forward: a step needs the next forward's start) |"), row
    # a record from before the pass flushed the cache (its note does not say so) is marked in its row; one from
    # before the attention split has none
    rec_path = next(runs.glob("*/profiles/sglang__prefill-3k__mtp-off.json"))
    rec = json.loads(rec_path.read_text())
    rec["note"] = "a profiled pass after the measured cells, with the profiler on: its timings are not measurements"
    del rec["cache_flushed"], rec["layers"], rec["steps"]
    rec_path.write_text(json.dumps(rec))
    assert harness("report", "--runs-dir", str(runs), "--out", str(out), "--no-plots").returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| prefill-3k | off | sglang |"))
    assert " ms (cache not flushed first: prefill may be partial) [record](" in row
    assert row.endswith("| — | — |")
    # a record with steps: the median step in one cell
    rec["steps"] = {"kernel": "k", "steps": 33, "why": None,
                    "median": {"wall_us": 15128.6, "busy_us": 13354.4, "idle_us": 1794.7, "host_sync_us": 11175.5,
                               "host_in_gaps_us": {"cudaLaunchKernel": 13.6, "cudaGraphLaunch": 988.1}}}
    rec_path.write_text(json.dumps(rec))
    assert harness("report", "--runs-dir", str(runs), "--out", str(out), "--no-plots").returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| prefill-3k | off | sglang |"))
    assert row.endswith("| 15.13 ms ×33: GPU idle 1.79 ms, host synchronising 11.18 ms; in the gaps `cudaGraphLaunch` 0.99 ms |"), row
    rec["steps"]["median"]["kernel_idle_us"] = 2040.0  # a newer record: the time no kernel ran too
    rec_path.write_text(json.dumps(rec))
    assert harness("report", "--runs-dir", str(runs), "--out", str(out), "--no-plots").returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| prefill-3k | off | sglang |"))
    assert "| 15.13 ms ×33: GPU idle 1.79 ms (no kernel 2.04 ms), host synchronising 11.18 ms;" in row, row
    del rec["steps"]
    rec["layers"] = {"kernel": None, "split": None, "why": "`k`: 7 launches, not a positive multiple of 30 layers"}
    rec_path.write_text(json.dumps(rec))
    assert harness("report", "--runs-dir", str(runs), "--out", str(out), "--no-plots").returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| prefill-3k | off | sglang |"))
    assert row.endswith("| — (`k`: 7 launches, not a positive multiple of 30 layers) | — |")


def test_profiler_refusal_is_recorded_and_the_run_goes_on(tmp_path):
    """A server whose profiler is not configured answers /start_profile with an error: the record says so, the
    measured cells stand, and the run is not failed for it."""
    ov = fake_overrides(tmp_path)
    data = yaml.safe_load(ov.read_text())
    data["engines"]["vllm"]["profile_args"] = []  # no --profiler-config: the fake vLLM refuses /start_profile
    ov.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--profile",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = next(p for p in runs.iterdir() if p.is_dir())
    rec = json.loads((rd / "profiles" / "vllm__chat__mtp-off.json").read_text())
    assert rec["status"] == "failed" and "POST /start_profile: HTTP 400" in rec["error"] and rec["summary"] is None
    assert json.loads((rd / "cells" / "vllm__chat__mtp-off__r1.json").read_text())["status"] == "ok"
    assert json.loads((rd / "manifest.json").read_text())["status"] == "complete"


def test_rank0_summary_passes_over_cpu_only_traces(tmp_path):
    """vLLM writes its front end's CPU-only trace next to the workers'; the summary is rank 0's GPU trace."""
    from harness.profiles import rank0_summary

    def write(name, events):
        p = tmp_path / name
        with gzip.open(p, "wt") as fh:
            json.dump({"traceEvents": events}, fh)
        return p

    front = write("async_llm_rank0.pt.trace.json.gz", [{"ph": "X", "cat": "cpu_op", "name": "x", "ts": 0, "dur": 9.0}])
    r1 = write("dp0_pp0_tp1_rank1.pt.trace.json.gz", [{"ph": "X", "cat": "kernel", "name": "k", "ts": 0, "dur": 7.0}])
    r0 = write("dp0_pp0_tp0_rank0.pt.trace.json.gz", [{"ph": "X", "cat": "kernel", "name": "k", "ts": 0, "dur": 5.0}])
    s = rank0_summary([front, r1, r0])
    assert s["trace"] == r0.name and s["gpu_time_us"] == 5.0


def test_profile_summarize_cli(tmp_path):
    d = tmp_path / "traces"
    d.mkdir()
    with gzip.open(d / "x-TP-0.trace.json.gz", "wt") as fh:
        json.dump({"traceEvents": [{"ph": "X", "cat": "kernel", "name": "nvjet_gemm", "ts": 0, "dur": 30.0},
                                   {"ph": "X", "cat": "kernel", "name": "rmsnorm_k", "ts": 40, "dur": 10.0}]}, fh)
    r = harness("profile", "summarize", str(d), "--json", "--top", "1")
    assert r.returncode == 0, r.stderr
    (s,) = json.loads(r.stdout)
    assert s["gpu_time_us"] == 40.0 and [t["name"] for t in s["top"]] == ["nvjet_gemm"]
    r = harness("profile", "summarize", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "bad.json").write_text("{not json")
    r = harness("profile", "summarize", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "not a readable trace" in r.stderr


def test_sglang_profiler_options_are_sent_and_parity_answers_come_before_profiling(tmp_path):
    """SGLang's /start_profile gets the definition's JSON body (stacks and shapes off: with SGLang's default stacks a
    32-step pass's /stop_profile ran past 4 minutes on a GPU), and the parity answers are collected before the
    profiled passes, so a stalled profiler cannot cost them."""
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang", "-s", "chat", "--num-prompts", "4", "--profile",
                "--profile-output-len", "8", "--parity", "--no-mmlu", "--no-report", "--overrides", str(ov),
                "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    log = [json.loads(line) for f in tmp_path.glob("fake_engine-*.requests.jsonl") for line in f.read_text().splitlines()]
    starts = [e for e in log if e.get("path") == "/start_profile"]
    assert [e["body"] for e in starts] == [{"activities": ["CPU", "GPU"], "with_stack": False, "record_shapes": False}]
    parity = [e["t"] for e in log if e.get("path") == "/v1/chat/completions"]
    assert parity and max(parity) < starts[0]["t"]
    # the prefix cache is flushed after the last request before the profiler starts: the pass replays the measured
    # cells' prompts and would otherwise prefill only what the cache missed
    before = [e for e in log if e["t"] < starts[0]["t"]]
    last_gen = max(e["t"] for e in before if e.get("path", "").startswith("/v1/"))
    assert any(e.get("path") == "/flush_cache" and e["t"] > last_gen for e in before)
    rd = next(p for p in runs.iterdir() if p.is_dir() and p.name != "parity")
    assert json.loads((rd / "profiles" / "sglang__chat__mtp-off.json").read_text())["status"] == "ok"
    assert (rd / "evals" / "generations-sglang__mtp-off.json").is_file()


def test_interrupt_during_profiler_stop_leaves_a_failed_profile_record(tmp_path):
    """Session 8: SIGTERM reached two SGLang servers while /stop_profile was still writing; the passes left no
    record. Now the record is written, failed, saying where the pass was."""
    import signal
    import time

    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--stop-profile-delay", "60"]})
    runs = tmp_path / "runs"
    p = subprocess.Popen([sys.executable, "-m", "harness", "bench", "-e", "sglang", "-m", "26B-A4B", "-s", "chat",
                          "--num-prompts", "4", "--profile", "--profile-output-len", "8", "--overrides", str(ov),
                          "--runs-dir", str(runs)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    logs = lambda: [json.loads(x) for f in tmp_path.glob("fake_engine-*.requests.jsonl") for x in f.read_text().splitlines()]
    while time.monotonic() < deadline and not any(e.get("path") == "/stop_profile" for e in logs()):
        assert p.poll() is None, p.communicate()[0]
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=90)
    assert p.returncode != 0, out
    rd = next(d for d in runs.iterdir() if d.is_dir())
    rec = json.loads((rd / "profiles" / "sglang__chat__mtp-off.json").read_text())
    assert rec["status"] == "failed" and rec["error"] == "interrupted (Ctrl-C or SIGTERM) during the profiler's stop"
    assert json.loads((rd / "cells" / "sglang__chat__mtp-off__r1.json").read_text())["status"] == "ok"
    assert json.loads((rd / "manifest.json").read_text())["status"] == "interrupted"
