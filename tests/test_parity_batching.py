"""Parity prompts go one at a time unless asked otherwise, and records say how they went: with several in flight,
which prompts share a batch depends on arrival timing, so the numerics a record compares include batch
composition (generate_all's concurrency, the generations file's and each record side's ``concurrency``, the
record's ``batching``, the report's Batching column)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from fake_engine import launch  # noqa: E402
from test_bench_cli import harness  # noqa: E402
from test_parity_from_run import A, B, IDS, make_run, one_line, write_generations  # noqa: E402
from test_parity_margins import prompt_set  # noqa: E402

from analysis.evals import parse_eval_record  # noqa: E402
from analysis.tables import parity_table  # noqa: E402
from harness.bench import generations_file, parity_from_generations  # noqa: E402
from harness.cli.app import app  # noqa: E402
from harness.evals.parity import batching, default_prompts_path, generate_all, load_prompts  # noqa: E402
from harness.evals.parity_sources import load_answer_set  # noqa: E402

VARIED = "prompts sent 8 at a time: batch composition varied"


def test_generate_all_sends_one_prompt_at_a_time_by_default(tmp_path):
    pset, _ = load_prompts(default_prompts_path())
    # each answer takes a while, so requests sent together overlap at the server
    with launch("--token-delay", "0.01", workdir=str(tmp_path)) as one, \
            launch("--token-delay", "0.01", workdir=str(tmp_path)) as eight:
        gens = generate_all(one.base_url, "fake-model", pset, max_tokens=8)
        generate_all(eight.base_url, "fake-model", pset, max_tokens=8, concurrency=8)
        assert [g.id for g in gens] == [p.id for p in pset.prompts] and all(g.error is None for g in gens)
        assert len(one.requests()) >= 20 and one.max_in_flight() == 1
        assert 1 < eight.max_in_flight() <= 8


def test_batching_entry():
    assert batching(1, 1) == {"batch_invariant": True, "why": None}
    assert batching(8, 8) == {"batch_invariant": False, "why": VARIED}
    assert batching(None, None) == {"batch_invariant": False, "why": "concurrency not recorded"}
    assert batching(8, 1)["why"] == ("prompts sent 8 at a time (a) / prompts sent one at a time (b): "
                                     "batch composition varied")
    assert batching(1, None)["why"] == "prompts sent one at a time (a) / concurrency not recorded (b)"


def test_cli_parity_records_each_sides_concurrency(tmp_path):
    ppath = prompt_set(tmp_path)
    recs, outs = {}, {}
    with launch(workdir=str(tmp_path)) as a, launch("--answer-seed", "2", workdir=str(tmp_path)) as b:
        for name, extra in (("default", []), ("eight", ["--concurrency", "8"])):
            out = tmp_path / f"parity-{name}.json"
            r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "vllm", "--model", "fake-model",
                                         "--a-url", a.base_url, "--b-url", b.base_url, "--prompts", str(ppath),
                                         "--max-tokens", "8", "--out", str(out), *extra])
            assert r.exit_code == 0, r.output
            recs[name], outs[name] = json.loads(out.read_text()), " ".join(r.output.split())
        r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "vllm", "--model", "fake-model", "--a-url",
                                     a.base_url, "--b-url", b.base_url, "--concurrency", "0",
                                     "--out", str(tmp_path / "zero.json")])
    assert "--concurrency must be at least 1, got 0" in str(r.exception)
    assert not (tmp_path / "zero.json").exists()
    d, e = recs["default"], recs["eight"]
    assert d["a"]["concurrency"] == d["b"]["concurrency"] == 1
    assert d["batching"] == {"batch_invariant": True, "why": None} and "batching:" not in outs["default"]
    assert e["a"]["concurrency"] == e["b"]["concurrency"] == 8
    assert e["batching"] == {"batch_invariant": False, "why": VARIED}
    assert f"batching: {VARIED}" in outs["eight"]


def test_records_from_stored_generations_carry_concurrency(tmp_path):
    """A run's generations file says its concurrency; one written before the key existed gives None, and the
    record built from them says the batching is not known. A record's side keeps it for --from-generations."""
    run = make_run(tmp_path / "runs")
    for e in (A, B):
        write_generations(run, e, False)
    fa, fb = generations_file(run, A, False), generations_file(run, B, False)
    old = parity_from_generations(fa, fb, A, B, "31B", False)
    assert old["a"]["concurrency"] is None and old["b"]["concurrency"] is None
    assert old["batching"] == {"batch_invariant": False, "why": "concurrency not recorded"}
    for f in (fa, fb):
        f.write_text(json.dumps({**json.loads(f.read_text()), "concurrency": 1}))
    new = parity_from_generations(fa, fb, A, B, "31B", False)
    assert new["a"] == {"engine": A, "mtp": False, "dummy_weights": True, "concurrency": 1}
    assert new["b"]["concurrency"] == 1 and new["batching"]["batch_invariant"] is True
    rec = tmp_path / "parity.json"
    rec.write_text(json.dumps({**new, "b": {**new["b"], "concurrency": 8}}))
    assert load_answer_set(f"{rec}#a").meta["concurrency"] == 1
    assert load_answer_set(f"{rec}#b").meta["concurrency"] == 8
    assert load_answer_set(str(fa)).meta["concurrency"] == 1


def test_compare_refuses_parity_concurrency_below_one(tmp_path):
    r = harness("compare", "-m", "26B-A4B", "--parity", "--parity-concurrency", "0", "--dry-run",
                "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error: --parity-concurrency must be at least 1, got 0" in one_line(r)
    assert not (tmp_path / "runs").exists()


def _record(tmp_path: Path, name: str, **sides) -> object:
    d = {"kind": "parity", "model": "m", "a": {"engine": "sglang", **sides.get("a", {})},
         "b": {"engine": "vllm", **sides.get("b", {})}, "n": 20, "matches": 20, "match_rate": 1.0,
         "per_prompt": []}
    return parse_eval_record(d, tmp_path / f"parity-{name}.json")


def test_report_batching_column(tmp_path):
    recs = [_record(tmp_path, "old"),  # written before the key existed, as the committed records under runs/
            _record(tmp_path, "eight", a={"concurrency": 8}, b={"concurrency": 8}),
            _record(tmp_path, "one", a={"concurrency": 1}, b={"concurrency": 1}),
            _record(tmp_path, "mixed", a={"concurrency": 1}, b={"concurrency": None})]
    df = parity_table(recs, lambda p: p.name)
    assert list(df.columns)[5:8] == ["Signal", "Batching", "Divergence margins"]
    col = dict(zip(df["Record"], df["Batching"]))
    assert col == {"[record](parity-old.json)": "concurrency not recorded",
                   "[record](parity-eight.json)": VARIED,
                   "[record](parity-one.json)": "prompts sent one at a time",
                   "[record](parity-mixed.json)": "prompts sent one at a time (a) / concurrency not recorded (b)"}


def test_report_renders_an_old_record_without_concurrency(tmp_path):
    """A whole report over a run whose parity record predates the key: it renders, and says so."""
    from analysis.render import build

    runs = tmp_path / "runs"
    run = make_run(runs)
    for e in (A, B):
        write_generations(run, e, False)
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs), "--pair", f"{A}:{B}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "batching: concurrency not recorded" in one_line(r)
    rec_path = run / "evals" / f"parity-{A}-vs-{B}-mtp-off.json"
    rec = json.loads(rec_path.read_text())
    for side in ("a", "b"):
        del rec[side]["concurrency"]
    del rec["batching"]
    rec_path.write_text(json.dumps(rec))
    rep = build(None, runs, tmp_path / "C.md", with_plots=False)
    line = next(x for x in rep.markdown.splitlines() if x.startswith(f"| {A} vs {B}"))
    assert "| concurrency not recorded |" in line and f"| 19/{len(IDS)} |" in line
    assert os.path.basename(str(rec_path)) in line
