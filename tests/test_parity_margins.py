"""Greedy parity records say how close each divergence was: the two engines' logprob margins at the first
differing token (harness.evals.parity.divergence_block / divergence_margins), the client's parsing of
top_logprobs, the fake engine's near-ties and clear gaps end to end, and old records / generation files."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from fake_engine import launch  # noqa: E402
from test_parity_from_run import A, B, DIFF_PROMPT, answers, make_run, one_line, write_generations  # noqa: E402
from test_bench_cli import harness  # noqa: E402

from analysis.evals import parse_eval_record  # noqa: E402
from analysis.tables import parity_table  # noqa: E402
from harness.cli.app import app  # noqa: E402
from harness.evals import client as chat_client  # noqa: E402
from harness.evals.parity import (  # noqa: E402
    NEAR_TIE_NATS,
    Generation,
    compare_pair,
    divergence_margins,
    divergence_margins_text,
    generate_all,
    load_prompts,
)


def gen(tokens, chosen=None, tops=None, pid="p"):
    return Generation(pid, "".join(tokens), list(tokens), len(tokens), "stop", None, 0.1,
                      token_logprobs=chosen, top_logprobs=tops)


# --------------------------------------------------------------------------------------------- compare_pair


def test_near_tie_margins_from_both_sides():
    a = gen(["The", " cat", " sat"], [-0.01, -0.70, -0.2],
            [{"The": -0.01}, {" cat": -0.70, " dog": -0.74, " cow": -2.5}, {" sat": -0.2}])
    b = gen(["The", " dog", " ran"], [-0.01, -0.69, -0.3],
            [{"The": -0.01}, {" dog": -0.69, " cat": -0.75, " pig": -3.0}, {" ran": -0.3}])
    row = compare_pair(a, b)
    assert row["token_divergence"] == 1 and row["token_method"] == "logprobs"
    d = row["divergence"]
    assert d["index"] == 1 and (d["a_token"], d["b_token"]) == (" cat", " dog")
    assert d["a_margin"] == 0.04 and d["b_margin"] == 0.06
    assert d["a_margin_bound"] is None and d["b_margin_bound"] is None
    assert d["a_top_logprobs"] == {" cat": -0.70, " dog": -0.74, " cow": -2.5}
    assert d["b_top_logprobs"] == {" dog": -0.69, " cat": -0.75, " pig": -3.0}
    # the record keeps the chosen logprobs per token, the alternatives only at the divergence
    assert row["a"]["token_logprobs"] == [-0.01, -0.70, -0.2] and "top_logprobs" not in row["a"]
    dm = divergence_margins([row])
    assert dm == {"threshold_nats": NEAR_TIE_NATS, "divergent": 1, "with_margins": 1, "near_ties": 1,
                  "max_margin": 0.06, "rival_unlisted": 0}


def test_clear_gap_is_not_a_near_tie():
    a = gen(["x", " y"], [-0.1, -0.05], [{"x": -0.1}, {" y": -0.05, " z": -1.55}])
    b = gen(["x", " z"], [-0.1, -0.2], [{"x": -0.1}, {" z": -0.2, " y": -2.2}])
    row = compare_pair(a, b)
    d = row["divergence"]
    assert (d["a_margin"], d["b_margin"]) == (1.5, 2.0)
    dm = divergence_margins([row])
    assert (dm["near_ties"], dm["with_margins"], dm["max_margin"]) == (0, 1, 2.0)
    # one near-tie side is not enough: the larger margin decides
    b.top_logprobs[1][" y"] = -0.25
    dm = divergence_margins([compare_pair(a, b)])
    assert (dm["near_ties"], dm["max_margin"]) == (0, 1.5)


def test_rival_not_listed_gives_null_margin_and_a_bound():
    a = gen(["x", " y"], [-0.1, -0.3], [{"x": -0.1}, {" y": -0.3, " q": -1.0, " r": -2.8}])
    b = gen(["x", " z"], [-0.1, -0.2], [{"x": -0.1}, {" z": -0.2, " y": -0.25}])
    d = compare_pair(a, b)["divergence"]
    assert d["a_margin"] is None and d["a_margin_bound"] == 2.5  # -0.3 - (-2.8): " z" ranks below all three
    assert d["b_margin"] == 0.05 and d["b_margin_bound"] is None
    dm = divergence_margins([compare_pair(a, b)])
    assert dm == {"threshold_nats": NEAR_TIE_NATS, "divergent": 1, "with_margins": 0, "near_ties": 0,
                  "max_margin": None, "rival_unlisted": 1}


def test_chosen_logprob_taken_from_the_alternatives_when_missing():
    a = gen(["x", " y"], None, [{"x": -0.1}, {" y": -0.3, " z": -0.33}])
    b = gen(["x", " z"], [-0.1, None], [{"x": -0.1}, {" z": -0.2, " y": -0.29}])
    d = compare_pair(a, b)["divergence"]
    assert (d["a_margin"], d["b_margin"]) == (0.03, 0.09)


def test_no_divergence_block_when_equal_prefix_or_no_alternatives():
    tops = [{"x": -0.1}, {" y": -0.2}]
    same = compare_pair(gen(["x", " y"], [-0.1, -0.2], tops), gen(["x", " y"], [-0.1, -0.2], tops))
    assert same["exact_match"] and same["token_divergence"] is None and same["divergence"] is None
    # one text a prefix of the other: they part at index 2, where only one side has a token
    pre = compare_pair(gen(["x", " y"], [-0.1, -0.2], tops), gen(["x", " y", " z"], [-0.1, -0.2, -0.3],
                                                                   tops + [{" z": -0.3}]))
    assert pre["token_divergence"] == 2 and pre["divergence"] is None
    # a side without top_logprobs (an old generation, or a server that gave none)
    old = compare_pair(gen(["x", " y"]), gen(["x", " z"], [-0.1, -0.2], [{"x": -0.1}, {" z": -0.2, " y": -0.3}]))
    assert old["token_divergence"] == 1 and old["divergence"] is None
    dm = divergence_margins([same, pre, old])
    assert dm == {"threshold_nats": NEAR_TIE_NATS, "divergent": 2, "with_margins": 0, "near_ties": 0,
                  "max_margin": None, "rival_unlisted": 0}
    assert divergence_margins_text(dm) == "no margins for 2 divergences"


def test_summary_counts_and_text():
    rows = []
    for m_a, m_b in ((0.01, 0.02), (0.1, 0.05), (0.43, 0.02), (0.3, 0.11)):
        a = gen(["x", " a"], [-0.1, -0.5], [{"x": -0.1}, {" a": -0.5, " b": -0.5 - m_a}])
        b = gen(["x", " b"], [-0.1, -0.4], [{"x": -0.1}, {" b": -0.4, " a": -0.4 - m_b}])
        rows.append(compare_pair(a, b))
    rows.append(compare_pair(gen(["x", " a"]), gen(["x", " b"])))  # diverges, no margins
    rows.append(compare_pair(gen(["x"]), gen(["x"])))  # equal
    dm = divergence_margins(rows)
    assert dm == {"threshold_nats": 0.1, "divergent": 5, "with_margins": 4, "near_ties": 2, "max_margin": 0.43,
                  "rival_unlisted": 0}
    assert divergence_margins_text(dm) == "2/4 near-ties (≤0.1 nats; max 0.43); 1 of 5 without both margins"
    assert divergence_margins_text({**dm, "divergent": 4}) == "2/4 near-ties (≤0.1 nats; max 0.43)"
    assert divergence_margins_text(None) == "not recorded"
    assert divergence_margins_text({"divergent": 0, "with_margins": 0}) == "no divergence"


# --------------------------------------------------------------------------------------------- client


class FakeCompletions:
    def __init__(self, resp):
        self.resp, self.calls = resp, []

    def create(self, **kw):
        self.calls.append(kw)
        return self.resp


def fake_client(resp):
    comp = FakeCompletions(resp)
    return SimpleNamespace(chat=SimpleNamespace(completions=comp)), comp


def response(content):
    choice = SimpleNamespace(message=SimpleNamespace(content="Hi there"), finish_reason="stop",
                             logprobs=SimpleNamespace(content=content))
    return SimpleNamespace(choices=[choice], usage=SimpleNamespace(completion_tokens=2, prompt_tokens=3))


def item(token, logprob, top):
    return SimpleNamespace(token=token, logprob=logprob,
                           top_logprobs=None if top is None else [SimpleNamespace(token=t, logprob=v) for t, v in top])


def test_client_sends_top_logprobs_and_parses_alternatives():
    cl, comp = fake_client(response([item("Hi", -0.25, [("Hi", -0.25), ("Hello", -1.5)]),
                                     item(" there", -0.5, [(" there", -0.5), (" you", -0.75), (" you", -0.9)])]))
    res = chat_client.chat_once(cl, "m", [{"role": "user", "content": "x"}], max_tokens=4, logprobs=True,
                                top_logprobs=5)
    assert comp.calls[0]["logprobs"] is True and comp.calls[0]["top_logprobs"] == 5
    assert res.text == "Hi there" and res.tokens == ["Hi", " there"]
    assert res.token_logprobs == [-0.25, -0.5]
    assert res.top_logprobs == [{"Hi": -0.25, "Hello": -1.5}, {" there": -0.5, " you": -0.75}]  # higher kept
    # without logprobs, top_logprobs is not sent (the API rejects it alone)
    chat_client.chat_once(cl, "m", [{"role": "user", "content": "x"}], max_tokens=4, top_logprobs=5)
    assert "logprobs" not in comp.calls[1] and "top_logprobs" not in comp.calls[1]
    chat_client.chat_once(cl, "m", [{"role": "user", "content": "x"}], max_tokens=4, logprobs=True)
    assert comp.calls[2]["logprobs"] is True and "top_logprobs" not in comp.calls[2]


def test_client_tolerates_missing_and_odd_values():
    cl, _ = fake_client(response([item("a", None, None), item("b", -math.inf, [("b", None), ("c", -math.inf)]),
                                  item("c", -1.0, [("c", -1.0), (None, -2.0)])]))
    res = chat_client.chat_once(cl, "m", [], max_tokens=4, logprobs=True, top_logprobs=2)
    assert res.error is None and res.tokens == ["a", "b", "c"]
    assert res.token_logprobs == [None, None, -1.0]
    assert res.top_logprobs == [{}, {}, {"c": -1.0}]
    # a server that returns tokens only (top_logprobs: [] everywhere, logprob absent)
    cl, _ = fake_client(response([SimpleNamespace(token="a"), {"token": "b", "logprob": None, "top_logprobs": []}]))
    res = chat_client.chat_once(cl, "m", [], max_tokens=4, logprobs=True, top_logprobs=2)
    assert res.tokens == ["a", "b"] and res.token_logprobs is None and res.top_logprobs is None


# --------------------------------------------------------------------------------------------- fake engine, end to end


def prompt_set(tmp_path: Path) -> Path:
    p = tmp_path / "prompts.yaml"
    p.write_text(json.dumps({"version": 1, "name": "margins-test", "prompts": [
        {"id": "near-a", "prompt": "Say something. [[fake:margin=0.05]]"},
        {"id": "near-b", "prompt": "Say something else. [[fake:margin=0.08]]"},
        {"id": "clear", "prompt": "Tell me a story. [[fake:margin=0.7]]"},
        {"id": "unlisted", "prompt": "Count to ten. [[fake:rival-unlisted]] [[fake:margin=0.03]]"},
    ]}))
    return p


def test_cli_parity_record_carries_margins_through_the_fake_engine(tmp_path):
    ppath = prompt_set(tmp_path)
    with launch("--answer-seed", "1", workdir=str(tmp_path)) as a, \
            launch("--answer-seed", "2", "--diverge-rate", "1.0", workdir=str(tmp_path)) as b:
        out = tmp_path / "p.json"
        r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "sglang-patched", "--model", "fake-model",
                                     "--a-url", a.base_url, "--b-url", b.base_url, "--prompts", str(ppath),
                                     "--max-tokens", "256", "--out", str(out)])
        assert r.exit_code == 0, r.output
        sent = [(q.get("logprobs"), q.get("top_logprobs")) for q in a.requests() + b.requests()
                if q["method"] == "POST"]
    assert sent == [(True, 2)] * 8
    rec = json.loads(out.read_text())
    assert rec["matches"] == 0
    assert rec["divergence_margins"] == {"threshold_nats": 0.1, "divergent": 4, "with_margins": 3, "near_ties": 2,
                                         "max_margin": 0.7, "rival_unlisted": 1}
    rows = {row["id"]: row for row in rec["per_prompt"]}
    for pid, m in (("near-a", 0.05), ("near-b", 0.08), ("clear", 0.7)):
        d = rows[pid]["divergence"]
        assert d["index"] == rows[pid]["token_divergence"]
        assert (d["a_margin"], d["b_margin"]) == (m, m)
        assert d["a_token"] == rows[pid]["a"]["tokens"][d["index"]] and d["b_token"] in d["a_top_logprobs"]
        assert len(d["a_top_logprobs"]) == len(d["b_top_logprobs"]) == 2
    d = rows["unlisted"]["divergence"]
    assert d["b_token"].endswith("~2") and d["a_margin"] is None
    assert d["a_margin_bound"] == 0.03  # A's list: its choice and a runner-up 0.03 below that is not B's token
    assert d["b_margin"] == 0.03
    # per-token logprobs kept in the record, the per-position alternatives not
    assert all(len(row["a"]["token_logprobs"]) == len(row["a"]["tokens"]) for row in rec["per_prompt"])
    assert all("top_logprobs" not in row["a"] for row in rec["per_prompt"])
    assert ("divergence margins: 2/3 near-ties (≤0.1 nats; max 0.7); 1 of 4 without both margins "
            "(1: a rival token outside the top list)") in " ".join(r.output.split())


def test_top_logprobs_rejected_falls_back_to_plain_logprobs(tmp_path):
    pset, _ = load_prompts(prompt_set(tmp_path))
    with launch("--max-top-logprobs", "1", workdir=str(tmp_path)) as eng:
        gens = generate_all(eng.base_url, "fake-model", pset, max_tokens=16, concurrency=1)
        reqs = [(q["status"], q.get("top_logprobs")) for q in eng.requests() if q["method"] == "POST"]
        small = generate_all(eng.base_url, "fake-model", pset, max_tokens=16, concurrency=1, top_logprobs=1)
    assert reqs == [(400, 2), (200, None)] * 4  # the default asks for the chosen token and its runner-up
    assert all(g.error is None and g.tokens and len(g.token_logprobs) == len(g.tokens) for g in gens)
    assert all(g.top_logprobs is None for g in gens)
    assert all(len(alts) == 1 for g in small for alts in g.top_logprobs)


def test_near_ties_on_the_v1_prompt_set(tmp_path):
    """Both fakes close to a tie everywhere: every divergence with margins is a near-tie."""
    pset, _ = load_prompts(Path(__file__).resolve().parent.parent / "scenarios" / "parity" / "prompts-v1.yaml")
    with launch("--divergence-margin", "0.04", workdir=str(tmp_path)) as a, \
            launch("--divergence-margin", "0.06", "--answer-seed", "5", "--diverge-rate", "0.5",
                   workdir=str(tmp_path)) as b:
        ga = generate_all(a.base_url, "fake-model", pset, max_tokens=256, concurrency=4)
        gb = generate_all(b.base_url, "fake-model", pset, max_tokens=256, concurrency=4)
    rows = [compare_pair(x, y) for x, y in zip(ga, gb)]
    dm = divergence_margins(rows)
    assert dm["divergent"] == sum(not r["exact_match"] for r in rows) > 0
    assert dm["near_ties"] == dm["with_margins"] == dm["divergent"] and dm["max_margin"] == 0.06
    assert {(r["divergence"]["a_margin"], r["divergence"]["b_margin"]) for r in rows if r["divergence"]} == \
        {(0.04, 0.06)}


# --------------------------------------------------------------------------------------------- old files, report


def test_from_run_with_old_generation_files_still_works(tmp_path):
    """Generation files stored before token_logprobs / top_logprobs existed (the run3 layout) load; the record
    says there were divergences but no margins."""
    runs = tmp_path / "runs"
    run = make_run(runs)
    write_generations(run, A, False)
    write_generations(run, B, False)
    old = json.loads((run / "evals" / f"generations-{A}__mtp-off.json").read_text())["generations"][0]
    assert "token_logprobs" not in old and "top_logprobs" not in old
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads((run / "evals" / f"parity-{A}-vs-{B}-mtp-off.json").read_text())
    assert rec["matches"] == 19
    assert rec["divergence_margins"] == {"threshold_nats": 0.1, "divergent": 1, "with_margins": 0, "near_ties": 0,
                                         "max_margin": None, "rival_unlisted": 0}
    (row,) = [x for x in rec["per_prompt"] if not x["exact_match"]]
    assert row["id"] == DIFF_PROMPT and row["divergence"] is None and row["a"]["token_logprobs"] is None
    assert "divergence margins: no margins for 1 divergence" in one_line(r)
    assert rec["sampling"]["logprobs"] == {"a": "tokens only", "b": "tokens only"}  # what the files carry


def test_from_run_with_new_generation_files_computes_margins(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs)

    def with_logprobs(engine, margin):
        gens = answers(engine)
        for g in gens:
            n = len(g["tokens"])
            g["token_logprobs"] = [-0.5] * n
            g["top_logprobs"] = [{t: -0.5} for t in g["tokens"]]
            if g["id"] == DIFF_PROMPT:  # 'is' (A) / 'was' (B) at token 3
                rival = "was" if engine == A else "is"
                g["top_logprobs"][3][rival] = -0.5 - margin
        return gens

    write_generations(run, A, False, with_logprobs(A, 0.02))
    write_generations(run, B, False, with_logprobs(B, 0.3))
    r = harness("parity", "--from-run", run.name, "--runs-dir", str(runs), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    (rec,) = json.loads(r.stdout)
    assert rec["divergence_margins"]["near_ties"] == 0 and rec["divergence_margins"]["max_margin"] == 0.3
    (row,) = [x for x in rec["per_prompt"] if x["id"] == DIFF_PROMPT]
    assert row["divergence"]["index"] == 3 and (row["divergence"]["a_token"], row["divergence"]["b_token"]) == \
        ("is", "was")
    assert (row["divergence"]["a_margin"], row["divergence"]["b_margin"]) == (0.02, 0.3)
    assert rec["sampling"]["logprobs"] == {"a": "tokens, logprobs and alternatives",
                                           "b": "tokens, logprobs and alternatives"}


def test_report_column(tmp_path):
    base = {"kind": "parity", "model": "m", "a": {"engine": "sglang"}, "b": {"engine": "vllm"}, "n": 20,
            "matches": 1, "match_rate": 0.05, "per_prompt": []}
    new = parse_eval_record({**base, "divergence_margins": {
        "threshold_nats": 0.1, "divergent": 19, "with_margins": 19, "near_ties": 12, "max_margin": 0.43,
        "rival_unlisted": 0}}, tmp_path / "parity-new.json")
    old = parse_eval_record(base, tmp_path / "parity-old.json")
    df = parity_table([new, old], lambda p: p.name)
    col = dict(zip(df["Record"], df["Divergence margins"]))
    assert col == {"[record](parity-new.json)": "12/19 near-ties (≤0.1 nats; max 0.43)",
                   "[record](parity-old.json)": "not recorded"}
    assert list(df.columns)[-2:] == ["Divergence margins", "Record"]



def test_parity_says_when_the_engines_did_not_get_the_same_input(tmp_path):
    """usage.prompt_tokens per prompt: equal counts are reported as such; a server that renders every prompt with
    one more token (e.g. a second BOS) is flagged in the record and in the report's Signal column."""
    from analysis.evals import parse_eval_record
    from analysis.tables import parity_table

    ppath = prompt_set(tmp_path)
    recs = {}
    with launch("--answer-seed", "1", workdir=str(tmp_path)) as a, launch("--answer-seed", "1", workdir=str(tmp_path)) \
            as same, launch("--answer-seed", "1", "--prompt-token-offset", "1", workdir=str(tmp_path)) as extra:
        for name, other in (("same", same), ("extra", extra)):
            out = tmp_path / f"parity-{name}.json"
            r = CliRunner().invoke(app, ["parity", "--a", "sglang", "--b", "vllm", "--model", "fake-model",
                                         "--a-url", a.base_url, "--b-url", other.base_url, "--prompts", str(ppath),
                                         "--out", str(out)])
            assert r.exit_code == 0, r.output
            recs[name] = json.loads(out.read_text())
    assert recs["same"]["prompt_tokens"] == {"known": 4, "differ": []}
    differ = recs["extra"]["prompt_tokens"]["differ"]
    assert len(differ) == 4 and all(d["b"] == d["a"] + 1 for d in differ)
    assert all(row["a"]["prompt_tokens"] > 0 for row in recs["extra"]["per_prompt"])
    text = {n: parity_table([parse_eval_record(recs[n], tmp_path / f"parity-{n}.json")], str)["Signal"][0]
            for n in recs}
    assert text["same"].endswith("; same prompt token counts (4 prompts)")
    assert "**inputs differ**: prompt token counts differ on 4 of 4 prompts" in text["extra"]
