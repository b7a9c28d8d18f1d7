"""`harness runs compare A B`: one engine of one run (or of pooled runs) against another, across report groups:
Welch deltas per scenario and MTP mode with better/worse by the metric's direction, failed cells counted, scenarios
on one side only listed, environment differences said and a warning where GPU or weights differ."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_report_grouping import manifest, write_run  # noqa: E402
from test_report_pooled import _failed  # noqa: E402
from test_report_standing import _cell  # noqa: E402

from analysis import run_compare as rc  # noqa: E402
from analysis import stats  # noqa: E402
from analysis.tables import fmt_delta  # noqa: E402
from harness.cli.app import app  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.results import EngineInfo  # noqa: E402

A, A2, B = "20261128T01-new-a1a1", "20261128T02-new-a2a2", "20261127T01-old-b0b0"
# (tok/s, TTFT, TPOT) per repeat
A_CHAT = [(100, 50, 20.0), (102, 52, 20.5), (104, 54, 21.0)]
B_CHAT = [(90, 60, 18.0), (91, 61, 18.1), (92, 62, 18.2)]
A_SUM = [(200, 1000, 30.0), (210, 1010, 30.5)]
B_SUM = [(190, 1000, 30.2), (220, 1020, 30.4)]


def _cells(rid, engine, scenario, values, first=1):
    return [_cell(rid, engine, scenario, r, *v) for r, v in enumerate(values, first)]


@pytest.fixture
def runs(tmp_path):
    """A: sglang-patched on a new stack (summarization r3 failed, prefill-3k only here); A2: two more chat repeats of
    it in another run; B: unpatched sglang of an older lease, with sglang-patched too (decode-burst only here)."""
    ma = manifest(A, "new" * 10)
    write_run(tmp_path, ma, [*_cells(A, "sglang-patched", "chat", A_CHAT), *_cells(A, "sglang-patched", "summarization", A_SUM),
                             _failed(A, "sglang-patched", "summarization", 3),
                             *_cells(A, "sglang-patched", "prefill-3k", [(50, 500, 25.0)])])
    write_run(tmp_path, manifest(A2, "new" * 10), _cells(A2, "sglang-patched", "chat", [(106, 56, 21.5), (108, 58, 22.0)]))
    mb = manifest(B, "old" * 10)
    mb.engines["sglang"] = EngineInfo(name="sglang", family="sglang", version="0.5.11")
    write_run(tmp_path, mb, [*_cells(B, "sglang", "chat", B_CHAT), *_cells(B, "sglang", "summarization", B_SUM),
                             *_cells(B, "sglang", "decode-burst", [(300, 40, 10.0)]),
                             *_cells(B, "sglang-patched", "chat", B_CHAT)])
    return tmp_path / "runs"


def _invoke(runs, *args):
    return CliRunner().invoke(app, ["runs", "compare", *args, "--runs-dir", str(runs)])


def _json(runs, *args):
    r = _invoke(runs, *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _metric(row, col):
    return next(m for m in row["metrics"] if m["metric"] == col)


def test_deltas_intervals_and_verdicts_by_direction(runs):
    out = _json(runs, A, f"{B}:sglang")  # A has one engine: ENGINE may be left out
    assert [(r["scenario"], r["mtp"]) for r in out["rows"]] == [("chat", False), ("summarization", False)]
    chat, summ = out["rows"]
    for row, va, vb in ((chat, A_CHAT, B_CHAT), (summ, A_SUM, B_SUM)):
        for i, col in enumerate(rc.DEFAULT_METRICS):
            m = _metric(row, col)
            want = stats.welch_delta([v[i] for v in va], [v[i] for v in vb])
            assert m["delta"]["rel"] == pytest.approx(want.rel)
            assert (m["delta"]["rel_lo"], m["delta"]["rel_hi"]) == pytest.approx((want.rel_lo, want.rel_hi))
            assert (m["a"]["n"], m["b"]["n"]) == (len(va), len(vb))
            assert m["a"]["mean"] == pytest.approx(sum(v[i] for v in va) / len(va))
    assert _metric(chat, "output_tok_s")["delta"]["rel"] == pytest.approx(102 / 91 - 1)
    # higher tok/s and lower TTFT are better; a higher TPOT is worse; an interval holding 0 is no call
    assert [_metric(chat, c)["verdict"] for c in rc.DEFAULT_METRICS] == ["better", "better", "worse"]
    assert [_metric(summ, c)["verdict"] for c in rc.DEFAULT_METRICS] == [None, None, None]
    # the failed repeat is counted, not dropped
    assert (summ["cells_a"], summ["cells_b"]) == ({"ok": 2, "failed": 1}, {"ok": 2})
    assert out["only_a"] == [{"scenario": "prefill-3k", "mtp": False, "cells": {"ok": 1}}]
    assert out["only_b"] == [{"scenario": "decode-burst", "mtp": False, "cells": {"ok": 1}}]
    env = {e["field"]: e for e in out["environment"]}
    assert env["engine"]["a"] == ["sglang 0.5.12"] and env["engine"]["b"] == ["sglang 0.5.11"] and env["engine"]["differs"]
    assert env["patch stack"]["a"] == ["newnewnewnew"] and env["patch stack"]["b"] == ["-"]
    assert not env["GPU"]["differs"] and not env["weights"]["differs"] and out["warnings"] == []


def test_text_output(runs):
    r = _invoke(runs, A, f"{B}:sglang")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"A: {A}:sglang-patched" in text and f"B: {B}:sglang" in text
    assert "differs: engine: A sglang 0.5.12 | B sglang 0.5.11" in text
    assert "only in A: prefill-3k MTP off (1 ok)" in text and "only in B: decode-burst MTP off (1 ok)" in text
    assert "WARNING" not in text
    res = rc.compare(rc.parse_side(A, runs), rc.parse_side(f"{B}:sglang", runs))
    rows = rc.table(res).values.tolist()
    assert ["summarization", "off", "cells", "2 ok, 1 failed", "2 ok", "", ""] in rows
    d = stats.welch_delta([v[0] for v in A_CHAT], [v[0] for v in B_CHAT])
    assert ["chat", "off", "output tok/s (tok/s) ↑", "102.0 ± 5.0 (n=3)", "91.0 ± 2.5 (n=3)", fmt_delta(d), "better"] in rows
    assert fmt_delta(d).endswith("✱")


def test_pooled_side_and_metric_option(runs):
    out = _json(runs, f"{A},{A2}", f"{B}:sglang", "--metric", "output_tok_s")
    chat = out["rows"][0]
    assert [m["metric"] for m in chat["metrics"]] == ["output_tok_s"] and chat["cells_a"] == {"ok": 5}
    want = stats.welch_delta([100, 102, 104, 106, 108], [v[0] for v in B_CHAT])
    assert _metric(chat, "output_tok_s")["delta"]["rel_lo"] == pytest.approx(want.rel_lo)
    assert [r["run_id"] for r in out["a"]["runs"]] == [A, A2]
    r = _invoke(runs, A, A2, "--metric", "tok")
    assert isinstance(r.exception, HarnessError) and "unknown metric(s) tok" in str(r.exception)


def test_gpu_or_weights_difference_warns_but_compares(runs, tmp_path):
    c = "20261128T03-h100-c3c3"
    m = manifest(c, "new" * 10)
    m.machine.gpu_name, m.weights = "NVIDIA H100 80GB HBM3", "real"
    write_run(tmp_path, m, _cells(c, "sglang-patched", "chat", A_CHAT))
    out = _json(runs, c, A)
    assert out["warnings"] == ["not comparable: weights differs (A: real; B: dummy)",
                               "not comparable: GPU differs (A: NVIDIA H100 80GB HBM3 x1; B: NVIDIA H200 x1)"]
    assert len(out["rows"]) == 1
    text = " ".join(_invoke(runs, c, A).output.split())
    assert "WARNING not comparable: GPU differs (A: NVIDIA H100 80GB HBM3 x1; B: NVIDIA H200 x1)" in text
    # a pooled side that mixes GPUs is not comparable either
    assert any("GPU differs" in w for w in _json(runs, f"{A},{c}", A)["warnings"])


def test_scenario_definition_difference_warns(runs, tmp_path):
    d, e = "20261128T04-def-d4d4", "20261128T05-def-e5e5"
    for rid, tokens in ((d, 128), (e, 256)):
        m = manifest(rid, "new" * 10)
        m.scenarios = {"chat": {"num_prompts": 32, "output_len": tokens}}
        write_run(tmp_path, m, _cells(rid, "sglang-patched", "chat", A_CHAT))
    (w,) = _json(runs, d, e)["warnings"]
    assert w.startswith("not comparable: scenario chat differs (A: ")
    assert _json(runs, d, A)["warnings"] == []  # A recorded no definition: nothing to compare


@pytest.mark.parametrize("args, words", [
    ((A, B), f"run {B} has engines sglang, sglang-patched: name one as {B}:ENGINE"),
    ((A, f"{B}:vllm"), f"run {B} has no engine 'vllm'; its engines: sglang, sglang-patched"),
    (("a1a1", B), f"no run 'a1a1'"),
])
def test_usage_errors(runs, args, words):
    r = _invoke(runs, *args)
    assert isinstance(r.exception, HarnessError) and words in str(r.exception), r.output
    if "no run" in words:  # a short id names the run it is a part of
        assert f"close matches: {A}" in str(r.exception)
