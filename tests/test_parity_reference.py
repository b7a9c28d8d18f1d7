"""`harness parity-reference`: each first divergence of a parity record read against transformers' float32 forward
of the same checkpoint (which engine's token the reference prefers, by how much, its own top token)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_cli import harness  # noqa: E402
from test_parity_from_run import PROMPTS_SHA, one_line  # noqa: E402

from harness.cli.app import app  # noqa: E402
from harness.evals.parity import default_prompts_path, load_prompts  # noqa: E402

PROMPTS, _ = load_prompts(default_prompts_path())
P0, P1, P2 = (p.id for p in PROMPTS.prompts[:3])

# A stand-in for the engine interpreter: records the requests it got, answers with fixed logprobs:
# the reference likes 'good' best, then 'ok', then anything else.
FAKE_PY = """#!{python}
import json, sys
args = sys.argv[1:]
assert args[:2] == ["-m", "harness.reference_logprobs"], args
reqs = json.load(open(args[args.index("--requests") + 1]))
json.dump({{"argv": args, "requests": reqs}}, open({seen!r}, "w"))
lp = {{"good": -1.0, "ok": -1.0005, "meh": -3.0}}
res = []
for r in reqs:
    c = {{t: {{"id": 7, "logprob": lp.get(t, -9.0), "rank": sorted(lp.values(), reverse=True).index(lp[t]) if t in lp else 50}}
          for t in r["candidates"]}}
    res.append({{"key": r["key"], "prompt_tokens": 12, "unknown": [], "candidates": c, "top": [["good", -1.0], ["ok", -1.0005]]}})
    if "none" not in args:  # the bf16 control: it picks 'ok' at -1.1, which float32 ranks second (-1.0005)
        res[-1]["control"] = {{"dtype": "bfloat16", "top_token": "ok", "top_logprob": -1.1, "top_ref_logprob": -1.0005,
                              "top_ref_rank": 1, "candidates": {{t: -1.1 for t in r["candidates"]}}}}
print("noise before the result")
print("REFERENCE_LOGPROBS " + json.dumps({{"transformers": "5.6.0", "torch": "2.11.0", "device": "cpu",
      "dtype": "float32", "control_dtype": "none" if "none" in args else "bfloat16", "architecture": "Fake", "load_s": 0.1, "total_s": 0.2, "results": res}}))
"""


def _fake_python(tmp_path: Path) -> tuple[Path, Path]:
    seen = tmp_path / "seen.json"
    p = tmp_path / "fakepy"
    p.write_text(FAKE_PY.format(python=sys.executable, seen=str(seen)))
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p, seen


def _side(tokens: list[str], logprobs: list[float] | None = None) -> dict:
    return {"id": "x", "text": " ".join(tokens), "tokens": tokens, "completion_tokens": len(tokens),
            "finish_reason": "length", "error": None, "latency_s": 0.1, "token_logprobs": logprobs}


def _row(pid: str, a: list[str], b: list[str], i: int | None, method: str = "logprobs",
         lp: tuple[list[float] | None, list[float] | None] = (None, None)) -> dict:
    return {"id": pid, "exact_match": a == b, "token_divergence": i, "token_method": method,
            "divergence": {"a_margin": 0.02, "b_margin": 0.03}, "a": _side(a, lp[0]), "b": _side(b, lp[1])}


def _record(tmp_path: Path, rows: list[dict], sha: str = PROMPTS_SHA, name: str = "parity-31B-fusion.json",
            engines: tuple[str, str] = ("sglang-patched", "sglang-patched-no-ar-fusion")) -> Path:
    rec = {"kind": "parity", "model": "31B", "prompts": {"sha256": sha}, "n": len(rows), "matches": 0,
           "a": {"engine": engines[0]}, "b": {"engine": engines[1]}, "per_prompt": rows}
    p = tmp_path / "runs" / "parity" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))
    return p


def _model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "weights"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_divergences_are_sent_with_their_shared_context_and_read_back(tmp_path):
    fake, seen = _fake_python(tmp_path)
    rows = [_row(P0, ["x", "good"], ["x", "meh"], 1, lp=([-0.5, -1.25], [-0.5, -2.5])),  # reference prefers A
            _row(P1, ["bad", "y"], ["ok", "y"], 0),  # prefers B (its top is neither)
            _row(P2, ["good"], ["ok"], 0)]  # 0.0005 nats apart: a tie at the default 1e-3
    rec = _record(tmp_path, rows)
    env = dict(os.environ, HARNESS_RUNS=str(tmp_path / "runs"))
    r = harness("parity-reference", str(rec), "--model-path", str(_model_dir(tmp_path)), "--python", str(fake),
                "--device", "cpu", env=env)
    assert r.returncode == 0, r.stderr
    sent = json.loads(seen.read_text())
    assert [(q["key"], q["index"], q["prefix"], q["candidates"]) for q in sent["requests"]] == [
        (f"0:{P0}", 1, ["x"], ["good", "meh"]), (f"0:{P1}", 0, [], ["bad", "ok"]), (f"0:{P2}", 0, [], ["good", "ok"])]
    assert sent["requests"][0]["messages"] == PROMPTS.prompts[0].chat_messages()
    assert sent["argv"][sent["argv"].index("--dtype") + 1] == "float32" and "--device" in sent["argv"]
    out = tmp_path / "runs" / "parity" / "parity-reference-31B-fusion.json"
    res = json.loads(out.read_text())
    assert res["kind"] == "parity-reference" and res["engines"] == ["sglang-patched", "sglang-patched-no-ar-fusion"]
    assert [v["prefers"] for v in res["divergences"]] == ["a", "b", "tie"]
    assert res["divergences"][0]["delta"] == 2.0 and res["divergences"][0]["engine_margins"] == {"a": 0.02, "b": 0.03}
    assert res["summary"] == {"divergences": 3, "checked": 3, "prefers_a": 1, "prefers_b": 1, "ties": 1,
                              "ref_top_is_a": 2, "ref_top_is_b": 0, "ref_top_is_neither": 1,
                              "median_abs_delta": 2.0, "max_abs_delta": 7.9995,
                              "median_abs_a_gap": 0.25, "median_abs_b_gap": 0.5,
                              "control_dtype": "bfloat16", "control_checked": 3, "control_top_is_ref_top": 0,
                              "median_control_ref_rank": 1, "median_abs_control_gap": 0.0995, "floor": "beyond"}
    assert res["divergences"][0]["control_token"] == "ok" and res["divergences"][0]["control_gap"] == -0.0995
    assert res["reference"]["control_dtype"] == "bfloat16" and "--control-dtype" not in sent["argv"]
    # each engine's own logprob of its token against the reference's: -1.25 - (-1.0), -2.5 - (-3.0)
    assert (res["divergences"][0]["a_gap"], res["divergences"][0]["b_gap"]) == (-0.25, 0.5)
    assert res["divergences"][1]["a_gap"] is None
    assert "the reference prefers sglang-patched's token 1×" in one_line(r)
    assert ("transformers' own bfloat16 forward (the rounding floor): its top token is float32's 0/3, median float32 "
            "rank 1, median |gap| 0.0995 nats: the engines are beyond that floor") in one_line(r)
    # never overwritten
    r = harness("parity-reference", str(rec), "--model-path", str(tmp_path / "weights"), "--python", str(fake), env=env)
    assert r.returncode == 2 and "never overwritten" in one_line(r)
    # the report shows it beside the parity records, linked to the record it read
    report = tmp_path / "C.md"
    r = harness("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(report), "--no-plots", env=env)
    assert r.returncode == 0, r.stderr
    text = " ".join(report.read_text().split())
    assert "#### Reference check of the first divergences" in text
    assert ("| sglang-patched vs sglang-patched-no-ar-fusion | [parity-31B-fusion.json](runs/parity/parity-31B-fusion"
            ".json) | 3 divergences: the reference prefers sglang-patched's token 1×") in text
    assert "transformers 5.6.0, torch 2.11.0, float32 on cpu" in text


def test_several_records_share_one_model_load(tmp_path):
    fake, seen = _fake_python(tmp_path)
    r1 = _record(tmp_path, [_row(P0, ["good"], ["meh"], 0)])
    r2 = _record(tmp_path, [_row(P0, ["meh"], ["good"], 0), _row(P1, ["ok"], ["good"], 0)], name="parity-vllm.json",
                 engines=("vllm", "sglang-patched"))
    env = dict(os.environ, HARNESS_RUNS=str(tmp_path / "runs"))
    w = str(_model_dir(tmp_path))
    r = harness("parity-reference", str(r1), str(r2), "--model-path", w, "--python", str(fake), "--out",
                str(tmp_path / "o.json"), env=env)
    assert r.returncode == 2 and "--out names the output of one record; 2 were given" in one_line(r)
    r = harness("parity-reference", str(r1), str(r2), "--model-path", w, "--python", str(fake), env=env)
    assert r.returncode == 0, r.stderr
    assert [q["key"] for q in json.loads(seen.read_text())["requests"]] == [f"0:{P0}", f"1:{P0}", f"1:{P1}"]
    out = tmp_path / "runs" / "parity"
    one = json.loads((out / "parity-reference-31B-fusion.json").read_text())
    two = json.loads((out / "parity-reference-vllm.json").read_text())
    assert one["summary"]["prefers_a"] == 1 and one["reference"]["records_in_one_load"] == 2
    assert two["engines"] == ["vllm", "sglang-patched"]
    # --no-control: no bf16 pass asked for, none read back
    r = harness("parity-reference", str(r2), "--model-path", w, "--python", str(fake), "--no-control", "--out",
                str(tmp_path / "nc.json"), env=env)
    assert r.returncode == 0, r.stderr
    argv = json.loads(seen.read_text())["argv"]
    assert argv[argv.index("--control-dtype") + 1] == "none"
    nc = json.loads((tmp_path / "nc.json").read_text())
    assert "control_checked" not in nc["summary"] and "control_token" not in nc["divergences"][0]
    assert "rounding floor" not in one_line(r)
    assert (two["summary"]["prefers_b"], two["summary"]["ties"]) == (1, 1)


def test_bad_inputs_are_named(tmp_path):
    fake, _ = _fake_python(tmp_path)
    w = _model_dir(tmp_path)
    runner = CliRunner()

    def run(rec: Path, *extra: str):
        return runner.invoke(app, ["parity-reference", str(rec), "--model-path", str(w), "--python", str(fake),
                                   "--out", str(tmp_path / f"o{len(list(tmp_path.iterdir()))}.json"), *extra])

    r = run(_record(tmp_path, [_row(P0, ["a"], ["b"], 0)], sha="0" * 64))
    assert "answers parity prompts sha256 000000000000" in str(r.exception)
    r = run(_record(tmp_path, [_row(P0, ["a", "b"], ["a", "b"], None)]))
    assert "no divergence to check (every answer matches)" in str(r.exception)
    r = run(_record(tmp_path, [_row(P0, ["a"], ["a", "b"], 1)]))
    assert "one answer is a prefix of the other" in str(r.exception)
    mmlu = tmp_path / "m.json"
    mmlu.write_text(json.dumps({"kind": "mmlu"}))
    assert "not a parity record" in str(run(mmlu).exception)
    r = runner.invoke(app, ["parity-reference", str(_record(tmp_path, [_row(P0, ["a"], ["b"], 0)])),
                            "--model-path", str(tmp_path / "nowhere"), "--python", str(fake)])
    assert "no config.json there" in str(r.exception)


def test_parity_floor_compares_bf16_with_float32_on_every_prompt_and_the_report_shows_it(tmp_path):
    fake, seen = _fake_python(tmp_path)
    d = _model_dir(tmp_path)
    (d / "config.json").write_text(json.dumps({"text_config": {"num_hidden_layers": 35, "hidden_size": 1536,
                                                               "vocab_size": 16384}}))
    env = dict(os.environ, HARNESS_RUNS=str(tmp_path / "runs"))
    r = harness("parity-floor", "--model-path", str(d), "--python", str(fake), env=env)
    assert r.returncode == 2 and "no harness marker names the model; pass --model" in one_line(r)
    r = harness("parity-floor", "--model-path", str(d), "--model", "E2B", "--python", str(fake), "--device", "cpu", env=env)
    assert r.returncode == 0, r.stderr
    sent = json.loads(seen.read_text())
    assert [q["key"] for q in sent["requests"]] == [p.id for p in PROMPTS.prompts]
    assert all(q["prefix"] == [] and q["candidates"] == [] for q in sent["requests"])
    argv = sent["argv"]
    assert argv[argv.index("--control-dtype") + 1] == "bfloat16" and argv[argv.index("--dtype") + 1] == "float32"
    recs = list((tmp_path / "runs" / "parity").glob("parity-floor-E2B-*.json"))
    assert len(recs) == 1
    rec = json.loads(recs[0].read_text())
    n = len(PROMPTS.prompts)
    # the fake's bf16 pass picks 'ok' (float32 rank 1, gap -0.0995) where float32's top is 'good' (top-2 gap 0.0005)
    assert rec["kind"] == "parity-floor" and rec["config"]["num_hidden_layers"] == 35
    assert set(rec["reference"]["machine"]) >= {"gpu_name", "driver", "hostname"}  # where it ran
    assert rec["summary"] == {"prompts": n, "checked": n, "control_top_is_ref_top": 0, "median_control_ref_rank": 1,
                              "median_abs_control_gap": 0.0995, "median_ref_top2_gap": 0.0005}
    assert f"bfloat16 and float32 pick the same first token on 0/{n} prompts" in one_line(r)
    r = harness("parity-floor", "--model-path", str(d), "--model", "E2B", "--python", str(fake), env=env)
    assert r.returncode == 2 and "never overwritten" in one_line(r)
    report = tmp_path / "C.md"
    r = harness("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(report), "--no-plots", env=env)
    assert r.returncode == 0, r.stderr
    text = " ".join(report.read_text().split())
    assert "#### Rounding floor of the checkpoint" in text
    assert (f"| E2B (layers 35, hidden 1536, vocab 16384) | bfloat16 and float32 pick the same first token on 0/{n} "
            "prompts; float32 ranks the bfloat16 choice 1 (median)") in text
    # a record made on a GPU says which
    rec["reference"].update(device="cuda", machine={"gpu_name": "NVIDIA H200", "driver": "580.159.04"})
    recs[0].write_text(json.dumps(rec))
    report.unlink()
    assert harness("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(report), "--no-plots", env=env).returncode == 0
    assert "torch 2.11.0 on cuda (NVIDIA H200, driver 580.159.04) |" in " ".join(report.read_text().split())


TORCH_PYTHON = os.environ.get("HARNESS_TORCH_PYTHON")


@pytest.mark.skipif(not TORCH_PYTHON, reason="set HARNESS_TORCH_PYTHON to an interpreter with torch and "
                    "transformers 5.6.0 (CI: the patch CPU venv)")
def test_the_reference_sides_with_its_own_greedy_choice(tmp_path):
    """The real module on a shrunken E2B: side A answers with transformers' own float32 greedy tokens, side B takes
    another token at index 2; the reference must prefer A's token and rank it first at every divergence."""
    from test_random_init_weights import tiny_e2b_with_random_weights

    d = tiny_e2b_with_random_weights(tmp_path, TORCH_PYTHON, tokenizer=True)
    probe = (
        "import json, sys, torch\n"
        "from transformers import AutoTokenizer, Gemma4ForConditionalGeneration as M\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = M.from_pretrained(sys.argv[1], dtype=torch.bfloat16).float().eval()\n"
        "out = []\n"
        "for msgs in json.loads(sys.argv[2]):\n"
        "    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)\n"
        "    ids = ids['input_ids'] if hasattr(ids, 'keys') else ids\n"
        "    g = m.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)[0, len(ids):].tolist()\n"
        "    out.append(tok.convert_ids_to_tokens(g))\n"
        "print(json.dumps(out))\n"
    )
    msgs = [p.chat_messages() for p in PROMPTS.prompts[:2]]
    p = subprocess.run([TORCH_PYTHON, "-c", probe, str(d), json.dumps(msgs)], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    greedy = json.loads(p.stdout.strip().splitlines()[-1])
    rows = []
    for pid, g in zip((P0, P1), greedy):
        other = "w100" if g[2] != "w100" else "w101"  # ids 0-8 are special tokens and role words
        rows.append(_row(pid, g, g[:2] + [other, g[3]], 2))
    rec = _record(tmp_path, rows)
    out = tmp_path / "ref.json"
    r = CliRunner().invoke(app, ["parity-reference", str(rec), "--model-path", str(d), "--python", TORCH_PYTHON,
                                 "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["summary"]["checked"] == 2 and res["summary"]["prefers_a"] == 2, res["divergences"]
    assert res["summary"]["ref_top_is_a"] == 2
    assert all(v["ref_top"][0][0] == v["a_token"] for v in res["divergences"])
    assert res["reference"]["dtype"] == "float32" and res["weights"] == "random-init"
    # the bf16 control ran on the same contexts: its own token, ranked by float32, and its logprob gap
    assert res["summary"]["control_checked"] == 2 and res["reference"]["control_dtype"] == "bfloat16"
    for v in res["divergences"]:
        assert isinstance(v["control_token"], str) and v["control_ref_rank"] >= 0
        assert v["control_gap"] is not None and set(v["control_candidates"]) == {v["a_token"], v["b_token"]}


def test_report_links_the_local_copy_of_a_parity_record_read_on_another_host(tmp_path):
    """A reference computed on a GPU host names the parity record by that host's path (/tmp/runs/parity/...); the
    report links the imported copy beside it, when its sha256 is the one the reference read."""
    import hashlib

    fake, _ = _fake_python(tmp_path)
    rec = _record(tmp_path, [_row(P0, ["good"], ["meh"], 0)], name="parity-E4B-x.json")
    env = dict(os.environ, HARNESS_RUNS=str(tmp_path / "runs"))
    r = harness("parity-reference", str(rec), "--model-path", str(_model_dir(tmp_path)), "--python", str(fake), env=env)
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "runs" / "parity" / "parity-reference-E4B-x.json"
    data = json.loads(ref.read_text())
    assert data["parity_record_sha256"] == hashlib.sha256(rec.read_bytes()).hexdigest()
    sha = data["parity_record_sha256"]
    for want, linked in ((sha, True), ("0" * 64, False)):  # another file of that name is not the record it read
        data.update(parity_record="/tmp/runs/parity/parity-E4B-x.json", parity_record_sha256=want)
        ref.write_text(json.dumps(data))
        report = tmp_path / "runs" / "C.md"
        r = harness("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(report), "--no-plots", env=env)
        assert r.returncode == 0, r.stderr
        text = report.read_text()
        assert ("[parity-E4B-x.json](parity/parity-E4B-x.json)" in text) is linked
