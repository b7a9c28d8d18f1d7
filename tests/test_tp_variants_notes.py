"""Behaviour of commit 401a1db: CUDA_VISIBLE_DEVICES-aware machine facts, TP / server args keeping report tables
apart, the environment block's new rows, --note, compare --parity under dummy weights, and engine variant profiles."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO, fake_overrides  # noqa: E402
from test_bench_cli import harness, only_run  # noqa: E402
from test_report import sections, table_after  # noqa: E402
from test_report_grouping import cell, manifest  # noqa: E402

from analysis import tables as T  # noqa: E402
from analysis.load import Run, group_runs, machine_key, run_tp  # noqa: E402
from analysis.render import build, write_report  # noqa: E402
from harness import machine  # noqa: E402
from harness.bench import parity_pairs  # noqa: E402


# --------------------------------------------------------------------------------------------- machine_info

HOST_GPUS = 8  # the stand-in nvidia-smi reports an 8-GPU host


def fake_nvidia_smi(monkeypatch):
    """Replace ``subprocess`` in harness.machine: answers like nvidia-smi on an 8-GPU host, honouring --id."""
    calls: list[list[str]] = []

    def run(argv, **kw):
        calls.append(list(argv))
        assert argv[0] == "nvidia-smi"
        if argv == ["nvidia-smi"]:
            return subprocess.CompletedProcess(argv, 0, "| NVIDIA-SMI 580.1   Driver Version: 580.1   CUDA Version: 13.0 |\n", "")
        ids = [a.split("=", 1)[1] for a in argv if a.startswith("--id=")]
        wanted = [int(i) for i in ids[0].split(",")] if ids else list(range(HOST_GPUS))
        rows = "".join(f"NVIDIA H100 80GB HBM3, 580.1, {81559 + i}\n" for i in wanted)
        return subprocess.CompletedProcess(argv, 0, rows, "")

    monkeypatch.setattr(machine, "subprocess", types.SimpleNamespace(
        run=run, CompletedProcess=subprocess.CompletedProcess, TimeoutExpired=subprocess.TimeoutExpired))
    return calls


def _query(calls):
    q = [c for c in calls if any(a.startswith("--query-gpu=") for a in c)]
    assert len(q) == 1, calls
    return q[0]


def test_machine_info_counts_only_visible_gpus(monkeypatch):
    calls = fake_nvidia_smi(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    info = machine.machine_info()
    assert "--id=2,3" in _query(calls)
    assert info.gpu_count == 2 and info.visible_devices == "2,3"
    assert info.gpu_name == "NVIDIA H100 80GB HBM3" and info.driver == "580.1" and info.cuda == "13.0"
    assert info.gpu_memory_mib == 81561  # the first row is GPU 2's, not GPU 0's


def test_machine_info_with_no_visible_gpu_does_not_ask_nvidia_smi(monkeypatch):
    calls = fake_nvidia_smi(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    info = machine.machine_info()
    assert calls == []
    assert info.gpu_count == 0 and info.gpu_name is None and info.visible_devices == ""


def test_machine_info_without_cuda_visible_devices_counts_every_gpu(monkeypatch):
    calls = fake_nvidia_smi(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    info = machine.machine_info()
    assert not any(a.startswith("--id") for a in _query(calls))
    assert info.gpu_count == HOST_GPUS and info.visible_devices is None


# --------------------------------------------------------------------------------------------- grouping


def run_with(run_id: str, options: dict | None, stack: str = "s1") -> Run:
    """A one-cell run (test_report_grouping's manifest and cell) whose manifest records ``options``."""
    m = manifest(run_id, stack)
    if options is not None:
        m.extra = {"options": options}
    return Run(run_id, Path(run_id), m, [(cell(run_id, True), Path(f"{run_id}.json"))])


def test_tp_keeps_runs_apart_and_is_in_the_title():
    tp1 = run_with("20261127T01-tp1", {"tp": 1, "server_args": []})
    tp2 = run_with("20261127T02-tp2", {"tp": 2, "server_args": []})
    assert (run_tp(tp1.manifest), run_tp(tp2.manifest)) == (1, 2)
    assert machine_key(tp1.manifest) != machine_key(tp2.manifest)
    groups = group_runs([tp1, tp2])
    assert len(groups) == 2
    by_tp = {g.tp: g for g in groups}
    assert [r.run_id for r in by_tp[1].runs] == [tp1.run_id] and [r.run_id for r in by_tp[2].runs] == [tp2.run_id]
    assert "TP=2" in T.group_title(by_tp[2])
    assert "TP=" not in T.group_title(by_tp[1])


@pytest.mark.parametrize("plain_first", [True, False])
def test_server_args_keep_runs_apart_in_either_order(plain_first):
    plain = run_with("20261127T01-plain" if plain_first else "20261127T02-plain", {"tp": 1, "server_args": []})
    foo = run_with("20261127T02-foo" if plain_first else "20261127T01-foo", {"tp": 1, "server_args": ["--foo"]})
    for order in ([plain, foo], [foo, plain]):
        groups = group_runs(order)
        assert len(groups) == 2, [[r.run_id for r in g.runs] for g in groups]
        assert sorted([r.run_id for r in g.runs] for g in groups) == sorted([[plain.run_id], [foo.run_id]])
        titles = {g.runs[0].run_id: T.group_title(g) for g in groups}
        assert "server args --foo" in titles[foo.run_id] and "server args none" in titles[plain.run_id]


def test_runs_without_recorded_options_group_as_tp1():
    old = run_with("20261127T01-old", None)  # a manifest from before extra.options was recorded
    assert old.manifest.extra == {} and run_tp(old.manifest) == 1
    new = run_with("20261127T02-new", {"tp": 1, "server_args": []})
    groups = group_runs([old, new])
    assert len(groups) == 1 and groups[0].tp == 1 and len(groups[0].runs) == 2
    assert "TP=" not in T.group_title(groups[0])
    tp2 = run_with("20261127T03-tp2", {"tp": 2})
    assert len(group_runs([old, tp2])) == 2


# --------------------------------------------------------------------------------------------- report


def write_run(runs: Path, run_id: str, options: dict, notes: list[str]) -> None:
    m = manifest(run_id, "s1")
    m.extra = {"options": options}
    m.notes = notes
    c = cell(run_id, True)
    (runs / run_id / "cells").mkdir(parents=True)
    (runs / run_id / "manifest.json").write_text(m.model_dump_json())
    (runs / run_id / "cells" / f"{c.cell_id}.json").write_text(json.dumps(c.model_dump(mode="json")))


def test_report_environment_block_shows_tp_server_args_and_notes(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "20261127T01-tp1", {"tp": 1, "server_args": []}, ["weights: dummy (--load-format dummy)"])
    write_run(runs, "20261127T02-tp2", {"tp": 2, "server_args": ["--foo", "1"]},
              ["note: another job shared GPU 0", "weights: dummy (--load-format dummy)", "note: second note"])
    rep = build(None, runs, tmp_path / "C.md", with_plots=True, model_loader=lambda name: (None, "no config in this test"))
    write_report(rep)
    # plot files of the two groups do not collide: the TP=2 group's names say so
    names = sorted(p.name for p in (tmp_path / "C_plots").iterdir())
    assert any("-x1-tp2-dummy" in n for n in names) and any("-x1-dummy" in n for n in names), names
    assert not any("-tp1" in n for n in names)
    md = (tmp_path / "C.md").read_text()
    groups = {t: body for t, body in sections(md).items() if t[:1].isdigit()}
    assert len(groups) == 2, list(sections(md))
    (t2, body2), = [(t, b) for t, b in groups.items() if "TP=2" in t]
    (t1, body1), = [(t, b) for t, b in groups.items() if "TP=2" not in t]
    assert "TP=" not in t1
    env2 = {r[""]: r["value"] for r in table_after(body2, "### Environment")}
    env1 = {r[""]: r["value"] for r in table_after(body1, "### Environment")}
    assert env2["Tensor parallel"] == "2" and env1["Tensor parallel"] == "1"
    assert env2["Server arguments added"] == "--foo 1" and env1["Server arguments added"] == "none"
    assert env2["Notes given with --note"] == "another job shared GPU 0; second note"
    assert env1["Notes given with --note"] == "none"  # other manifest notes are not --note notes


# --------------------------------------------------------------------------------------------- compare / bench


def test_parity_pairs_are_every_pair_in_order():
    assert parity_pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert parity_pairs(["x", "y"]) == [("x", "y")]
    assert parity_pairs(["x"]) == [] and parity_pairs([]) == []


MMLU_FIXTURE = REPO / "tests" / "fixtures" / "mmlu" / "mmlu_60.csv"
ENGINES = ["sglang", "sglang-patched", "vllm"]


def test_compare_parity_under_dummy_weights_when_asked(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    # a local MMLU source: were MMLU to run under dummy weights, it would leave records behind
    r = harness("compare", "-m", "26B-A4B", "--engines", ",".join(ENGINES), "-s", "decode-burst", "--num-prompts", "2",
                "--parity", "--parity-concurrency", "2", "--mmlu", "--mmlu-source", str(MMLU_FIXTURE),
                "--mmlu-questions", "5", "--no-report", "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = only_run(runs)
    m = json.loads((rd / "manifest.json").read_text())
    assert m["weights"] == "dummy"
    assert any(n.startswith("parity under dummy weights (asked for with --parity)") for n in m["notes"])
    assert not any(n.startswith("parity skipped") for n in m["notes"])
    assert any("MMLU skipped: dummy weights" in n for n in m["notes"])
    evals = rd / "evals"
    for e in ENGINES:
        g = json.loads((evals / f"generations-{e}__mtp-off.json").read_text())
        assert g["engine"] == e and g["dummy_weights"] is True and len(g["generations"]) == 20
        assert g["concurrency"] == 2  # --parity-concurrency reaches the generations
    for a, b in [("sglang", "sglang-patched"), ("sglang", "vllm"), ("sglang-patched", "vllm")]:
        par = json.loads((evals / f"parity-{a}-vs-{b}-mtp-off.json").read_text())
        assert par["kind"] == "parity" and par["n"] == 20
        assert par["a"]["engine"] == a and par["b"]["engine"] == b
        assert par["a"]["dummy_weights"] is True and par["b"]["dummy_weights"] is True
        assert par["a"]["concurrency"] == par["b"]["concurrency"] == 2
        assert par["batching"] == {"batch_invariant": False,
                                   "why": "prompts sent 2 at a time: batch composition varied"}
    assert len(list(evals.glob("parity-*.json"))) == 3
    assert not [p for p in rd.rglob("*") if "mmlu" in p.name.lower()]


def test_compare_under_dummy_weights_skips_parity_by_default_and_keeps_notes(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    out = tmp_path / "report" / "COMPARISON.md"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,vllm", "-s", "chat", "--num-prompts", "2",
                "--note", "GPU 0 shared with a training job", "--note", "second",
                "--overrides", str(ov), "--runs-dir", str(runs), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = only_run(runs)
    m = json.loads((rd / "manifest.json").read_text())
    assert m["notes"][:2] == ["note: GPU 0 shared with a training job", "note: second"]
    assert any(n.startswith("parity skipped: dummy weights") for n in m["notes"])
    assert not any(n.startswith("parity under dummy weights") for n in m["notes"])
    assert not [p.name for p in rd.rglob("*") if p.name.startswith(("generations-", "parity-"))]
    # the note reaches the rendered report's environment block
    (body,) = [b for t, b in sections(out.read_text()).items() if t[:1].isdigit() and rd.name in b]
    env = {x[""]: x["value"] for x in table_after(body, "### Environment")}
    assert env["Notes given with --note"] == "GPU 0 shared with a training job; second"
    assert env["Tensor parallel"] == "1" and env["Server arguments added"] == "none"


def test_bench_note_lands_in_the_manifest(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--note", "host busy",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads((only_run(runs) / "manifest.json").read_text())
    assert "note: host busy" in m["notes"]
    assert m["extra"]["options"]["tp"] == 1 and m["extra"]["options"]["server_args"] == []


# --------------------------------------------------------------------------------------------- engine variants


@pytest.fixture()
def patched_tree(tmp_path):
    """An explicit patched tree is used as it is (see test_engines_commands): a marker is all it needs."""
    tree = tmp_path / "tree"
    (tree / "python" / "sglang").mkdir(parents=True)
    (tree / ".harness-patchstack.json").write_text(json.dumps({"stack_hash": "0" * 64}))
    return tree


@pytest.mark.parametrize("engine, flag, absent", [
    ("sglang-patched-no-ar-fusion", "--enforce-disable-flashinfer-allreduce-fusion", "--disable-custom-all-reduce"),
    ("sglang-patched-no-custom-ar", "--disable-custom-all-reduce", "--enforce-disable-flashinfer-allreduce-fusion"),
    # an explicit chunk size: patch 0018 caps only the automatic one (its test_gemma4_dense_chunk_mem.py)
    ("sglang-patched-chunk8192", "--chunked-prefill-size 8192", "--disable-custom-all-reduce"),
])
def test_serve_dry_run_of_variant_profiles(engine, flag, absent, patched_tree):
    r = harness("serve", "-e", engine, "-m", "31B", "--tp", "2", "--dry-run", "--patched-tree", str(patched_tree))
    assert r.returncode == 0, r.stdout + r.stderr
    line = " ".join(r.stdout.split())
    assert "sglang.launch_server" in line and flag in line and absent not in line
    assert "--tp-size 2" in line
    assert f"PYTHONPATH={patched_tree / 'python'}" in line  # the base profile's patch-stack overlay is inherited
    base = harness("serve", "-e", "sglang-patched", "-m", "31B", "--tp", "2", "--dry-run", "--patched-tree", str(patched_tree))
    assert base.returncode == 0 and flag not in base.stdout


def test_bench_dry_run_of_variant_profile(patched_tree, tmp_path):
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang-patched-no-ar-fusion", "-m", "31B", "-s", "chat", "--tp", "2", "--dry-run",
                "--patched-tree", str(patched_tree), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    server = next(ln for ln in r.stdout.splitlines() if "sglang.launch_server" in ln)
    assert "--enforce-disable-flashinfer-allreduce-fusion" in server and "--tp-size 2" in server
    assert not runs.exists()


def test_variant_inherits_overrides_made_to_its_base(tmp_path):
    """Overrides are merged before 'extends' is resolved: a variant of a faked base launches the fake too."""
    ov = fake_overrides(tmp_path)
    r = harness("bench", "-e", "sglang-patched-no-custom-ar", "-m", "26B-A4B", "-s", "chat", "--dry-run",
                "--overrides", str(ov))
    assert r.returncode == 0, r.stdout + r.stderr
    server = next(ln for ln in r.stdout.splitlines() if "fake_engine.py" in ln)
    assert server.rstrip().endswith("--disable-custom-all-reduce") and "PYTHONPATH" not in server
