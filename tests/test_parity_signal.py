"""Parity records say when the answers carry no signal (dummy weights: every answer one repeated token)."""

from harness.evals.parity import answer_signal, parity_signal
from analysis.tables import parity_signal_text

PAD = " " + " ".join(["<pad>"] * 256)


def _row(a: str, b: str, err_b: str | None = None) -> dict:
    return {"id": "p", "exact_match": a == b, "a": {"text": a, "error": None}, "b": {"text": b, "error": err_b}}


def test_all_pad_answers_on_both_sides_are_uninformative():
    sig = parity_signal([_row(PAD, PAD) for _ in range(20)])
    assert sig["a"]["degenerate"] and sig["b"]["degenerate"] and not sig["informative"]
    assert sig["a"]["repeated_tokens"] == ["<pad>"] and "'<pad>' repeated" in sig["why"]
    assert parity_signal_text(sig).startswith("**none**")


def test_identical_text_for_different_prompts_is_degenerate_but_varied_answers_are_not():
    assert answer_signal(["the cat sat", "the cat sat", "the cat sat"])["degenerate"]
    s = answer_signal(["Paris is the capital.", "4", "def f(x): return x"])
    assert not s["degenerate"] and s["distinct_texts"] == 3 and s["one_repeated_token"] == 1  # "4" is one token


def test_one_degenerate_side_keeps_the_record_informative():
    rows = [_row(PAD, "answer number %d here" % i) for i in range(5)]
    sig = parity_signal(rows)
    assert sig["informative"] and sig["a"]["degenerate"] and not sig["b"]["degenerate"]
    assert parity_signal_text(sig) == "1 / 5 distinct answers (side a degenerate)"


def test_errored_answers_are_left_out():
    sig = parity_signal([_row(PAD, PAD), _row(PAD, "", err_b="APIConnectionError")])
    assert sig["b"]["answers"] == 1 and not sig["informative"]


def test_old_records_without_the_field_get_it_from_their_answers(tmp_path):
    import json

    from analysis.evals import parse_eval_record

    rec = {"kind": "parity", "model": "E4B", "a": {"engine": "sglang"}, "b": {"engine": "sglang-patched"},
           "matches": 2, "n": 2, "match_rate": 1.0, "per_prompt": [_row(PAD, PAD), _row(PAD, PAD)]}
    p = tmp_path / "evals" / "parity-sglang-vs-sglang-patched-mtp-off.json"
    p.parent.mkdir()
    p.write_text(json.dumps(rec))
    r = parse_eval_record(json.loads(p.read_text()), p)
    assert r.signal is not None and r.signal["informative"] is False


def test_from_run_says_when_the_answers_carry_no_signal(tmp_path):
    """`harness parity --from-run` on a run whose stored answers are all '<pad>' prints the 'no signal' line."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_bench_cli import harness
    from test_parity_from_run import IDS, generation, make_run, write_generations

    runs = tmp_path / "runs"
    run = make_run(runs, engines=("sglang", "sglang-patched"))
    for eng in ("sglang", "sglang-patched"):
        write_generations(run, eng, False, [generation(pid, PAD.strip()) for pid in IDS])
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    assert "no signal: every answer of both engines is '<pad>' repeated" in " ".join(r.stdout.split())
    rec = json.loads((run / "evals" / "parity-sglang-vs-sglang-patched-mtp-off.json").read_text())
    assert rec["signal"]["informative"] is False and rec["matches"] == rec["n"]
