"""`harness parity --from-generations`: parity of any two stored answer sets (a run's generations file, or one
side of a parity record), e.g. one engine against itself across two server starts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_cli import harness  # noqa: E402
from test_parity_from_run import A, B, DIFF_PROMPT, IDS, answers, make_run, one_line, write_generations  # noqa: E402


def _two_runs(tmp_path: Path):
    runs = tmp_path / "runs"
    r1 = make_run(runs, "20261127T141228Z-31B-aaaa", engines=(A,))
    r2 = make_run(runs, "20261127T150000Z-31B-bbbb", engines=(A,))
    g1 = write_generations(r1, A, False, answers(A), dummy=False)
    g2 = write_generations(r2, A, False, answers(B), dummy=False)  # the second start answers one prompt otherwise
    return runs, g1, g2


def test_same_engine_across_two_runs_needs_labels_then_gives_a_record(tmp_path):
    runs, g1, g2 = _two_runs(tmp_path)
    env = dict(os.environ, HARNESS_RUNS=str(runs))
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), env=env)
    assert r.returncode == 2 and "both sides would be labelled 'sglang-patched'" in one_line(r)
    out = tmp_path / "self.json"
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--a", "patched start 1",
                "--b", "patched start 2", "--out", str(out), "--json", env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["model"] == "31B"  # from the runs' manifests
    assert rec["matches"] == len(IDS) - 1 and rec["n"] == len(IDS)
    row = next(p for p in rec["per_prompt"] if p["id"] == DIFF_PROMPT)
    assert row["exact_match"] is False and row["token_divergence"] == 3
    assert rec["computed_by"] == "harness parity --from-generations"
    assert rec["a"]["engine"] == "patched start 1" and rec["a"]["engine_profile"] == A
    assert rec["a"]["source"] == str(g1) and rec["b"]["source"] == str(g2)
    # never overwritten
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--a", "x", "--b", "y",
                "--out", str(out), env=env)
    assert r.returncode == 2 and "never overwritten" in one_line(r)


def test_one_side_of_a_parity_record_against_a_generations_file(tmp_path):
    runs, g1, g2 = _two_runs(tmp_path)
    env = dict(os.environ, HARNESS_RUNS=str(runs))
    first = tmp_path / "first.json"
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--a", "s1", "--b", "s2",
                "--out", str(first), env=env)
    assert r.returncode == 0, r.stderr
    # the record's B side (start 2's answers) against start 1's file again: the same one mismatch
    r = harness("parity", "--from-generations", f"{first}#b", "--from-generations", str(g1), "--a", "s2 (record)",
                "--b", "s1 (file)", "--json", "--out", str(tmp_path / "second.json"), env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "second.json").read_text())
    assert rec["matches"] == len(IDS) - 1 and rec["a"]["source"] == f"{first}#b"
    # a record needs its side named; a default output lands under the runs dir's parity/
    r = harness("parity", "--from-generations", str(first), "--from-generations", str(g1), env=env)
    assert r.returncode == 2 and "name the side to take" in one_line(r)
    r = harness("parity", "--from-generations", f"{first}#a", "--from-generations", str(g2), env=env)
    assert r.returncode == 0, r.stderr
    written = list((runs / "parity").glob("parity-*-s1-vs-sglang-patched.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["matches"] == len(IDS) - 1


def test_bad_inputs_are_named(tmp_path):
    runs, g1, g2 = _two_runs(tmp_path)
    env = dict(os.environ, HARNESS_RUNS=str(runs))
    r = harness("parity", "--from-generations", str(g1), env=env)
    assert r.returncode == 2 and "exactly two answer sets (given 1)" in one_line(r)
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(tmp_path / "nope.json"), env=env)
    assert r.returncode == 2 and "nope.json: no such file" in one_line(r)
    other = json.loads(g2.read_text())
    other["prompts_sha256"] = "0" * 64
    bad = tmp_path / "other-prompts.json"
    bad.write_text(json.dumps(other))
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(bad), "--a", "x", "--b", "y", env=env)
    assert r.returncode == 2 and "generated from parity prompts sha256 000000000000" in one_line(r)
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--tp", "2", env=env)
    assert r.returncode == 2 and "cannot be combined with --tp" in one_line(r)


def test_runs_that_loaded_different_checkpoints_are_refused(tmp_path):
    """Random-init runs record their weights' fingerprint in the manifest: answers of two runs are compared only
    when the fingerprints agree (or a side does not say)."""
    runs, g1, g2 = _two_runs(tmp_path)
    env = dict(os.environ, HARNESS_RUNS=str(runs))
    for g, fp in ((g1, "aaaa"), (g2, "bbbb")):
        m = json.loads((g.parent.parent / "manifest.json").read_text())
        m["weights_init"] = {"seed": 0, "recipe": "postnorm-v1", "parameters": 5, "fingerprint": fp}
        (g.parent.parent / "manifest.json").write_text(json.dumps(m))
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--a", "x", "--b", "y", env=env)
    assert r.returncode == 2 and "loaded different random-init checkpoints (fingerprints aaaa and bbbb)" in one_line(r)
    m = json.loads((g2.parent.parent / "manifest.json").read_text())
    m["weights_init"]["fingerprint"] = "aaaa"
    (g2.parent.parent / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "same.json"
    r = harness("parity", "--from-generations", str(g1), "--from-generations", str(g2), "--a", "x", "--b", "y",
                "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["same_checkpoint"] is True and rec["a"]["weights_init"]["fingerprint"] == "aaaa"
    assert rec["a"]["run_id"] == "20261127T141228Z-31B-aaaa"
