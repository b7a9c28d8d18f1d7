"""`harness compare` (matrix, failing cell, resume) and `harness kernels run` against stand-ins."""

import json
import sys

from conftest import REPO, fake_overrides
from test_bench_cli import harness, only_run


def test_compare_matrix_with_failing_engine_then_resume(tmp_path):
    ov = fake_overrides(tmp_path, engine_flags={"sglang-patched": ["--crash-on-start"]})
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched,vllm", "-s", "chat,decode-burst",
                "--repeats", "2", "--interleave", "--num-prompts", "3", "--no-report", "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 1, r.stdout + r.stderr
    rd = only_run(runs)
    m = json.loads((rd / "manifest.json").read_text())
    assert m["status"] == "partial" and len(m["cells"]) == 12
    # interleaved order: repeat 1 of every engine before repeat 2
    assert m["cells"][:6] == [f"{e}__{s}__mtp-off__r1" for e in ("sglang", "sglang-patched", "vllm") for s in ("chat", "decode-burst")]
    assert any("MMLU skipped: dummy weights" in n for n in m["notes"])
    recs = {p.stem: json.loads(p.read_text()) for p in (rd / "cells").glob("*.json")}
    assert len(recs) == 12
    bad = [k for k, v in recs.items() if v["status"] != "ok"]
    assert sorted(bad) == sorted(f"sglang-patched__{s}__mtp-off__r{r}" for s in ("chat", "decode-burst") for r in (1, 2))
    assert all(recs[k]["failure"]["stage"] == "server-start" for k in bad)
    ok_before = {k: v["started_at"] for k, v in recs.items() if v["status"] == "ok"}

    # the engine is fixed; resume redoes only the failed cells and keeps the failed attempts
    (tmp_path / "fixed").mkdir()
    ov2 = fake_overrides(tmp_path / "fixed")
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched,vllm", "-s", "chat,decode-burst",
                "--repeats", "2", "--interleave", "--num-prompts", "3", "--no-report", "--overrides", str(ov2),
                "--runs-dir", str(runs), "--resume", rd.name)
    assert r.returncode == 0, r.stdout + r.stderr
    recs2 = {p.stem: json.loads(p.read_text()) for p in (rd / "cells").glob("*.json")}
    assert all(v["status"] == "ok" for v in recs2.values())
    assert {k: recs2[k]["started_at"] for k in ok_before} == ok_before  # untouched
    assert len(list((rd / "cells" / "attempts").glob("*.json"))) == 4
    m2 = json.loads((rd / "manifest.json").read_text())
    assert m2["status"] == "complete" and any(n.startswith("resumed") for n in m2["notes"])


def test_compare_rejects_bad_mtp_value(tmp_path):
    r = harness("compare", "-m", "26B-A4B", "--mtp", "maybe", "--dry-run")
    assert r.returncode == 2 and "--mtp takes" in r.stderr


def test_kernels_run_records_rows_and_failures(tmp_path):
    tree = tmp_path / "tree"
    (tree / "python" / "sglang").mkdir(parents=True)
    script = tree / "bench.py"
    script.write_text(
        "import json, sys, sglang\n"
        "out = sys.argv[sys.argv.index('--out') + 1]\n"
        "json.dump({'rows': [{'T': 1, 'fused_us': 2.0}, {'T': 8, 'fused_us': 3.0}], 'device': 'cpu-test', 'torch': 'none'}, open(out, 'w'))\n"
    )
    runs = tmp_path / "runs"
    r = harness("kernels", "run", "--name", "demo", "--tree", str(tree), "--patch", "0001-x.patch", "--runs-dir", str(runs),
                "--", sys.executable, "bench.py", "--out", "{out}")
    assert r.returncode == 0, r.stdout + r.stderr
    rd = only_run(runs)
    kb = json.loads((rd / "kernels" / "demo.json").read_text())
    assert kb["status"] == "ok" and kb["rows"][1] == {"T": 8, "fused_us": 3.0} and kb["columns"] == ["T", "fused_us"]
    assert kb["device"] == "cpu-test" and kb["environment"]["torch"] == "none" and kb["patch"] == "0001-x.patch"
    # a failing benchmark is recorded, not dropped
    (tree / "bad.py").write_text("raise SystemExit('kernel mismatch: 3 ids differ')\n")
    r = harness("kernels", "run", "--name", "bad", "--tree", str(tree), "--run", rd.name, "--runs-dir", str(runs),
                "--", sys.executable, "bad.py")
    assert r.returncode == 1
    bad = json.loads((rd / "kernels" / "bad.json").read_text())
    assert bad["status"] == "failed" and "kernel mismatch" in bad["failure"]["log_tail"]


def test_compare_with_real_weights_runs_mmlu_and_parity(tmp_path):
    """A model dir without the synth marker counts as real weights: MMLU and parity run per engine."""
    from harness.definitions import load_definitions
    from harness.synth import MARKER, synth_model

    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--answer-mode", "mmlu", "--answer-seed", "1", "--answer-flip-rate", "0.2"],
                                                "vllm": ["--answer-mode", "mmlu", "--answer-seed", "2", "--answer-flip-rate", "0.2"]})
    model_dir = tmp_path / "real-26b"
    synth_model(load_definitions(overrides=ov).model("26B-A4B"), model_dir)
    (model_dir / MARKER).unlink()  # now indistinguishable from a real checkpoint's config dir
    runs = tmp_path / "runs"
    fixture = REPO / "tests" / "fixtures" / "mmlu" / "mmlu_60.csv"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,vllm", "-s", "decode-burst", "--num-prompts", "2",
                "--mmlu-source", str(fixture), "--mmlu-questions", "20", "--model-path", str(model_dir), "--no-report",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = only_run(runs)
    m = json.loads((rd / "manifest.json").read_text())
    assert m["weights"] == "real" and not any("MMLU skipped" in n for n in m["notes"])
    for e in ("sglang", "vllm"):
        s = json.loads((rd / "evals" / f"mmlu-{e}__mtp-off" / "summary.json").read_text())
        assert s["kind"] == "mmlu" and s["num_questions"] == 20 and s["engine"] == e
    par = json.loads((rd / "evals" / "parity-sglang-vs-vllm-mtp-off.json").read_text())
    assert par["kind"] == "parity" and par["n"] == 20 and par["a"]["engine"] == "sglang"


def test_compare_renders_the_report_and_prints_its_path(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    out = tmp_path / "report" / "COMPARISON.md"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,vllm", "-s", "chat", "--num-prompts", "2",
                "--overrides", str(ov), "--runs-dir", str(runs), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"COMPARISON.md: {out}" in r.stdout
    text = out.read_text()
    rd = only_run(runs)
    assert rd.name in text and "DUMMY WEIGHTS" in text and "| chat | off | output tok/s" in text
    assert (out.parent / "COMPARISON_plots").is_dir()
