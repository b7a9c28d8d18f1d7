"""Pairwise parity from stored generations: `harness parity --from-run`, and `harness compare --parity` keeping
the pairs of the engines that finished when the run is interrupted (SIGTERM) or fails part-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO, fake_overrides, processes_with  # noqa: E402
from test_bench_cli import harness, only_run  # noqa: E402
from test_report_grouping import manifest  # noqa: E402

from harness.evals.parity import default_prompts_path, load_prompts  # noqa: E402
from harness.results import cell_id  # noqa: E402

PROMPTS, PROMPTS_SHA = load_prompts(default_prompts_path())
IDS = [p.id for p in PROMPTS.prompts]
# the run's engine order (as --engines gave it), deliberately not alphabetical
A, B, C = "sglang-patched", "sglang-patched-no-ar-fusion", "sglang"
DIFF_PROMPT = IDS[2]  # B answers this prompt differently from A and C


def generation(pid: str, text: str) -> dict:
    toks = text.split(" ")
    return {"id": pid, "text": text, "tokens": toks, "completion_tokens": len(toks), "finish_reason": "length",
            "error": None, "latency_s": 0.5}


def answers(engine: str) -> list[dict]:
    out = []
    for pid in IDS:
        text = f"answer to {pid} is forty two"
        if engine == B and pid == DIFF_PROMPT:
            text = f"answer to {pid} was forty three"  # tokens: 'answer' 'to' PID then 'is' / 'was'
        out.append(generation(pid, text))
    return out


def write_generations(run: Path, engine: str, mtp: bool, gens: list[dict] | None = None, dummy: bool = True) -> Path:
    p = run / "evals" / f"generations-{engine}__{'mtp-on' if mtp else 'mtp-off'}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"engine": engine, "mtp": mtp, "prompts_sha256": PROMPTS_SHA, "dummy_weights": dummy,
                             "generations": gens if gens is not None else answers(engine)}))
    return p


def make_run(runs: Path, run_id: str = "20261127T090000Z-31B-abcd", engines=(A, B, C)) -> Path:
    """A run directory as an interrupted `compare` leaves it: a manifest (cells in --engines order), no records."""
    m = manifest(run_id, None)
    m.model = "31B"
    m.status = "interrupted"
    m.cells = [cell_id(e, s, False, 1) for e in engines for s in ("chat", "summarization")]
    run = runs / run_id
    (run / "cells").mkdir(parents=True)
    (run / "manifest.json").write_text(m.model_dump_json(indent=2))
    return run


def one_line(r) -> str:
    return " ".join((r.stdout + r.stderr).split())


@pytest.fixture()
def run3(tmp_path):
    """Three engines with mtp-off generations (B differs on one prompt); A and B also with mtp-on (identical)."""
    runs = tmp_path / "runs"
    run = make_run(runs)
    for e in (A, B, C):
        write_generations(run, e, False)
    write_generations(run, A, True, answers(A))
    write_generations(run, B, True, answers(A))
    return runs, run


def test_from_run_writes_every_pair_with_the_right_counts(run3):
    runs, run = run3
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    evals = run / "evals"
    got = sorted(p.name for p in evals.glob("parity-*.json"))
    # pairs in the run's engine order, in both modes that have generations; no C in mtp-on
    assert got == sorted([f"parity-{A}-vs-{B}-mtp-off.json", f"parity-{A}-vs-{C}-mtp-off.json",
                          f"parity-{B}-vs-{C}-mtp-off.json", f"parity-{A}-vs-{B}-mtp-on.json"])
    rec = {p.name: json.loads(p.read_text()) for p in evals.glob("parity-*.json")}
    expect = {(A, B, "off"): 19, (A, C, "off"): 20, (B, C, "off"): 19, (A, B, "on"): 20}
    for (a, b, mode), k in expect.items():
        d = rec[f"parity-{a}-vs-{b}-mtp-{mode}.json"]
        assert d["kind"] == "parity" and d["n"] == 20 and d["matches"] == k and d["match_rate"] == k / 20
        # generations written before they said their concurrency: unknown, and the record says so
        assert d["a"] == {"engine": a, "mtp": mode == "on", "dummy_weights": True, "concurrency": None}
        assert d["batching"] == {"batch_invariant": False, "why": "concurrency not recorded"}
        assert d["b"]["engine"] == b and d["model"] == "31B" and d["run_id"] == run.name
        assert d["computed_by"] == "harness parity --from-run"
        assert d["computed_at"].endswith("Z") and d["computed_at"][:4].isdigit()
        assert d["prompts"]["sha256"] == PROMPTS_SHA and d["sampling"]["max_tokens"] == 256
        bad = [row for row in d["per_prompt"] if not row["exact_match"]]
        if k == 20:
            assert bad == []
        else:
            (row,) = bad
            assert row["id"] == DIFF_PROMPT
            assert row["token_divergence"] == 3 and row["token_method"] == "logprobs"
            assert row["char_divergence"] == len(f"answer to {DIFF_PROMPT} ")
    # the table `harness parity` prints, one per record written, and a summary line
    out = one_line(r)
    assert out.count("match_rate = 19/20") == 2 and out.count("match_rate = 20/20") == 2
    assert f"greedy parity {A} vs {B} (31B, max_tokens 256, MTP off)" in out
    assert "4 parity record(s) written, 0 kept as they were" in out


def test_from_run_never_overwrites(run3):
    runs, run = run3
    existing = run / "evals" / f"parity-{A}-vs-{B}-mtp-off.json"
    existing.write_text('{"kind": "parity", "sentinel": true}')
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    assert existing.read_text() == '{"kind": "parity", "sentinel": true}'
    assert f"parity {A} vs {B} (mtp-off): {existing.name} exists, kept as it is" in one_line(r)
    assert len(list((run / "evals").glob("parity-*.json"))) == 4
    before = {p.name: p.read_bytes() for p in (run / "evals").glob("parity-*.json")}
    r = harness("parity", "--from-run", str(run))  # a run directory works too
    assert r.returncode == 0, r.stdout + r.stderr
    assert {p.name: p.read_bytes() for p in (run / "evals").glob("parity-*.json")} == before
    assert "0 parity record(s) written, 4 kept as they were" in one_line(r)


def test_from_run_pair_selects_and_notes_a_missing_side(run3):
    runs, run = run3
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs), "--pair", f"{C}:{B}", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    (rec,) = json.loads(r.stdout)
    assert (rec["a"]["engine"], rec["b"]["engine"], rec["matches"]) == (C, B, 19)
    assert [p.name for p in (run / "evals").glob("parity-*.json")] == [f"parity-{C}-vs-{B}-mtp-off.json"]
    # C has no mtp-on generations: that mode of the pair is skipped with one line
    assert f"parity {C} vs {B} (mtp-on): skipped, no stored generations from {C}" in one_line(r)


def test_from_run_min_match_rate(run3):
    runs, run = run3
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs), "--min-match-rate", "0.99")
    assert r.returncode == 1
    assert len(list((run / "evals").glob("parity-*.json"))) == 4  # written all the same
    assert f"parity {A} vs {B} (mtp-off) below --min-match-rate" in one_line(r)


@pytest.mark.parametrize("extra, words", [
    (["--a", "sglang"], "cannot be combined with --a"),
    (["--b-url", "http://127.0.0.1:1"], "cannot be combined with --b-url"),
    (["--a-url", "http://x", "--b", "vllm"], "cannot be combined with --b, --a-url"),
    (["--pair", "sglang"], "--pair takes ENGINE_A:ENGINE_B"),
    (["--pair", "sglang:vllm"], "no stored generations from vllm"),
])
def test_from_run_usage_errors_exit_2(run3, extra, words):
    runs, run = run3
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs), *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in one_line(r)
    assert not list((run / "evals").glob("parity-*.json"))


def test_from_run_unknown_run_and_too_few_generations(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs)
    r = harness("parity", "--from-run", "20990101T000000Z-nope", "--runs-dir", str(runs))
    assert r.returncode == 2 and "no run '20990101T000000Z-nope'" in one_line(r)
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 2 and "0 stored generation file(s)" in one_line(r)
    write_generations(run, A, False)
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 2 and "1 stored generation file(s)" in one_line(r) and "parity needs two" in one_line(r)
    assert not list((run / "evals").glob("parity-*.json"))
    # the from-run-only options are refused without it; the server form still needs --a/--b/--model
    r = harness("parity", "--a", "x", "--b", "y", "--model", "m", "--pair", "x:y")
    assert r.returncode == 2 and "--pair only apply with --from-run" in one_line(r)
    r = harness("parity", "--a", "x")
    assert r.returncode == 2 and "missing option(s) --b, --model" in one_line(r)


def test_from_run_refuses_generations_from_another_prompt_set(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs)
    write_generations(run, A, False)
    f = write_generations(run, B, False)
    d = json.loads(f.read_text())
    d["prompts_sha256"] = "0" * 64
    f.write_text(json.dumps(d))
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not compared" in one_line(r) and "prompts sha256 000000000000" in one_line(r)
    assert not list((run / "evals").glob("parity-*.json"))


def test_report_renders_records_made_from_a_run(run3, tmp_path):
    from analysis.evals import find_eval_files, parse_eval_record

    runs, run = run3
    assert harness("parity", "--from-run", run.name, "--runs-dir", str(runs)).returncode == 0
    recs = [parse_eval_record(json.loads(p.read_text()), p) for p in find_eval_files(run / "evals")]
    par = {(r.engines, r.path.name.endswith("mtp-on.json")): r for r in recs if r and r.kind == "parity"}
    assert len(par) == 4
    r = par[((A, B), False)]
    assert r.matches == 19 and r.run_id == run.name and r.dummy is True
    assert [(d.prompt, d.position) for d in r.divergences] == [(DIFF_PROMPT, "logprobs token 3")]


# --------------------------------------------------------------------------------------------- compare


ENGINES = ["sglang", "sglang-patched", "vllm"]


def test_compare_interrupted_by_sigterm_keeps_parity_of_the_engines_that_finished(tmp_path):
    """The third engine never becomes healthy; SIGTERM arrives while the harness waits on it (as a deadline did
    to run 20261127T082546Z-31B-2112): the pair of the two engines that stored generations is still compared."""
    ov = fake_overrides(tmp_path, engine_flags={"sglang-patched": ["--diverge-rate", "0.5", "--answer-seed", "3"],
                                                "vllm": ["--startup-delay", "600"]},
                        startup_timeout=900, served="parity-sigterm")
    runs = tmp_path / "runs"
    p = subprocess.Popen([sys.executable, "-m", "harness", "compare", "-m", "26B-A4B", "--engines", ",".join(ENGINES),
                          "-s", "decode-burst", "--num-prompts", "2", "--parity", "--no-mmlu", "--no-report",
                          "--overrides", str(ov), "--runs-dir", str(runs)],
                         cwd=REPO, env=dict(os.environ, COLUMNS="250"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 150
        started = False
        while time.monotonic() < deadline and not started:
            assert p.poll() is None, p.communicate()[0]
            ms = list(runs.glob("*/manifest.json"))
            if ms:
                stops = json.loads(ms[0].read_text()).get("extra", {}).get("server_stops", {})
                started = len(stops) == 2 and bool(processes_with("parity-sigterm"))  # vllm is starting
            time.sleep(0.2)
        assert started, "the third engine never started"
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out
    rd = only_run(runs)
    assert json.loads((rd / "manifest.json").read_text())["status"] == "interrupted"
    evals = rd / "evals"
    assert sorted(f.name for f in evals.glob("generations-*")) == ["generations-sglang-patched__mtp-off.json",
                                                                   "generations-sglang__mtp-off.json"]
    assert [f.name for f in evals.glob("parity-*")] == ["parity-sglang-vs-sglang-patched-mtp-off.json"]
    rec = json.loads((evals / "parity-sglang-vs-sglang-patched-mtp-off.json").read_text())
    ga, gb = ([g["text"] for g in json.loads((evals / f"generations-{e}__mtp-off.json").read_text())["generations"]]
              for e in ("sglang", "sglang-patched"))
    same = sum(x == y for x, y in zip(ga, gb))
    assert 0 < same < 20 and rec["matches"] == same and rec["n"] == 20
    assert rec["computed_by"] == "harness compare" and rec["run_status"] == "interrupted"
    flat = " ".join(out.split())
    assert "parity sglang vs vllm (mtp-off): skipped, no stored generations from vllm" in flat
    assert "parity sglang-patched vs vllm (mtp-off): skipped, no stored generations from vllm" in flat
    time.sleep(0.5)
    assert processes_with("parity-sigterm") == []
    # afterwards, --from-run finds nothing left to do for this run
    r = harness("parity", "--from-run", rd.name, "--runs-dir", str(runs))
    assert r.returncode == 0 and "0 parity record(s) written, 1 kept as they were" in one_line(r)


def test_compare_that_fails_part_way_keeps_parity_and_reraises(tmp_path, monkeypatch):
    """An exception out of the third session: the failure propagates as before, after the finished pair's record
    is written (the sessions are stand-ins that store generations; no server is involved)."""
    from typer.testing import CliRunner

    import harness.cli.compare as compare_mod
    from harness.cli.app import app

    def session(rd, defs, engine, mdef, group, opts, report, status):
        if engine == "vllm":
            raise RuntimeError("lost the host")
        write_generations(rd.path, engine, False, answers(B if engine == "sglang-patched" else A))
        return []

    monkeypatch.setattr(compare_mod, "run_session", session)
    monkeypatch.setenv("HARNESS_OVERRIDES", str(fake_overrides(tmp_path)))
    runs = tmp_path / "runs"
    r = CliRunner().invoke(app, ["compare", "-m", "26B-A4B", "--engines", ",".join(ENGINES), "-s", "chat",
                                 "--num-prompts", "2", "--parity", "--no-mmlu", "--no-report", "--runs-dir", str(runs)])
    assert isinstance(r.exception, RuntimeError) and "lost the host" in str(r.exception)
    rd = only_run(runs)
    assert json.loads((rd / "manifest.json").read_text())["status"] == "failed"
    rec = json.loads((rd / "evals" / "parity-sglang-vs-sglang-patched-mtp-off.json").read_text())
    assert rec["matches"] == 19 and rec["run_status"] == "failed"
    assert len(list((rd / "evals").glob("parity-*.json"))) == 1
    assert "parity sglang vs vllm (mtp-off): skipped, no stored generations from vllm" in " ".join(r.output.split())
