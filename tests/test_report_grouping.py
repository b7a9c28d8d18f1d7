"""How runs are grouped into report tables: an aborted run does not claim a group before the runs with numbers; a
baseline-only run joins the group of its own lease; an engine with no recorded version does not split groups."""

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


def write_run(tmp_path, m: Manifest, cells: list[CellResult]) -> None:
    """Write one run's manifest and cell records under tmp_path/runs."""
    import json

    rd = tmp_path / "runs" / m.run_id
    (rd / "cells").mkdir(parents=True)
    (rd / "manifest.json").write_text(m.model_dump_json())
    for c in cells:
        (rd / "cells" / f"{c.cell_id}.json").write_text(json.dumps(c.model_dump(mode="json")))


def render_runs(tmp_path) -> str:
    """The report `harness report` renders from tmp_path/runs (no plots)."""
    from typer.testing import CliRunner

    from harness.cli.app import app

    out = tmp_path / "C.md"
    r = CliRunner().invoke(app, ["report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--no-plots"])
    assert r.exit_code == 0, r.output
    return out.read_text()


def report_of_one_run(tmp_path, m: Manifest, cells: list[CellResult]) -> str:
    """Write one run (manifest + cell records) under tmp_path/runs and return the report `harness report` renders."""
    write_run(tmp_path, m, cells)
    return render_runs(tmp_path)


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


def _run(run_id, created, engines: dict, cells: list[tuple[str, bool]]):
    """A run of `engines` ({name: (version, stack)}) with one chat cell per (engine, ok)."""
    m = manifest(run_id, None)
    m.created_at = created
    m.engines = {e: EngineInfo(name=e, family="sglang", version=v, patch_stack=st) for e, (v, st) in engines.items()}
    out = []
    for e, ok in cells:
        c = cell(run_id, ok)
        c.engine, c.cell_id = e, f"{e}__chat__mtp-off__r1"
        out.append((c, Path(f"{run_id}-{e}")))
    return Run(run_id, Path(run_id), m, out)


def test_baseline_only_run_joins_the_stack_group_of_its_own_lease():
    """A run of the unpatched engine alone fits every group of its machine; it joins the one taken nearest in time,
    not the oldest one it fits."""
    old = _run("20261120T10-a", "2026-11-20T10:00:00Z", {"sglang-patched": ("0.5.12", "old"), "sglang": ("0.5.12", None)},
               [("sglang-patched", True), ("sglang", True)])
    new = _run("20261127T10-b", "2026-11-27T10:20:00Z", {"sglang-patched": ("0.5.12", "new")}, [("sglang-patched", True)])
    base = _run("20261127T10-c", "2026-11-27T10:15:00Z", {"sglang": ("0.5.12", None)}, [("sglang", True)])
    groups = group_runs([old, base, new])
    by_run = {r.run_id: g.index for g in groups for r in g.runs}
    assert by_run["20261127T10-c"] == by_run["20261127T10-b"] != by_run["20261120T10-a"]


def test_baseline_started_before_its_leases_patched_run_still_joins_that_group():
    """Session 9: the vLLM run of a lease was created 14 s before the lease's patched run (its id sorts first); it
    must join the new stack's group, not the older group it also fits."""
    old = _run("20261120T10-a", "2026-11-20T10:00:00Z", {"sglang-patched": ("0.5.12", "old")}, [("sglang-patched", True)])
    old_base = _run("20261120T10-b", "2026-11-20T10:01:00Z", {"sglang": ("0.5.12", None)}, [("sglang", True)])
    base = _run("20261127T17-a", "2026-11-27T17:55:52Z", {"sglang": ("0.5.12", None)}, [("sglang", True)])
    new = _run("20261127T17-b", "2026-11-27T17:56:06Z", {"sglang-patched": ("0.5.12", "new")}, [("sglang-patched", True)])
    groups = group_runs([old, old_base, base, new])
    by_run = {r.run_id: g.index for g in groups for r in g.runs}
    assert by_run["20261127T17-a"] == by_run["20261127T17-b"] != by_run["20261120T10-a"] == by_run["20261120T10-b"]


def test_a_control_profile_of_another_stack_does_not_join_a_group():
    """Session 9: an A/B of two control profiles (engine names no other run used) on a newer stack had joined the
    group of an older stack, because no engine name collided; a group holds one patch stack."""
    old = _run("20261127T15-a", "2026-11-27T15:49:00Z", {"sglang-patched": ("0.5.12", "old")}, [("sglang-patched", True)])
    ab = _run("20261127T18-b", "2026-11-27T18:39:55Z", {"sglang-patched-x-on": ("0.5.12", "new"),
                                                        "sglang-patched-x-off": ("0.5.12", "new")},
              [("sglang-patched-x-on", True), ("sglang-patched-x-off", True)])
    groups = group_runs([old, ab])
    assert len(groups) == 2
    g = next(g for g in groups if g.runs[0].run_id == "20261127T18-b")
    assert g.variant == "sglang-patched-x-off stack new, sglang-patched-x-on stack new"  # its title names its stack


def test_failed_engine_without_a_recorded_version_does_not_split_groups():
    """An engine whose environment was missing (no version recorded, every cell failed) must not give the group a
    '?' signature that pushes the measured runs of that engine into another group."""
    failed = _run("20261127T10-a", "2026-11-27T10:08:00Z", {"sglang": (None, None)}, [("sglang", False)])
    good = _run("20261127T10-b", "2026-11-27T10:14:00Z", {"sglang": ("0.5.12", None)}, [("sglang", True)])
    patched = _run("20261127T10-c", "2026-11-27T10:29:00Z", {"sglang-patched": ("0.5.12", "new")}, [("sglang-patched", True)])
    groups = group_runs([failed, good, patched])
    assert len(groups) == 1
    assert groups[0].signature["engine:sglang"][1] == "0.5.12"


def test_mtp_on_under_dummy_weights_names_each_engines_acceptance(tmp_path):
    """MTP-on throughput under random weights follows an artificial acceptance; the report says so and names it."""
    from harness.results import SpecDecode

    rid = "20261127T04-d"
    m = manifest(rid, "s")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    cells = []
    for e, acc in (("sglang-patched", 4.0), ("vllm", 1.0)):
        c = cell(rid, True)
        c.engine, c.mtp, c.cell_id = e, True, f"{e}__chat__mtp-on__r1"
        c.spec_decode = SpecDecode(accept_length=acc, source="test")
        cells.append(c)
    text = report_of_one_run(tmp_path, m, cells)
    assert "MTP-on rows under dummy weights are not a comparison of speculative decoding" in text
    assert "sglang-patched 4.00, vllm 1.00" in text
    off = cell("20261127T05-e", True)
    text_off = report_of_one_run(tmp_path / "off", manifest("20261127T05-e", "s"), [off])
    assert "are not a comparison of speculative decoding" not in text_off
