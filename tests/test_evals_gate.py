"""Gate verdicts and exit codes on constructed pairs of MMLU runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.evals.gate import EXIT_PASS, EXIT_REGRESSION, EXIT_UNUSABLE, GateInputError, run_gate
from harness.evals.mmlu import MMLU_SCHEMA_VERSION

REPO = Path(__file__).resolve().parent.parent
N = 500


def make_run(root: Path, name: str, correct_by_repeat: list[list[bool]], *, rows_sha: str = "rows-1",
             file_sha: str = "file-1", source_offset: int = 0, errors: int = 0, engine: str = "eng",
             drop: int | None = None, meta: dict | None = None) -> Path:
    """Write a run directory in `harness mmlu`'s format (gold always 'A'; right -> 'A', wrong -> 'B')."""
    d = root / name
    d.mkdir(parents=True)
    n = len(correct_by_repeat[0])
    lines = []
    for r, correct in enumerate(correct_by_repeat):
        for i, ok in enumerate(correct):
            if drop is not None and r == 0 and i == drop:
                continue
            err = "APIConnectionError: down" if (r == 0 and i < errors) else None
            lines.append(json.dumps({
                "repeat": r, "index": i, "source_index": 1000 + i + source_offset,
                "question_sha256": f"q{i + source_offset}", "subject": "anatomy", "category": "other",
                "gold": "A", "extracted": "A" if ok and not err else (None if err else "B"),
                "correct": bool(ok and not err), "response_chars": 10, "completion_tokens": 5,
                "finish_reason": "stop", "error": err, "attempts": 1, "latency_s": 0.1}))
    (d / "records.jsonl").write_text("\n".join(lines) + "\n")
    summary = {"kind": "mmlu", "schema_version": MMLU_SCHEMA_VERSION, "engine": engine, "model": "m",
               "num_questions": n, "records_file": "records.jsonl",
               "source": {"kind": "simple-evals-csv", "location": "/x/mmlu.csv", "sha256": file_sha,
                          "rows_sha256": rows_sha},
               "sampling": {"api": "chat", "temperature": 0.0, "top_p": 1.0, "max_tokens": 2048}}
    if meta is not None:
        summary["meta"] = meta
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def pattern(n_right: int, n: int = N) -> list[bool]:
    return [i < n_right for i in range(n)]


def flip(base: list[bool], lose: int, win: int) -> list[bool]:
    """Candidate = base with `lose` right answers turned wrong and `win` wrong answers turned right."""
    out = list(base)
    rights = [i for i, x in enumerate(base) if x]
    wrongs = [i for i, x in enumerate(base) if not x]
    for i in rights[:lose]:
        out[i] = False
    for i in wrongs[:win]:
        out[i] = True
    return out


def test_identical_runs_pass(tmp_path):
    base = pattern(355)
    ref, cand = make_run(tmp_path, "ref", [base]), make_run(tmp_path, "cand", [base])
    res = run_gate(ref, cand, resamples=2000)
    assert res["verdict"] == "pass" and res["exit_code"] == EXIT_PASS
    assert res["paired"]["b"] == res["paired"]["c"] == 0
    assert res["mcnemar_p_two_sided"] == 1.0
    assert res["explanation"].startswith("PASS.")


def test_few_discordant_pass_many_fail_noninferiority(tmp_path):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base])
    near = make_run(tmp_path, "near", [flip(base, 2, 2)])
    res = run_gate(ref, near, resamples=2000)
    assert res["verdict"] == "pass", res["explanation"]
    assert res["bootstrap"]["drop_upper"] * 100 <= 1.0
    # same delta (0) but 40 discordant questions: the upper bound exceeds a 1 pp margin -> fail
    noisy = make_run(tmp_path, "noisy", [flip(base, 20, 20)])
    res = run_gate(ref, noisy, resamples=2000)
    assert res["delta"] == 0
    assert res["verdict"] == "fail" and res["exit_code"] == EXIT_REGRESSION
    assert res["bootstrap"]["drop_upper"] * 100 > 1.0
    assert "beyond the margin" in res["explanation"]
    # with a wide margin the same pair passes
    assert run_gate(ref, noisy, margin_pp=5.0, resamples=2000)["verdict"] == "pass"


def test_clear_regression_fails_under_both_rules(tmp_path):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base])
    worse = make_run(tmp_path, "worse", [flip(base, 40, 5)])  # -7 pp
    for rule in ("non-inferiority", "regression"):
        res = run_gate(ref, worse, rule=rule, resamples=2000)
        assert res["verdict"] == "fail", rule
        assert res["paired"]["b"] == 40 and res["paired"]["c"] == 5
        assert res["mcnemar_p_two_sided"] < 0.001
        assert "in favour of the reference" in res["explanation"]


def test_regression_rule_passes_noise_that_noninferiority_fails(tmp_path):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base])
    noisy = make_run(tmp_path, "noisy", [flip(base, 22, 18)])
    assert run_gate(ref, noisy, resamples=2000)["verdict"] == "fail"
    res = run_gate(ref, noisy, rule="regression", resamples=2000)
    assert res["verdict"] == "pass"
    assert "no regression is shown" in res["explanation"]


def test_better_candidate_passes(tmp_path):
    base = pattern(300)
    ref = make_run(tmp_path, "ref", [base])
    better = make_run(tmp_path, "better", [flip(base, 2, 30)])
    res = run_gate(ref, better, resamples=2000)
    assert res["verdict"] == "pass" and res["delta"] > 0


def test_run_to_run_floor_reported(tmp_path):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base, flip(base, 15, 14)])
    cand = make_run(tmp_path, "cand", [base])
    res = run_gate(ref, cand, resamples=2000)
    fl = res["run_to_run_floor"]
    assert fl["b"] == 15 and fl["c"] == 14 and fl["discordant"] == 29
    assert fl["self_gate_passes"] is False
    assert "below the nondeterminism floor" in res["explanation"]
    assert run_gate(ref, cand, resamples=2000)["reference"]["repeats"] == [0, 1]


@pytest.mark.parametrize("kwargs,match", [
    (dict(rows_sha="rows-2"), "different MMLU sources"),
    (dict(source_offset=1), "different question sets"),
    (dict(drop=17), "499 of 500 questions"),
    (dict(errors=40), "requests failed"),
])
def test_unusable_inputs(tmp_path, kwargs, match):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base])
    cand = make_run(tmp_path, "cand", [base], **kwargs)
    with pytest.raises(GateInputError, match=match) as ei:
        run_gate(ref, cand, resamples=200)
    assert ei.value.exit_code == EXIT_UNUSABLE


def test_different_question_counts(tmp_path):
    ref = make_run(tmp_path, "ref", [pattern(355)])
    cand = make_run(tmp_path, "cand", [pattern(50, 100)])
    with pytest.raises(GateInputError, match="reference asked 500 questions, candidate 100"):
        run_gate(ref, cand, resamples=200)


def test_unreadable_and_missing_files(tmp_path):
    ref = make_run(tmp_path, "ref", [pattern(355)])
    with pytest.raises(GateInputError, match="no summary.json"):
        run_gate(ref, tmp_path / "nowhere", resamples=200)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    with pytest.raises(GateInputError, match="unreadable summary"):
        run_gate(ref, bad, resamples=200)
    norec = make_run(tmp_path, "norec", [pattern(355)])
    (norec / "records.jsonl").unlink()
    with pytest.raises(GateInputError, match="records file missing"):
        run_gate(ref, norec, resamples=200)
    garbled = make_run(tmp_path, "garbled", [pattern(355)])
    with open(garbled / "records.jsonl", "a") as fh:
        fh.write("{oops\n")
    with pytest.raises(GateInputError, match="not JSON"):
        run_gate(ref, garbled, resamples=200)
    tampered = make_run(tmp_path, "tampered", [pattern(355)])
    text = (tampered / "records.jsonl").read_text().replace('"correct": true', '"correct": false', 1)
    (tampered / "records.jsonl").write_text(text)
    with pytest.raises(GateInputError, match="disagrees with extracted/gold"):
        run_gate(ref, tampered, resamples=200)


def test_same_rows_from_different_files_is_a_note(tmp_path):
    ref = make_run(tmp_path, "ref", [pattern(355)])
    cand = make_run(tmp_path, "cand", [pattern(355)], file_sha="file-2")
    res = run_gate(ref, cand, resamples=200)
    assert res["verdict"] == "pass"
    assert any("identical rows" in n for n in res["notes"])


def test_cli_exit_codes_and_json(tmp_path):
    base = pattern(355)
    ref = make_run(tmp_path, "ref", [base])
    same = make_run(tmp_path, "same", [base])
    worse = make_run(tmp_path, "worse", [flip(base, 40, 5)])
    runner = CliRunner()
    r = runner.invoke(app, ["gate", "--reference", str(ref), "--candidate", str(same), "--json",
                            "--resamples", "1000"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["verdict"] == "pass" and data["n"] == N
    out = tmp_path / "gate.json"
    r = runner.invoke(app, ["gate", "--reference", str(ref), "--candidate", str(worse), "--resamples", "1000",
                            "--out", str(out)])
    assert r.exit_code == 1
    assert "FAIL" in r.stdout
    assert json.loads(out.read_text())["verdict"] == "fail"
    # exit 2 through the real entry point (HarnessError -> one red line, exit 2)
    p = subprocess.run([sys.executable, "-m", "harness", "gate", "--reference", str(ref), "--candidate",
                        str(tmp_path / "missing")], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2
    assert "no summary.json" in " ".join(p.stderr.split())


def test_dummy_weight_runs_are_unusable_unless_allowed(tmp_path):
    """A CI gate must not pass on dummy-weight runs (both score ~0 and agree); --allow-dummy is for pipeline checks."""
    base = pattern(0)
    ref = make_run(tmp_path, "ref", [base], meta={"dummy_weights": True, "mtp": False})
    cand = make_run(tmp_path, "cand", [base], meta={"dummy_weights": False, "mtp": False})
    with pytest.raises(GateInputError, match="reference ran on dummy"):
        run_gate(ref, cand, resamples=200)
    res = run_gate(ref, cand, resamples=200, allow_dummy=True)
    assert res["verdict"] == "pass" and res["dummy_weights"] is True
    assert "DUMMY WEIGHTS (reference)" in res["explanation"]
    p = subprocess.run([sys.executable, "-m", "harness", "gate", "--reference", str(ref), "--candidate", str(cand)],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "dummy" in p.stderr
    real = make_run(tmp_path, "real", [base], meta={"dummy_weights": False})
    assert run_gate(cand, real, resamples=200)["dummy_weights"] is False
