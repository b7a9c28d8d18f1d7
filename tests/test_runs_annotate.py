"""`harness runs annotate`: a dated note added to a run after the fact (e.g. correcting a wrong --note) lands in the
manifest without touching the run's other notes or cells, shows in `runs show` and in the report's environment block."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_report import sections, table_after  # noqa: E402
from test_tp_variants_notes import write_run as _write_run  # noqa: E402

from analysis.render import build, write_report  # noqa: E402
from harness.cli.app import app  # noqa: E402
from harness.runs import RunDir, annotations  # noqa: E402

runner = CliRunner()
ROW = "Added after the run (`harness runs annotate`)"


def write_run(runs: Path, run_id: str, notes: list[str]) -> Path:
    _write_run(runs, run_id, {"tp": 1, "server_args": []}, notes)
    return runs / run_id


def env_block(runs: Path, out: Path) -> dict[str, str]:
    write_report(build(None, runs, out, with_plots=False, model_loader=lambda name: (None, "no config in this test")))
    (body,) = [b for t, b in sections(out.read_text()).items() if t[:1].isdigit()]
    return {r[""]: r["value"] for r in table_after(body, "### Environment")}


def test_annotate_appends_a_dated_note_and_the_report_shows_it(tmp_path):
    runs = tmp_path / "runs"
    rd = write_run(runs, "20261128T093054Z-26B-A4B-aaaa", ["note: other jobs ran on the other GPUs", "weights: dummy"])
    cell_before = sorted((p.name, p.read_bytes()) for p in (rd / "cells").iterdir())
    env = env_block(runs, tmp_path / "C.md")
    assert ROW not in env  # no annotation, no row: the other groups' tables stay as they were
    res = runner.invoke(app, ["runs", "annotate", rd.name, "the host had one GPU:\n  no other jobs ran",
                              "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    notes = json.loads((rd / "manifest.json").read_text())["notes"]
    assert notes[:2] == ["note: other jobs ran on the other GPUs", "weights: dummy"]  # earlier notes untouched
    assert len(notes) == 3 and notes[2].startswith("annotated at 20") and notes[2].endswith(": the host had one GPU: no other jobs ran")
    assert sorted((p.name, p.read_bytes()) for p in (rd / "cells").iterdir()) == cell_before
    env = env_block(runs, tmp_path / "C.md")
    assert env["Notes given with --note"] == "other jobs ran on the other GPUs"  # the record still says what was given
    (when, _), = annotations(RunDir.open(rd.name, runs).manifest)
    assert when == notes[2][len("annotated at "):].split(": ")[0]
    assert env[ROW] == f"{rd.name} ({when}): the host had one GPU: no other jobs ran"
    assert runner.invoke(app, ["runs", "annotate", rd.name, "second", "--runs-dir", str(runs)]).exit_code == 0
    (w1, _), (w2, t2) = annotations(RunDir.open(rd.name, runs).manifest)
    assert t2 == "second" and env_block(runs, tmp_path / "C.md")[ROW] == (
        f"{rd.name} ({w1}): the host had one GPU: no other jobs ran; {rd.name} ({w2}): second")
    show = runner.invoke(app, ["runs", "show", rd.name, "--runs-dir", str(runs)])
    assert show.exit_code == 0 and "the host had one GPU: no other jobs ran" in show.output


def test_annotate_refuses_empty_text_and_unknown_runs(tmp_path):
    runs = tmp_path / "runs"
    rd = write_run(runs, "20261128T093054Z-26B-A4B-bbbb", ["weights: dummy"])
    before = (rd / "manifest.json").read_bytes()
    res = runner.invoke(app, ["runs", "annotate", rd.name, "  \n ", "--runs-dir", str(runs)])
    assert res.exit_code != 0 and "needs some text" in str(res.exception)
    res = runner.invoke(app, ["runs", "annotate", "20261128T000000Z-nope", "x", "--runs-dir", str(runs)])
    assert res.exit_code != 0
    assert (rd / "manifest.json").read_bytes() == before
    assert RunDir.open(rd.name, runs).manifest.notes == ["weights: dummy"]
