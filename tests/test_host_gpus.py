"""What the host's GPUs carried as each measured load started: nvidia-smi's snapshot of every GPU of the host (not
only the run's), kept in the cell record and told in the report's environment block, so that "other jobs ran beside
this run" is read off the machine rather than written by hand in a --note (session 17's note said it of a one-GPU
host)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import fake_overrides  # noqa: E402
from test_bench_cli import harness, only_run  # noqa: E402
from test_report import sections, table_after  # noqa: E402
from test_report_standing import _cell  # noqa: E402
from test_report_grouping import manifest, write_run  # noqa: E402

from analysis.load import load_runs  # noqa: E402
from analysis.render import render_report  # noqa: E402
from harness import machine  # noqa: E402
from harness.results import HostGpu  # noqa: E402

ROW = "Host GPUs as the measured loads started (nvidia-smi)"
SNAPSHOT = "0, 81000, 97\n1, 120000, 100\n2, 0, 0\n3, [N/A], [N/A]\n"


def _fake_smi(monkeypatch, stdout=SNAPSHOT, rc=0, missing=False):
    def run(argv, **kw):
        if missing:
            raise FileNotFoundError("nvidia-smi")
        assert argv[:2] == ["nvidia-smi", "--query-gpu=index,memory.used,utilization.gpu"]
        assert not any(a.startswith("--id=") for a in argv)  # every GPU of the host, not only the visible ones
        return subprocess.CompletedProcess(argv, rc, stdout, "")

    monkeypatch.setattr(machine, "subprocess", types.SimpleNamespace(
        run=run, CompletedProcess=subprocess.CompletedProcess, TimeoutExpired=subprocess.TimeoutExpired))


def test_host_gpu_use_reads_every_gpu_and_marks_the_runs_own(monkeypatch):
    _fake_smi(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    gpus = machine.host_gpu_use()
    assert [(g.index, g.this_run, g.memory_used_mib, g.utilization_pct) for g in gpus] == [
        (0, True, 81000, 97), (1, False, 120000, 100), (2, False, 0, 0), (3, False, None, None)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert [g.this_run for g in machine.host_gpu_use()] == [False, True, False, True]
    for unknown in ("GPU-8f2e", None):  # UUIDs, or unset: which GPUs are the run's is not known
        if unknown is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", unknown)
        assert {g.this_run for g in machine.host_gpu_use()} == {None}


def test_host_gpu_use_is_empty_without_an_answer(monkeypatch):
    _fake_smi(monkeypatch, missing=True)
    assert machine.host_gpu_use() == []
    _fake_smi(monkeypatch, rc=9, stdout="NVIDIA-SMI has failed")
    assert machine.host_gpu_use() == []


def _env_row(tmp_path, snaps: list[list[HostGpu]] | None) -> str | None:
    rid = "20261128T10-h"
    cells = [_cell(rid, "sglang-patched", "chat", r, 100.0, 10.0, 5.0) for r in (1, 2)]
    for c, snap in zip(cells, snaps or []):
        c.host_gpus = snap
    write_run(tmp_path, manifest(rid, "s"), cells)
    md = render_report(load_runs(sorted((tmp_path / "runs").iterdir())), [], tmp_path / "C.md", with_plots=False,
                       model_loader=lambda name: (None, "none")).markdown
    (body,) = [b for t, b in sections(md).items() if t[:1].isdigit()]
    return {r[""]: r["value"] for r in table_after(body, "### Environment")}.get(ROW)


def gpu(i, mine, mib, util=50):
    return HostGpu(index=i, this_run=mine, memory_used_mib=mib, utilization_pct=util)


def test_report_tells_what_the_other_gpus_carried(tmp_path):
    assert _env_row(tmp_path / "a", None) is None  # no snapshot recorded (older runs): no row
    assert _env_row(tmp_path / "b", [[gpu(0, True, 80000)], [gpu(0, True, 80000)]]) == (
        "1 GPU on the host, so no other job on a GPU beside the run (2 measured loads)")
    row = _env_row(tmp_path / "c", [[gpu(0, True, 80000), gpu(1, False, 120000, 100), gpu(2, False, 2048, 7)],
                                    [gpu(0, True, 80000), gpu(1, False, 500), gpu(2, False, 0)]])
    assert row == ("3 GPUs on the host; another GPU was in use at the start of 1 of 2 measured loads (up to 2 at "
                   "once; on one, at most 117.2 GiB in use and 100% busy): other jobs ran beside these loads")
    idle = _env_row(tmp_path / "d", [[gpu(0, True, 80000), gpu(1, False, 300)]] * 2)
    assert idle == "2 GPUs on the host; another GPU was in use at the start of 0 of 2 measured loads"
    unknown = _env_row(tmp_path / "e", [[gpu(0, None, 80000), gpu(1, None, 300)]] * 2)
    assert unknown.startswith("2 GPUs on the host; which of them the runs had is not recorded")


def test_compare_records_the_hosts_gpus_in_every_measured_cell(tmp_path):
    """End to end with the fake engine and a stand-in nvidia-smi on PATH (a 2-GPU host, GPU 1 busy elsewhere)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!{sys.executable}\n" + """import sys
a = sys.argv[1:]
if any(x.startswith("--query-gpu=index,memory.used") for x in a):
    print("0, 70000, 90"); print("1, 131000, 100")
elif any(x.startswith("--query-gpu=name") for x in a):
    print("NVIDIA H200, 580.159.04, 143771")
else:
    print("| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |")
""")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    env = os.environ.copy()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang-patched", "-s", "chat", "--repeats", "2",
                "--num-prompts", "2", "--gpus", "0", "--no-report", "--overrides", str(fake_overrides(tmp_path)),
                "--runs-dir", str(runs), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    cells = [json.loads(p.read_text()) for p in sorted((only_run(runs) / "cells").glob("*.json"))]
    assert len(cells) == 2 and all(c["status"] == "ok" for c in cells)
    for c in cells:
        assert c["host_gpus"] == [{"index": 0, "this_run": True, "memory_used_mib": 70000, "utilization_pct": 90},
                                  {"index": 1, "this_run": False, "memory_used_mib": 131000, "utilization_pct": 100}]
