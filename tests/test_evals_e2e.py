"""MMLU, parity and the gate end to end against tests/fake_engine.py, with the 60-row local fixture."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from fake_engine import chat_prompt, launch, mmlu_letter  # noqa: E402

from harness.cli.app import app  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.evals.gate import run_gate  # noqa: E402
from harness.evals.mmlu import MMLUConfig, run_mmlu  # noqa: E402
from harness.evals.mmlu_data import load_source, sample_indices  # noqa: E402
from harness.evals.parity import compare_runs, generate_all, load_prompts  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "mmlu"
JSONL = FIXTURES / "mmlu_60.jsonl"
CSV = FIXTURES / "mmlu_60.csv"
REPO = Path(__file__).resolve().parent.parent
PROMPTS = REPO / "scenarios" / "parity" / "prompts-v1.yaml"


def expected_correct(src, n, seed, flip):
    out = []
    for i in sample_indices(len(src.rows), n):
        row = src.rows[i]
        letter = mmlu_letter(chat_prompt([{"role": "user", "content": row.prompt()}]), seed, flip)
        out.append(letter == row.answer)
    return out


def test_mmlu_end_to_end_records_and_summary(tmp_path):
    src = load_source(JSONL)
    with launch("--answer-mode", "mmlu", "--answer-seed", "3", "--answer-flip-rate", "0.3", "--model", "gm",
                workdir=str(tmp_path)) as eng:
        out = tmp_path / "run"
        res = run_mmlu(base_url=eng.base_url, served_model="gm", source=src,
                       cfg=MMLUConfig(num_questions=40, concurrency=4, repeat=2), engine="fake", model="gm",
                       out_dir=out, show_progress=False)
        reqs = [r for r in eng.requests() if r["method"] == "POST"]
    s = res.summary
    exp = expected_correct(src, 40, 3, 0.3)
    assert s["correct"] == sum(exp) and s["n"] == 40
    assert s["score"] == pytest.approx(sum(exp) / 40)
    assert s["ci95"][0] <= s["score"] <= s["ci95"][1]
    assert s["source"]["kind"] == "cais-file" and s["source"]["num_rows"] == 60
    assert s["sample"]["seed"] == 0 and s["repeat"] == 2 and len(s["repeats"]) == 2
    assert s["run_to_run"][0]["discordant"] == 0  # the fake is deterministic
    assert sum(c["n"] for c in s["per_category"].values()) == 40
    assert s["sampling"]["temperature"] == 0.0 and s["sampling"]["max_tokens"] == 2048
    assert s["sampling"]["system_prompt"] is None
    # what went over the wire: SGLang's sampling parameters, 2 x 40 requests
    assert len(reqs) == 80
    assert {(r["temperature"], r["top_p"], r["max_tokens"]) for r in reqs} == {(0.0, 1.0, 2048)}
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 80
    r0 = [r for r in records if r["repeat"] == 0]
    assert [r["index"] for r in r0] == list(range(40))
    assert [r["source_index"] for r in r0] == sample_indices(60, 40)
    assert [r["correct"] for r in r0] == exp
    assert all(r["extracted"] in "ABCD" and r["error"] is None for r in r0)
    assert {"subject", "category", "gold", "response_chars", "question_sha256"} <= set(r0[0])
    responses = [json.loads(x) for x in (out / "responses.jsonl").read_text().splitlines()]
    assert responses[0]["response"].rstrip().endswith(f"Answer: {r0[0]['extracted']}")
    # never overwritten
    with pytest.raises(HarnessError, match="never overwritten"):
        run_mmlu(base_url="http://127.0.0.1:9", served_model="gm", source=src, cfg=MMLUConfig(num_questions=5),
                 engine="fake", model="gm", out_dir=out, show_progress=False)


def test_mmlu_retries_bad_request_and_unreachable(tmp_path):
    rows = [json.loads(x) for x in JSONL.read_text().splitlines()][:10]
    rows[4]["question"] += " [[fake:bad-request]]"
    p = tmp_path / "ten.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = load_source(p)
    bad_index = sample_indices(10, 10).index(4)
    with launch("--answer-mode", "mmlu", "--transient-errors", "2", workdir=str(tmp_path)) as eng:
        res = run_mmlu(base_url=eng.base_url + "/v1", served_model="fake-model", source=src,
                       cfg=MMLUConfig(num_questions=10, concurrency=1, backoff_s=0.01), engine="fake",
                       model="fake-model", out_dir=tmp_path / "r", show_progress=False)
    recs = res.records
    assert recs[0].attempts == 3 and recs[0].error is None  # two 503s, then an answer
    bad = recs[bad_index]
    assert bad.error.startswith("BadRequestError") and bad.extracted is None and not bad.correct
    assert bad.attempts == 1
    assert res.summary["errors"] == 1
    # nobody listening: every question ends as an error after its tries
    res = run_mmlu(base_url="http://127.0.0.1:9", served_model="x", source=src,
                   cfg=MMLUConfig(num_questions=3, concurrency=3, tries=2, backoff_s=0.01), engine="fake",
                   model="x", out_dir=tmp_path / "down", show_progress=False)
    assert res.summary["errors"] == 3 and res.summary["correct"] == 0
    assert all(r.attempts == 2 and "Connection" in r.error for r in res.records)


def test_mmlu_unknown_model_stops(tmp_path):
    with launch("--answer-mode", "mmlu", workdir=str(tmp_path)) as eng:
        with pytest.raises(HarnessError, match="does not exist"):
            run_mmlu(base_url=eng.base_url, served_model="other", source=load_source(JSONL),
                     cfg=MMLUConfig(num_questions=5, concurrency=2), engine="fake", model="other",
                     out_dir=tmp_path / "r", show_progress=False)
    assert not (tmp_path / "r" / "summary.json").exists()


def test_cli_mmlu_twice_then_gate(tmp_path):
    runner = CliRunner()
    outs = {}
    for name, seed in (("ref", 1), ("cand", 2)):
        with launch("--answer-mode", "mmlu", "--answer-seed", str(seed), "--answer-flip-rate", "0.15",
                    "--flavor", "vllm" if name == "ref" else "sglang", workdir=str(tmp_path)) as eng:
            outs[name] = tmp_path / name
            r = runner.invoke(app, ["mmlu", "--engine", f"fake-{name}", "--model", "fake-model", "--source",
                                    str(CSV), "--num-questions", "50", "--base-url", eng.base_url,
                                    "--concurrency", "8", "--out", str(outs[name]), "--no-progress"]
                              + (["--repeat", "2"] if name == "ref" else []))
            assert r.exit_code == 0, r.output
            assert "MMLU-50" in r.stdout
    src = load_source(CSV)
    ref_ok, cand_ok = expected_correct(src, 50, 1, 0.15), expected_correct(src, 50, 2, 0.15)
    res = run_gate(outs["ref"], outs["cand"], resamples=2000, margin_pp=1.0)
    assert res["paired"]["b"] == sum(1 for x, y in zip(ref_ok, cand_ok) if x and not y)
    assert res["paired"]["c"] == sum(1 for x, y in zip(ref_ok, cand_ok) if y and not x)
    assert res["run_to_run_floor"]["discordant"] == 0
    expected_verdict = "fail" if res["bootstrap"]["drop_upper"] > 0.01 else "pass"
    assert res["verdict"] == expected_verdict
    r = runner.invoke(app, ["gate", "--reference", str(outs["ref"]), "--candidate", str(outs["ref"]),
                            "--resamples", "500"])
    assert r.exit_code == 0 and "PASS" in r.stdout


def test_cli_mmlu_source_mismatch_is_refused_by_gate(tmp_path):
    runner = CliRunner()
    rows = [json.loads(x) for x in JSONL.read_text().splitlines()]
    rows[0]["question"] = "changed"
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with launch("--answer-mode", "mmlu", workdir=str(tmp_path)) as eng:
        for name, src in (("a", JSONL), ("b", other)):
            r = runner.invoke(app, ["mmlu", "--engine", "fake", "--model", "fake-model", "--source", str(src),
                                    "--num-questions", "10", "--base-url", eng.base_url, "--concurrency", "4",
                                    "--out", str(tmp_path / name), "--no-progress"])
            assert r.exit_code == 0, r.output
    with pytest.raises(HarnessError, match="different MMLU sources"):
        run_gate(tmp_path / "a", tmp_path / "b", resamples=100)


def test_cli_mmlu_without_base_url_needs_managed_server(tmp_path, monkeypatch):
    import harness.server as server_mod

    monkeypatch.delattr(server_mod, "managed_server", raising=False)
    r = CliRunner().invoke(app, ["mmlu", "--engine", "sglang", "--model", "m", "--source", str(JSONL),
                                 "--num-questions", "5", "--out", str(tmp_path / "x")])
    assert isinstance(r.exception, HarnessError)
    assert "--base-url" in str(r.exception)


def test_cli_mmlu_uses_managed_server_hook(tmp_path, monkeypatch):
    import harness.server as server_mod

    calls = []

    @contextlib.contextmanager
    def managed_server(engine, model, mtp=False, run_dir=None, **kw):
        calls.append((engine, model, mtp, run_dir, kw))
        with launch("--answer-mode", "mmlu", "--model", "served-name", workdir=str(tmp_path)) as eng:
            class S:
                base_url = eng.base_url
                served_model_name = "served-name"
                environment = {"machine": {"gpu_name": "X"}, "server_command": ["python", "-m", "sglang.launch_server"]}
            yield S()

    monkeypatch.setattr(server_mod, "managed_server", managed_server, raising=False)
    out = tmp_path / "managed"
    r = CliRunner().invoke(app, ["mmlu", "--engine", "sglang", "--model", "gemma", "--source", str(JSONL),
                                 "--num-questions", "6", "--concurrency", "3", "--mtp", "--out", str(out),
                                 "--model-path", str(tmp_path / "weights"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert calls == [("sglang", "gemma", True, out, {"model_path": tmp_path / "weights"})]
    s = json.loads((out / "summary.json").read_text())
    assert s["server"] == "managed" and s["served_model_name"] == "served-name"
    # the record says where its numbers came from: machine, engine, exact server command
    assert s["meta"] == {"mtp": True, "dummy_weights": None,
                         "environment": {"machine": {"gpu_name": "X"}, "server_command": ["python", "-m", "sglang.launch_server"]}}


def test_parity_same_engine_matches_and_divergence_is_located(tmp_path):
    pset, sha = load_prompts(PROMPTS)
    assert len(pset.prompts) == 20
    with launch("--answer-seed", "1", workdir=str(tmp_path)) as a, \
            launch("--answer-seed", "2", "--diverge-rate", "0.5", workdir=str(tmp_path)) as b:
        ga = generate_all(a.base_url, "fake-model", pset, max_tokens=64, concurrency=4)
        gb = generate_all(b.base_url, "fake-model", pset, max_tokens=64, concurrency=4)
        gsame = generate_all(a.base_url, "fake-model", pset, max_tokens=64, concurrency=4)
    meta = {"engine": "x"}
    same = compare_runs(ga, gsame, prompts=pset, prompts_path=str(PROMPTS), prompts_sha256=sha, meta_a=meta,
                        meta_b=meta, model="m", max_tokens=64, started_at="t")
    assert same["match_rate"] == 1.0 and same["matches"] == 20
    assert all(r["char_divergence"] is None and r["common_prefix_ratio"] == 1.0 for r in same["per_prompt"])
    diff = compare_runs(ga, gb, prompts=pset, prompts_path=str(PROMPTS), prompts_sha256=sha, meta_a=meta,
                        meta_b=meta, model="m", max_tokens=64, started_at="t")
    assert 0 < diff["matches"] < 20
    assert diff["match_rate"] == diff["matches"] / 20
    for r in diff["per_prompt"]:
        if r["exact_match"]:
            continue
        ta, tb = r["a"]["text"], r["b"]["text"]
        c = r["char_divergence"]
        assert ta[:c] == tb[:c] and (c == min(len(ta), len(tb)) or ta[c] != tb[c])
        assert r["token_method"] == "logprobs"
        k = r["token_divergence"]
        assert r["a"]["tokens"][:k] == r["b"]["tokens"][:k] and r["a"]["tokens"][k] != r["b"]["tokens"][k]
        assert 0 <= r["common_prefix_ratio"] < 1
    # whitespace fallback when a server returns no logprobs
    for g in ga + gb:
        g.tokens = None
    ws = compare_runs(ga, gb, prompts=pset, prompts_path=str(PROMPTS), prompts_sha256=sha, meta_a=meta,
                      meta_b=meta, model="m", max_tokens=64, started_at="t")
    for r in ws["per_prompt"]:
        assert r["token_method"] == "whitespace"
        if not r["exact_match"]:
            wa, wb, k = r["a"]["text"].split(), r["b"]["text"].split(), r["token_divergence"]
            assert wa[:k] == wb[:k] and (k == min(len(wa), len(wb)) or wa[k] != wb[k])


def test_cli_parity_json_and_min_match_rate(tmp_path):
    runner = CliRunner()
    with launch(workdir=str(tmp_path)) as a, launch("--diverge-rate", "1.0", "--answer-seed", "9",
                                                    workdir=str(tmp_path)) as b:
        out = tmp_path / "p.json"
        r = runner.invoke(app, ["parity", "--a", "sglang", "--b", "vllm", "--model", "fake-model", "--a-url",
                                a.base_url, "--b-url", b.base_url, "--max-tokens", "32", "--out", str(out),
                                "--json", "--min-match-rate", "0.9"])
        assert r.exit_code == 1, r.output
        data = json.loads(out.read_text())
        # every B reply diverges somewhere, but a 32-token cap hides divergences that come later
        assert data["n"] == 20 and data["matches"] < 18 and data["match_rate"] == data["matches"] / 20
        assert data["prompts"]["name"] == "parity-v1" and data["sampling"]["max_tokens"] == 32
        # max_tokens honoured per prompt (the long-context prompt sets its own 128 > 32 cap)
        caps = {p["id"]: p["a"]["completion_tokens"] for p in data["per_prompt"]}
        assert all(v <= 32 for k, v in caps.items() if k != "long-context-lookup")
        r = runner.invoke(app, ["parity", "--a", "sglang", "--b", "sglang2", "--model", "fake-model", "--a-url",
                                a.base_url, "--b-url", a.base_url, "--max-tokens", "16", "--out",
                                str(tmp_path / "q.json")])
        assert r.exit_code == 0, r.output
        assert "match_rate = 20/20" in " ".join(r.stdout.split())
        r = runner.invoke(app, ["parity", "--a", "x", "--b", "y", "--model", "fake-model", "--a-url", a.base_url,
                                "--b-url", a.base_url, "--out", str(out)])
        assert isinstance(r.exception, HarnessError) and "never overwritten" in str(r.exception)


def test_cli_parity_managed_servers_run_one_at_a_time(tmp_path, monkeypatch):
    import harness.server as server_mod

    events = []

    @contextlib.contextmanager
    def managed_server(engine, model, mtp=False, run_dir=None, **kw):
        events.append(("start", engine))
        with launch("--answer-seed", "1" if engine == "sglang" else "2", "--diverge-rate", "0.5",
                    workdir=str(tmp_path)) as eng:
            class S:
                base_url = eng.base_url
                served_model_name = "fake-model"
            yield S()
        events.append(("stop", engine))

    monkeypatch.setattr(server_mod, "managed_server", managed_server, raising=False)
    out = tmp_path / "parity.json"
    r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "vllm", "--model", "gemma", "--max-tokens", "16",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert events == [("start", "sglang"), ("stop", "sglang"), ("start", "vllm"), ("stop", "vllm")]
    data = json.loads(out.read_text())
    assert data["a"]["server"] == data["b"]["server"] == "managed"
    assert data["a"]["engine"] == "sglang" and data["b"]["engine"] == "vllm"


def test_cli_parity_passes_tp_and_weights_to_the_servers_it_starts(tmp_path, monkeypatch):
    """31B's fusion on/off parity runs at TP=2: --tp and --model-path reach both managed servers."""
    import harness.server as server_mod

    seen = []

    @contextlib.contextmanager
    def managed_server(engine, model, mtp=False, run_dir=None, **kw):
        seen.append((engine, kw))
        with launch("--answer-seed", "1", workdir=str(tmp_path)) as eng:
            class S:
                base_url = eng.base_url
                served_model_name = "fake-model"
            yield S()

    monkeypatch.setattr(server_mod, "managed_server", managed_server, raising=False)
    weights = tmp_path / "w"
    weights.mkdir()
    r = CliRunner().invoke(app, ["parity", "--a", "sglang-patched", "--b", "sglang-patched-no-ar-fusion",
                                 "--model", "31B", "--tp", "2", "--model-path", str(weights), "--max-tokens", "8",
                                 "--out", str(tmp_path / "p.json")])
    assert r.exit_code == 0, r.output
    assert seen == [("sglang-patched", {"model_path": weights, "tp": 2}),
                    ("sglang-patched-no-ar-fusion", {"model_path": weights, "tp": 2})]
    r = CliRunner().invoke(app, ["parity", "--from-run", "x", "--tp", "2"])
    assert isinstance(r.exception, HarnessError) and "--tp" in str(r.exception)
    r = CliRunner().invoke(app, ["mmlu", "--engine", "e", "--model", "m", "--base-url", "http://127.0.0.1:9",
                                 "--tp", "2", "--source", str(JSONL), "--out", str(tmp_path / "m")])
    assert isinstance(r.exception, HarnessError) and "--tp applies to a server the harness starts" in str(r.exception)


def test_cli_mmlu_through_the_real_managed_server(tmp_path, monkeypatch):
    """No --base-url: harness.server.managed_server launches the engine profile (here the stand-in server)."""
    from conftest import fake_overrides

    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--answer-mode", "mmlu"]})
    monkeypatch.setenv("HARNESS_OVERRIDES", str(ov))
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["mmlu", "--engine", "sglang", "--model", "26B-A4B", "--source", str(JSONL),
                                 "--num-questions", "8", "--concurrency", "4", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["server"] == "managed" and s["n"] == 8
    env = s["meta"].pop("environment")
    assert s["meta"] == {"mtp": False, "dummy_weights": True, "weights": "dummy"}
    # where the numbers came from, as a run manifest records it
    assert env["engine"]["name"] == "sglang" and env["engine"]["family"] == "sglang"
    assert "fake_engine.py" in " ".join(env["server_command"]) and "--answer-mode" in env["server_command"]
    assert set(env["machine"]) >= {"gpu_name", "gpu_count", "driver", "hostname"}
    assert "dummy (random) weights" in " ".join(r.output.split())
    assert (out / "logs").is_dir()  # the server's log lives beside the records
