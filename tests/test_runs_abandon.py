"""`harness runs abandon`: a run whose host went away is closed as failed, unfinished cells recorded, nothing dropped."""

import json

from typer.testing import CliRunner

from harness.cli.app import app
from harness.results import CellResult
from harness.runs import RunDir, utcnow

runner = CliRunner()


def _run(tmp_path, status="running"):
    rd = RunDir.create({"command": ["harness", "compare"], "model": "31B", "weights": "dummy",
                        "cells": ["sglang-patched__chat__mtp-off__r1", "sglang-patched__summarization__mtp-off__r1",
                                  "sglang-patched-no-ar-fusion__chat__mtp-on__r2"]}, base=tmp_path)
    rd.write_cell(CellResult(run_id=rd.manifest.run_id, cell_id="sglang-patched__chat__mtp-off__r1", engine="sglang-patched",
                             model="31B", scenario="chat", status="ok", started_at=utcnow()))
    rd.manifest.status = status
    rd.save_manifest()
    return rd


def test_abandon_records_unfinished_cells_and_fails_the_run(tmp_path):
    rd = _run(tmp_path)
    tail = tmp_path / "tail.txt"
    tail.write_text("Capturing batches (bs=256 ...)\n")
    res = runner.invoke(app, ["runs", "abandon", rd.manifest.run_id, "--runs-dir", str(tmp_path),
                              "--reason", "GPU host given back mid-run", "--log-tail", str(tail)])
    assert res.exit_code == 0, res.output
    again = RunDir.open(rd.manifest.run_id, tmp_path)
    assert again.manifest.status == "failed" and again.manifest.finished_at
    assert any(n.startswith("abandoned at ") and "GPU host given back mid-run" in n for n in again.manifest.notes)
    ok = again.read_cell("sglang-patched__chat__mtp-off__r1")
    assert ok.status == "ok"  # a finished cell is left alone
    lost = again.read_cell("sglang-patched-no-ar-fusion__chat__mtp-on__r2")
    assert (lost.status, lost.engine, lost.scenario, lost.mtp, lost.repeat) == ("failed", "sglang-patched-no-ar-fusion", "chat", True, 2)
    assert "GPU host given back mid-run" in lost.failure.message and "Capturing batches" in lost.failure.log_tail
    assert again.read_cell("sglang-patched__summarization__mtp-off__r1").status == "failed"


def test_abandon_refuses_a_finished_run(tmp_path):
    rd = _run(tmp_path, status="complete")
    res = runner.invoke(app, ["runs", "abandon", rd.manifest.run_id, "--runs-dir", str(tmp_path), "--reason", "x"])
    assert res.exit_code != 0 and "only a 'running' or 'interrupted' run" in str(res.exception)
    assert json.loads((rd.path / "manifest.json").read_text())["status"] == "complete"
