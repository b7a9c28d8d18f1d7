"""A run that produced nothing (every cell failed) must not claim a table group before the runs with numbers."""

from pathlib import Path

from analysis.load import Run, group_runs
from harness.results import BenchMetrics, CellResult, EngineInfo, Failure, MachineInfo, Manifest


def manifest(run_id, stack):
    return Manifest(run_id=run_id, command=["harness"], created_at="2026-11-27T00:00:00Z", harness_version="0",
                    model="26B-A4B", weights="dummy", machine=MachineInfo(gpu_name="NVIDIA H200", gpu_count=1),
                    engines={"sglang-patched": EngineInfo(name="sglang-patched", family="sglang", version="0.5.12", patch_stack=stack)})


def cell(run_id, ok):
    kw = dict(run_id=run_id, cell_id="sglang-patched__chat__mtp-off__r1", engine="sglang-patched", model="26B-A4B",
              scenario="chat", started_at="2026-11-27T00:00:00Z")
    if ok:
        m = BenchMetrics(completed=1, duration_s=1, request_throughput=1, output_throughput=1, total_token_throughput=1,
                         total_input_tokens=1, total_output_tokens=1)
        return CellResult(status="ok", metrics=m, **kw)
    return CellResult(status="failed", failure=Failure(stage="other", message="aborted"), **kw)


def report_of_one_run(tmp_path, m: Manifest, cells: list[CellResult]) -> str:
    """Write one run (manifest + cell records) under tmp_path/runs and return the report `harness report` renders."""
    import json

    from typer.testing import CliRunner

    from harness.cli.app import app

    rd = tmp_path / "runs" / m.run_id
    (rd / "cells").mkdir(parents=True)
    (rd / "manifest.json").write_text(m.model_dump_json())
    for c in cells:
        (rd / "cells" / f"{c.cell_id}.json").write_text(json.dumps(c.model_dump(mode="json")))
    out = tmp_path / "C.md"
    r = CliRunner().invoke(app, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--no-plots"])
    assert r.exit_code == 0, r.output
    return out.read_text()


def test_aborted_run_goes_after_runs_with_results():
    aborted = Run("20261127T01-a", Path("a"), manifest("20261127T01-a", "old"), [(cell("20261127T01-a", False), Path("x"))])
    good = Run("20261127T02-b", Path("b"), manifest("20261127T02-b", "new"), [(cell("20261127T02-b", True), Path("y"))])
    groups = group_runs([aborted, good])
    assert [g.runs[0].run_id for g in groups] == ["20261127T02-b", "20261127T01-a"]
    assert len(groups) == 2  # different stacks are still never mixed


def test_measured_window_warnings_are_shown(tmp_path):
    """A server warning logged inside the measured window (e.g. vLLM's lazy Triton JIT) reaches the report."""
    from harness.results import ServerObservations

    rid = "20261127T03-c"
    m = manifest(rid, None)
    m.engines = {"vllm": EngineInfo(name="vllm", family="vllm", version="0.22.0")}
    c = cell(rid, True)
    c.engine, c.cell_id = "vllm", "vllm__chat__mtp-off__r1"
    c.server = ServerObservations(warnings_in_window=["WARNING Triton kernel JIT compilation during inference: fused_moe_kernel"])
    text = report_of_one_run(tmp_path, m, [c])
    assert "Measurement warnings" in text and "fused_moe_kernel" in text
    assert "⚠ 1 server warning(s) in the measured window" in text
