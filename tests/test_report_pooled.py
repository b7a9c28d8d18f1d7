"""The headline's "Pooled across runs" note: where a group's cells of one engine, scenario and MTP mode come from
more than one run (another lease, host or day), the headline pools them and a table after it gives each run's own
n, output tok/s and median TPOT; a group where nothing is pooled gets no such note."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_report_grouping import manifest, render_runs, write_run  # noqa: E402
from test_report_standing import _cell  # noqa: E402

from harness.results import CellResult, EngineInfo, Failure  # noqa: E402

LEAD = "**Pooled across runs.**"
A, B = "20261127T01-a", "20261127T05-b"


def _failed(rid: str, engine: str, scenario: str, repeat: int) -> CellResult:
    return CellResult(status="failed", failure=Failure(stage="other", message="server died"), run_id=rid,
                      engine=engine, model="26B-A4B", scenario=scenario, repeat=repeat,
                      started_at="2026-11-27T00:00:00Z", cell_id=f"{engine}__{scenario}__mtp-off__r{repeat}")


def _report(tmp_path: Path, runs: dict[str, list[CellResult]]) -> str:
    """Write each run (same environment, so one group) under tmp_path/runs and return the rendered report."""
    for rid, cells in runs.items():
        m = manifest(rid, "s")
        m.created_at = f"2026-11-27T{rid[9:11]}:00:00Z"
        m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
        write_run(tmp_path, m, cells)
    return render_runs(tmp_path)


def _rows(md: str) -> list[list[str]]:
    note = md.split(LEAD, 1)[1].split("\n\n**", 1)[0].split("\n### ", 1)[0]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in note.splitlines() if ln.startswith("| ")]


def test_cells_of_one_engine_from_two_runs_get_a_row_per_run(tmp_path):
    md = _report(tmp_path, {
        A: [*[_cell(A, "sglang-patched", "chat", r, v, 100, p)
              for r, (v, p) in enumerate([(100, 20.0), (102, 20.2), (104, 20.4)], 1)],
            *[_cell(A, "vllm", "chat", r, v, 100, 18.0) for r, v in enumerate([95, 96, 97], 1)],
            # MTP on in run A only: not pooled
            _cell(A, "sglang-patched", "chat", 1, 150, 100, 10, mtp=True)],
        B: [*[_cell(B, "sglang-patched", "chat", r, v, 100, p) for r, (v, p) in enumerate([(90, 22.0), (92, 22.2)], 1)],
            # vllm's cell in run B failed: vllm's chat numbers still come from one run only
            _failed(B, "vllm", "chat", 1)],
    })
    assert md.count('<a id="group-') == 1  # both runs in one group
    assert "(n=5)" in md.split("### Headline", 1)[1].split(LEAD, 1)[0]  # the headline pools 3 + 2 repeats
    # the note follows the headline's legend line and comes before the next section
    assert md.index("✱ = the 95% Welch interval") < md.index(LEAD) < md.index("### Cell records")
    assert "between the runs (another lease, host or day) counts as noise" in md
    rows = _rows(md)
    # 102 ± t(0.975, 2) * 2 / sqrt(3); 91 ± t(0.975, 1) * sqrt(2) / sqrt(2); TPOT likewise
    assert rows == [
        ["Engine", "Scenario", "MTP", "Run", "n", "output tok/s (tok/s) ↑", "median TPOT (ms) ↓"],
        ["sglang-patched", "chat", "off", f"[{A}](runs/{A}/manifest.json)", "3", "102.0 ± 5.0", "20.20 ± 0.50"],
        ["sglang-patched", "chat", "off", f"[{B}](runs/{B}/manifest.json)", "2", "91.0 ± 12.7", "22.10 ± 1.27"],
    ]
    assert "a **Pooled across runs** table after it" in md  # "How to read this report" describes it


def test_a_group_where_nothing_is_pooled_has_no_note(tmp_path):
    # two runs of one group, but each (engine, scenario, MTP) has ok cells from one run only
    md = _report(tmp_path, {
        A: [*[_cell(A, "vllm", "chat", r, v, 100, 18.0) for r, v in enumerate([95, 96, 97], 1)],
            _cell(A, "sglang-patched", "chat", 1, 150, 100, 10, mtp=True)],
        B: [*[_cell(B, "sglang-patched", "chat", r, v, 100, 20.0) for r, v in enumerate([100, 102], 1)],
            _failed(B, "vllm", "chat", 2)],
    })
    assert md.count('<a id="group-') == 1 and f"runs/{B}/manifest.json" in md and f"runs/{A}/manifest.json" in md
    assert LEAD not in md
