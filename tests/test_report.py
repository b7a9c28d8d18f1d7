"""``harness report`` rendered from the hand-built fake records in tests/fixtures/runs/ (see make_fixtures.py)."""

from __future__ import annotations

import os
import re
import shutil
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.render import build, write_report
from harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
RUN1 = "fx-01-h100-real"

# A hand-checkable model for the roofline: hidden 10000, one full-attention layer, dense.
# q, k, v, o: 4 x 10000 x 10000 = 4e8; MLP 3 x 10000 x 10000 = 3e8; lm_head 10000 x 10000 = 1e8;
# one embedding row 1e4 -> 800,010,000 parameters = 1,600,020,000 bytes in bf16;
# at the H100 SXM datasheet 3.35 TB/s: 1.60002e9 / 3.35e12 s = 0.477618 ms per token.
BIG = {"text_config": {
    "hidden_size": 10000, "num_hidden_layers": 1, "layer_types": ["full_attention"], "num_attention_heads": 1,
    "num_key_value_heads": 1, "head_dim": 10000, "intermediate_size": 10000, "vocab_size": 10000,
}}


def fixture_loader(name: str):
    return (BIG, "fixture config") if name == "E2B" else (None, f"no model definition for {name!r}")


def render(out: Path, runs=None, plots=True):
    rep = build(runs, FIXTURES, out, with_plots=plots, model_loader=fixture_loader)
    write_report(rep)
    return rep


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "COMPARISON.md"
    rep = render(out)
    return out, rep.markdown


def sections(md: str) -> dict[str, str]:
    """'## N. title' -> section text."""
    out = {}
    for part in md.split("\n## ")[1:]:
        title, _, body = part.partition("\n")
        out[title] = body
    return out


def section(md: str, needle: str) -> str:
    hits = [body for title, body in sections(md).items() if needle in title]
    assert len(hits) == 1, (needle, list(sections(md)))
    return hits[0]


def table_after(text: str, heading: str) -> list[dict[str, str]]:
    """The first pipe table after ``heading`` as a list of {column: cell}."""
    rest = text[text.index(heading):]
    lines = [ln for ln in rest.splitlines() if ln.startswith("|")]
    block = []
    started = False
    for ln in rest.splitlines():
        if ln.startswith("|"):
            block.append(ln)
            started = True
        elif started:
            break
    assert lines, heading
    split = lambda ln: [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]]  # noqa: E731
    header = split(block[0])
    return [dict(zip(header, split(ln))) for ln in block[2:]]


def headline(md: str, needle: str) -> dict[tuple[str, str, str], dict[str, str]]:
    rows = table_after(section(md, needle), "### Headline")
    return {(r["Scenario"], r["MTP"], r["Metric"].split(" (")[0]): r for r in rows}


# --------------------------------------------------------------------------------------------- groups


def test_groups_never_mix_gpu_engine_version_or_weights(report):
    _, md = report
    titles = list(sections(md))
    groups = [t for t in titles if re.match(r"\d+\. ", t)]
    assert groups == [
        "1. E2B · 1× NVIDIA H100 80GB HBM3 · real weights · vllm 0.22.0",
        "2. E2B · 1× NVIDIA H100 80GB HBM3 · real weights · vllm 0.23.0",
        "3. E2B · 1× NVIDIA H200 · real weights",
        "4. E2B · 1× NVIDIA H100 80GB HBM3 · dummy weights",
    ]
    h100 = headline(md, "vllm 0.22.0")
    assert h100[("chat", "off", "output tok/s")]["vllm"] == "101.0 ± 2.5 (n=3)"
    # the H200 cell (777), the vLLM 0.23.0 cell (555) and the dummy cell (333) stay in their own sections
    g1 = section(md, "vllm 0.22.0")
    for other in ("777.0", "555.0", "333.0"):
        assert other not in g1
    assert headline(md, "H200")[("chat", "off", "output tok/s")]["vllm"] == "777.0"
    assert headline(md, "vllm 0.23.0")[("chat", "off", "output tok/s")]["vllm"] == "555.0"
    assert "| 0.23.0 |" in section(md, "vllm 0.23.0") and "| 0.23.0 |" not in g1


def test_compatible_runs_share_a_group(report):
    _, md = report
    g1 = section(md, "vllm 0.22.0")
    assert "fx-05-h100-real-more" in g1  # same environment as fx-01: its decode-burst cells join
    assert headline(md, "vllm 0.22.0")[("decode-burst", "off", "output tok/s")]["sglang-patched"] == "466.0"
    assert "2026-01-01 … 2026-01-03" in g1


def test_dummy_weights_are_labelled(report):
    _, md = report
    dummy = section(md, "dummy weights")
    assert "DUMMY WEIGHTS" in dummy and "**DUMMY (random) weights**" in dummy
    assert "DUMMY" not in section(md, "vllm 0.22.0")


def test_environment_block(report):
    _, md = report
    env = {r[""]: r["value"] for r in table_after(section(md, "vllm 0.22.0"), "### Environment")}
    assert env["GPU"] == "1× NVIDIA H100 80GB HBM3 (81559 MiB)"
    assert (env["Driver"], env["CUDA"], env["torch (host)"]) == ("580.0.fixture", "13.0", "2.11.0+cu130")
    assert env["Patch-stack hash"] == "fixturestack0001"
    engines = {r["Engine"]: r for r in table_after(section(md, "vllm 0.22.0"), "| Engine | Family")}
    assert engines["sglang-patched"]["Patch stack"] == "fixturestack0001"
    assert engines["vllm"]["Version"] == "0.22.0"


# --------------------------------------------------------------------------------------------- headline


def test_repeats_mean_interval_and_significance_marks(report):
    _, md = report
    h = headline(md, "vllm 0.22.0")
    row = h[("chat", "off", "output tok/s")]
    assert row["sglang-patched"] == "111.0 ± 2.5 (n=3)"
    assert row["sglang"] == "102.0 ± 5.0 (n=3)"
    # Welch: patched [110,111,112] vs vllm [100,101,102]: diff 10, se sqrt(2/3), df 4, t 2.776 -> [7.74, 12.26]
    assert row["Δ sglang-patched vs vllm"] == "+9.9% [+7.7%, +12.1%] ✱"
    tpot = h[("chat", "off", "median TPOT")]
    assert tpot["Δ sglang-patched vs vllm"] == "+0.0% [-20.6%, +20.6%]"  # same values, no mark
    assert "✱" not in tpot["Δ sglang-patched vs sglang"]
    assert h[("decode-burst", "off", "output tok/s")]["Δ sglang-patched vs vllm"] == "+5.0% (n=1, no interval)"


def test_failed_and_missing_cells_are_shown(report):
    out, md = report
    h = headline(md, "vllm 0.22.0")
    cells_on = h[("chat", "on", "cells")]
    assert cells_on["sglang"].startswith("**failed** [r1](")
    target = re.search(r"\(([^)]+)\)", cells_on["sglang"]).group(1)
    assert (out.parent / target).resolve() == (FIXTURES / RUN1 / "cells" / "sglang__chat__mtp-on__r1.json").resolve()
    assert h[("chat", "on", "output tok/s")]["sglang"] == "failed"
    assert h[("chat", "on", "output tok/s")]["Δ sglang-patched vs sglang"] == "—"
    # planned in the manifest but no record
    assert h[("summarization", "off", "cells")]["sglang"].startswith("missing [r1](")
    assert h[("summarization", "off", "output tok/s")]["sglang"] == "missing"
    # never planned for this engine, but the row exists for others
    assert h[("decode-burst", "off", "output tok/s")]["sglang"] == "missing"
    # one ok and one failed repeat: the failed one is linked, not averaged
    assert re.fullmatch(r"1 ok, \*\*failed\*\* \[r2\]\([^)]*vllm__summarization__mtp-off__r2\.json\)",
                        h[("summarization", "off", "cells")]["vllm"])
    assert h[("summarization", "off", "output tok/s")]["vllm"] == "80.0"
    # skipped cells are shown as skipped, with their record
    assert h[("mm-images", "off", "cells")]["sglang-patched"].startswith("skipped [r1](")
    assert h[("mm-images", "off", "median TPOT")]["sglang-patched"] == "skipped"


def test_mtp_on_and_off_are_separate_rows(report):
    _, md = report
    h = headline(md, "vllm 0.22.0")
    assert h[("chat", "on", "output tok/s")]["vllm"] == "120.5 ± 6.4 (n=2)"
    assert h[("chat", "off", "output tok/s")]["vllm"] == "101.0 ± 2.5 (n=3)"
    assert h[("chat", "on", "accept length")]["vllm"] == "2.50 ± 0.00 (n=2)"
    assert ("chat", "off", "accept length") not in h


def test_every_link_resolves(report):
    out, md = report
    links = re.findall(r"\]\(([^)#]+)\)", md)
    assert len(links) > 30
    for target in links:
        assert not os.path.isabs(target), target
        assert (out.parent / target).is_file(), target


def test_cell_index_lists_every_cell(report):
    _, md = report
    g1 = section(md, "vllm 0.22.0")
    assert "### Cell records (21)" in g1
    rows = table_after(g1, "### Cell records")
    assert len(rows) == 21
    assert [r["Notes"] for r in rows if r["Status"] == "skipped"] == ["fixture: scenario needs vision"]
    failed = [r for r in rows if r["Status"] == "**failed**"]
    assert {(r["Engine"], r["Scenario"], r["MTP"], r["Repeat"]) for r in failed} == {
        ("sglang", "chat", "on", "1"), ("vllm", "summarization", "off", "2")}
    assert any("server-start: server exited with code 1 \\| see log" in r["Notes"] for r in failed)


# --------------------------------------------------------------------------------------------- roofline, kernels, evals


def test_roofline_bound_and_achieved_fraction(report):
    _, md = report
    g1 = section(md, "vllm 0.22.0")
    assert "**800,010,000**" in g1
    assert "= **0.478 ms per token**" in g1 and "3.35 TB/s" in g1 and "datasheet" in g1
    rows = {(r["Scenario"], r["MTP"], r["Engine"]): r for r in table_after(g1, "| Scenario | MTP | Engine | n |")}
    r = rows[("chat", "off", "sglang-patched")]
    assert (r["median TPOT (ms, mean of repeats)"], r["bound (ms/token, batch 1)"]) == ("11.00", "0.478")
    assert r["achieved = bound / TPOT"] == f"{100 * 1.60002e9 / 3.35e12 * 1e3 / 11.0:.1f}%"  # 4.3%
    spec = rows[("chat", "on", "sglang-patched")]
    assert spec["accept length"] == "3.15"
    assert spec["bound / accept length (ms)"] == f"{1.60002e9 / 3.35e12 * 1e3 / 3.15:.3f}"
    h200 = section(md, "H200")
    assert "4.8 TB/s" in h200 and f"**{1.60002e9 / 4.8e12 * 1e3:.3f} ms per token**" in h200
    assert "batch 1" in g1 and "concurrent" in g1


def test_roofline_without_a_model_definition_says_why(tmp_path):
    rep = build([str(FIXTURES / "fx-02-h200-real")], FIXTURES, tmp_path / "C.md", with_plots=False,
                model_loader=lambda name: (None, f"no model definition for {name!r}"))
    assert "Not computed: no model definition for 'E2B'." in rep.markdown


def test_kernel_benches_use_their_columns(report):
    _, md = report
    g1 = section(md, "vllm 0.22.0")
    rows = table_after(g1, "#### gemma4-fused-routing")
    assert list(rows[0]) == ["tokens", "torch_us", "fused_us", "speedup"]
    assert rows[1] == {"tokens": "256", "torch_us": "80.500", "fused_us": "20.250", "speedup": "3.975"}
    assert "patch: `0001-gemma4-fused-moe-routing.patch`" in g1
    assert "**failed** (other): triton compile error (fixture)" in g1


def test_mmlu_scores_paired_delta_and_gate(report):
    _, md = report
    g1 = section(md, "vllm 0.22.0")
    scores = {r["Engine"]: r for r in table_after(g1, "### MMLU")}
    assert scores["vllm"]["score [Wilson 95% CI]"] == "0.750 [0.598, 0.858]"
    assert scores["sglang-patched"]["correct"] == "31"
    pair = table_after(g1, "Paired comparison")[0]
    assert pair["Candidate vs reference"] == "sglang-patched vs vllm"
    assert (pair["n paired"], pair["b (ref only right)"], pair["c (cand only right)"]) == ("40", "0", "1")
    assert pair["Δ (cand − ref)"] == "+2.5 pp"
    pytest.importorskip("harness.evals.gate")
    assert pair["Gate"].startswith("**PASS** (non-inferiority")


def test_eval_records_referenced_from_the_manifest(tmp_path):
    import json

    run = tmp_path / "runs" / "fx-02-h200-real"
    shutil.copytree(FIXTURES / "fx-02-h200-real", run)
    shutil.copytree(FIXTURES / RUN1 / "evals" / "mmlu-vllm", run / "quality" / "mmlu-vllm")
    man = json.loads((run / "manifest.json").read_text())
    man["extra"] = {"evals": [{"kind": "mmlu", "engine": "vllm", "path": "quality/mmlu-vllm"}]}
    (run / "manifest.json").write_text(json.dumps(man))
    rep = build(None, tmp_path / "runs", tmp_path / "C.md", with_plots=False, model_loader=fixture_loader)
    rows = table_after(section(rep.markdown, "H200"), "### MMLU")
    assert [(r["Engine"], r["correct"]) for r in rows] == [("vllm", "30")]
    assert "(runs/fx-02-h200-real/quality/mmlu-vllm/summary.json)" in rows[0]["Record"]


def test_parity_table(report):
    _, md = report
    row = table_after(section(md, "vllm 0.22.0"), "### Greedy parity")[0]
    assert (row["Engines"], row["matches"], row["match rate"]) == ("sglang-patched vs vllm", "3/4", "0.750")
    assert row["first divergences"] == "prompt p2 @ logprobs token 97"
    assert row["Divergence margins"] == "not recorded"  # the fixture predates divergence_margins


def test_standalone_records_grouped_by_weights(report):
    _, md = report
    s = section(md, "Quality records outside benchmark runs")
    unknown = s[s.index("### E2B · weights not recorded"):]
    rows = table_after(unknown, "#### MMLU")
    assert [(r["Engine"], r["n"], r["correct"]) for r in rows] == [("vllm", "10", "5")]
    dummy = s[s.index("### E2B · dummy weights"):s.index("### E2B · weights not recorded")]
    assert "#### Greedy parity — dummy weights: a numerics check at best, never quality" in dummy and "MMLU" not in dummy
    assert "Nothing here is about answer quality" in dummy and "**Signal** column" in dummy
    row = table_after(dummy, "#### Greedy parity")[0]
    assert (row["Engines"], row["matches"]) == ("sglang vs vllm (**dummy weights**)", "0/2")
    assert row["first divergences"] == "prompt q0 @ char 0; prompt q1 @ error"
    assert row["Signal"] != "not recorded"  # computed from the fixture's per-prompt answers


def test_parity_from_two_runs_answers_is_shown_in_their_group(tmp_path):
    """A parity record computed from two runs' stored answers (`harness parity --from-generations`, or `compare
    --gpus` across slots) whose runs are in one group (one engine per GPU, one run each) is shown in that group with
    both runs, and so is the reference check of it; one naming runs of different groups stays stand-alone."""
    import json

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    src = json.loads((FIXTURES / "parity" / "parity-20260102T010000Z-sglang-vs-vllm.json").read_text())
    for name, b_run in (("same-group", "fx-05-h100-real-more"), ("two-groups", "fx-02-h200-real")):
        rec = json.loads(json.dumps(src))
        rec["a"] = {"engine": "sglang", "run_id": "fx-01-h100-real", "weights": "real", "dummy_weights": False}
        rec["b"] = {"engine": "vllm", "run_id": b_run, "weights": "real", "dummy_weights": False}
        rec["computed_by"] = "harness parity --from-generations"
        (runs / "parity" / f"parity-{name}.json").write_text(json.dumps(rec))
    slots = json.loads(json.dumps(src))  # `harness compare --gpus 0,1` writes the runs as {engine: run id}
    slots["a"], slots["b"] = {"engine": "sglang-patched"}, {"engine": "vllm"}
    slots["run_ids"] = {"sglang-patched": "fx-05-h100-real-more", "vllm": "fx-01-h100-real"}
    (runs / "parity" / "parity-slots.json").write_text(json.dumps(slots))
    # a reference check of the same-group record, computed on a GPU host (its path there; the copy is beside it)
    ref = {"kind": "parity-reference", "engines": ["sglang", "vllm"], "model": "E2B",
           "parity_record": "/tmp/runs/parity/parity-same-group.json",
           "summary": {"checked": 2, "divergences": 2, "prefers_a": 1, "prefers_b": 1, "ties": 0, "ref_top_is_a": 1,
                       "ref_top_is_b": 0, "ref_top_is_neither": 1, "median_abs_delta": 0.5, "max_abs_delta": 0.9}}
    (runs / "parity" / "parity-reference-same-group.json").write_text(json.dumps(ref))
    md = build(None, runs, tmp_path / "C.md", with_plots=False, model_loader=fixture_loader).markdown
    group = section(md, "vllm 0.22.0")
    rows = table_after(group, "### Greedy parity")
    cross = [r for r in rows if "same-group" in r["Record"] or "slots" in r["Record"]]
    assert [(r["Engines"], r["Run"], r["matches"]) for r in cross] == [
        ("sglang vs vllm", "fx-01-h100-real + fx-05-h100-real-more", "0/2"),
        ("sglang-patched vs vllm", "fx-05-h100-real-more + fx-01-h100-real", "0/2")]
    checks = table_after(group, "### Reference check of the first divergences")
    assert [r["Engines"] for r in checks] == ["sglang vs vllm"] and "parity-same-group.json" in checks[0]["Parity record"]
    outside = section(md, "Quality records outside benchmark runs")
    assert "parity-two-groups.json" in outside
    assert not any(n in outside for n in ("parity-same-group.json", "parity-slots.json", "parity-reference-same"))
    assert "parity-two-groups.json" not in group


# --------------------------------------------------------------------------------------------- determinism, plots, CLI


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, out = 8, []
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        assert zlib.crc32(data[i + 4:i + 8 + n]) == int.from_bytes(data[i + 8 + n:i + 12 + n], "big")
        out.append(kind)
        i += 12 + n
    return out


def test_two_renders_are_byte_identical(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    reps = []
    for name in ("a", "b"):
        out = tmp_path / name / "COMPARISON.md"
        write_report(build(None, runs, out, model_loader=fixture_loader))
        reps.append(out)
    a, b = reps
    assert a.read_bytes() == b.read_bytes()
    pa, pb = sorted((a.parent / "COMPARISON_plots").iterdir()), sorted((b.parent / "COMPARISON_plots").iterdir())
    assert [p.name for p in pa] == [p.name for p in pb] and len(pa) >= 5
    for x, y in zip(pa, pb):
        assert x.read_bytes() == y.read_bytes(), x.name
        chunks = _png_chunks(x.read_bytes())
        assert b"tIME" not in chunks and b"tEXt" not in chunks and b"iTXt" not in chunks


def test_plots_drawn_in_worker_processes_equal_plots_drawn_here(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_REPORT_JOBS", "1")
    serial = build(None, FIXTURES, tmp_path / "s" / "C.md", model_loader=fixture_loader)
    monkeypatch.setenv("HARNESS_REPORT_JOBS", "2")
    parallel = build(None, FIXTURES, tmp_path / "p" / "C.md", model_loader=fixture_loader)
    assert serial.plots.keys() == parallel.plots.keys() and len(serial.plots) >= 5
    assert all(serial.plots[k] == parallel.plots[k] for k in serial.plots)


def test_rerender_in_place_is_identical_and_drops_stale_plots(tmp_path):
    out = tmp_path / "COMPARISON.md"
    rep1 = render(out)
    first = {p.name: p.read_bytes() for p in (tmp_path / "COMPARISON_plots").iterdir()}
    (tmp_path / "COMPARISON_plots" / "old.png").write_bytes(b"stale")
    rep2 = render(out)
    assert rep1.markdown == rep2.markdown == out.read_text()
    assert {p.name: p.read_bytes() for p in (tmp_path / "COMPARISON_plots").iterdir()} == first
    assert any(n.endswith("-latency-distributions.png") for n in first)  # per-request samples exist in fx-01
    for name in first:
        assert f"](COMPARISON_plots/{name})" in rep1.markdown


def test_selected_runs_only(tmp_path):
    rep = build(["fx-02-h200-real", str(FIXTURES / "fx-04-h100-dummy")], FIXTURES, tmp_path / "C.md",
                with_plots=False, model_loader=fixture_loader)
    titles = [t for t in sections(rep.markdown) if re.match(r"\d+\. ", t)]
    assert titles == ["1. E2B · 1× NVIDIA H200 · real weights", "2. E2B · 1× NVIDIA H100 80GB HBM3 · dummy weights"]
    assert "Quality records outside" not in rep.markdown and rep.plots == {}


def test_cli_report_writes_markdown_and_plots(tmp_path):
    from harness.cli.app import app

    out = tmp_path / "R.md"
    res = CliRunner().invoke(app, ["report", "fx-02-h200-real", "--runs-dir", str(FIXTURES), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "## 1. E2B · 1× NVIDIA H200 · real weights" in out.read_text()
    assert sorted(p.name for p in (tmp_path / "R_plots").iterdir()) == ["g01-e2b-nvidia-h200-x1-real-throughput-latency.png"]


def test_cli_unknown_run_is_a_harness_error(tmp_path):
    from harness.cli.app import app

    res = CliRunner().invoke(app, ["report", "no-such-run", "--runs-dir", str(FIXTURES), "--out", str(tmp_path / "x.md")])
    assert isinstance(res.exception, HarnessError)
    assert "no-such-run" in str(res.exception) and not (tmp_path / "x.md").exists()


def test_invalid_record_names_file_and_field(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "fx-02-h200-real", runs / "fx-02-h200-real")
    cell = runs / "fx-02-h200-real" / "cells" / "vllm__chat__mtp-off__r1.json"
    cell.write_text(cell.read_text().replace('"status": "ok"', '"status": "weird"'))
    with pytest.raises(HarnessError, match=r"vllm__chat__mtp-off__r1\.json: invalid record: field 'status'"):
        build(None, runs, tmp_path / "C.md", with_plots=False, model_loader=fixture_loader)


def test_server_start_up_table(report, tmp_path):
    from types import SimpleNamespace as NS

    from analysis.tables import startup_table

    _, md = report
    rows = table_after(section(md, "vllm 0.22.0"), "### Server start-up")
    # the fixtures keep no start-up times: only the start that failed has a row
    assert [(r["Engine"], r["MTP"]) for r in rows] == [("sglang", "on")]
    assert rows[0]["Spawn → healthy"].startswith("not healthy: server-start: ")

    def cell(cid, engine, mtp, t, start=None, stage=None, msg=""):
        return NS(cell_id=cid, engine=engine, mtp=mtp, started_at=t, status="failed" if stage else "ok",
                  timings=NS(server_start_s=start), failure=NS(stage=stage, message=msg) if stage else None)

    run = NS(run_id="r1", cells=[
        (cell("vllm__chat__r1", "vllm", False, "10:00", 271.44), "a"),
        (cell("vllm__summ__r1", "vllm", False, "10:05"), "b"),
        (cell("vllm__chat__r2", "vllm", False, "10:20", 180.0), "c"),  # an interleaved restart
        (cell("sglang__chat__r1", "sglang", False, "10:10", stage="interrupted",
              msg="interrupted (Ctrl-C or SIGTERM) while the sglang__mtp-off server was starting, 347 s after it was spawned"), "d"),
        (cell("sglang__chat__on", "sglang", True, "10:30", stage="load", msg="load generator exited with 1"), "e"),
    ])
    df = startup_table([run], lambda p: p)
    assert df.values.tolist() == [
        ["r1", "sglang", "off", "not healthy: interrupted: interrupted (Ctrl-C or SIGTERM) while the sglang__mtp-off "
         "server was starting, 347 s after it was spawned", "[sglang__chat__r1](d)"],
        ["r1", "vllm", "off", "271.4 s", "[vllm__chat__r1](a)"],
        ["r1", "vllm", "off", "180.0 s", "[vllm__chat__r2](c)"],
    ]  # a failure after the start with no time kept (older records) gets no row
