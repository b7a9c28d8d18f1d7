"""`harness compare --gpus`: one slot pins the run to its GPUs; several slots split the engines over them and run
them at the same time, one run per slot, each saying so; Ctrl-C reaches every child."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fake_overrides
from harness.errors import HarnessError
from harness.fanout import child_args, gpu_slots, partition
from test_bench_cli import REPO, harness


def test_slots_and_partition():
    assert gpu_slots("0,1,2,3", 2) == ["0,1", "2,3"]
    assert gpu_slots(" 3 , 1 ", 1) == ["3", "1"]
    for bad, tp, msg in (("0,1,2", 2, "not a multiple"), ("0,0", 1, "twice"), ("", 1, "at least one")):
        with pytest.raises(HarnessError, match=msg):
            gpu_slots(bad, tp)
    assert partition(["a", "b", "c"], 2) == [["a", "c"], ["b"]]
    assert partition(["a"], 4) == [["a"]]


def test_child_args_drop_what_the_parent_owns():
    args = ["-m", "E4B", "--gpus", "0,1", "--engines=a,b", "-s", "chat", "--out", "x.md", "--report", "--dry-run",
            "--resume=R", "--note", "mine"]
    assert child_args(args, ["a"], "N") == ["-m", "E4B", "-s", "chat", "--note", "mine", "--engines", "a",
                                            "--no-report", "--note", "N"]


def test_fan_out_runs_one_run_per_slot(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    out = tmp_path / "C.md"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,vllm", "-s", "chat", "--num-prompts", "3",
                "--gpus", "0,1", "--overrides", str(ov), "--runs-dir", str(runs), "--out", str(out), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    dirs = sorted(p for p in runs.iterdir() if (p / "manifest.json").is_file())
    assert len(dirs) == 2
    by_engine = {}
    for d in dirs:
        m = json.loads((d / "manifest.json").read_text())
        assert m["status"] == "complete"
        assert any(n.startswith("note: concurrent: 2 harness compare processes") for n in m["notes"])
        (engine,) = m["engines"]
        by_engine[engine] = m["machine"]["visible_devices"]
    assert by_engine == {"sglang": "0", "vllm": "1"}
    # the parent rendered the report from both runs
    text = out.read_text()
    assert all(d.name in text for d in dirs)
    assert len(list((runs / ".fanout").glob("*.log"))) == 2


def test_one_slot_pins_the_run(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "vllm", "-s", "chat", "--num-prompts", "3", "--gpus", "5",
                "--overrides", str(ov), "--runs-dir", str(runs), "--no-report", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (d,) = [p for p in runs.iterdir() if (p / "manifest.json").is_file()]
    assert json.loads((d / "manifest.json").read_text())["machine"]["visible_devices"] == "5"


def test_ctrl_c_interrupts_every_child(tmp_path):
    # the fake engines take long to become healthy, so SIGINT arrives while both children wait on them
    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--startup-delay", "30"], "vllm": ["--startup-delay", "30"]},
                        startup_timeout=120)
    runs = tmp_path / "runs"
    env = dict(os.environ, COLUMNS="200")
    p = subprocess.Popen([sys.executable, "-m", "harness", "compare", "-m", "26B-A4B", "--engines", "sglang,vllm",
                          "-s", "chat", "--num-prompts", "2", "--gpus", "0,1", "--overrides", str(ov), "--runs-dir",
                          str(runs), "--no-report"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(runs.glob("*/manifest.json"))) < 2:
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(p.pid, signal.SIGINT)
    out, _ = p.communicate(timeout=150)
    assert p.returncode == 130, out
    for m in runs.glob("*/manifest.json"):
        assert json.loads(m.read_text())["status"] == "interrupted"


def test_parity_across_slots_is_compared_after_the_children(tmp_path):
    """--parity with engines split over slots: each child stores generations, the parent pairs them across runs."""
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched", "-s", "chat", "--num-prompts", "2",
                "--gpus", "0,1", "--parity", "--no-mmlu", "--overrides", str(ov), "--runs-dir", str(runs),
                "--no-report", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    recs = list((runs / "parity").glob("parity-*-sglang-vs-sglang-patched-mtp-off.json"))
    assert len(recs) == 1, list(runs.rglob("*.json"))
    rec = json.loads(recs[0].read_text())
    assert rec["kind"] == "parity" and rec["n"] == 20 and set(rec["run_ids"]) == {"sglang", "sglang-patched"}
    assert rec["run_ids"]["sglang"] != rec["run_ids"]["sglang-patched"]
    assert rec["a"]["dummy_weights"] is True
    # each child sent its parity prompts one at a time (the default)
    assert rec["a"]["concurrency"] == rec["b"]["concurrency"] == 1 and rec["batching"]["batch_invariant"] is True
