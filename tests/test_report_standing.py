"""The report's "Where sglang-patched stands" table: per group, scenario and MTP mode, the deltas against each
reference engine and what they say (behind / ahead / level), with the rule stated for n=1 and for repeats."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_report_grouping import manifest, report_of_one_run  # noqa: E402

from analysis import stats  # noqa: E402
from analysis.tables import standing  # noqa: E402
from harness.results import BenchMetrics, CellResult, EngineInfo, Latency  # noqa: E402


def _cell(rid: str, engine: str, scenario: str, repeat: int, tok_s: float, ttft: float, tpot: float,
          mtp: bool = False) -> CellResult:
    m = BenchMetrics(completed=1, duration_s=1, request_throughput=1, output_throughput=tok_s,
                     total_token_throughput=tok_s, total_input_tokens=1, total_output_tokens=1,
                     ttft_ms=Latency(median=ttft), tpot_ms=Latency(median=tpot))
    return CellResult(status="ok", metrics=m, run_id=rid, engine=engine, model="26B-A4B", scenario=scenario,
                      mtp=mtp, repeat=repeat, started_at="2026-11-27T00:00:00Z",
                      cell_id=f"{engine}__{scenario}__mtp-{'on' if mtp else 'off'}__r{repeat}")


def _between(md: str, start: str) -> str:
    """The report's text from ``start`` to the next section anchor."""
    return md.split(start, 1)[1].split('<a id="', 1)[0]


def _section(text: str) -> str:
    return _between(text, "## Where sglang-patched stands")


def test_one_repeat_calls_five_percent_and_repeats_call_only_what_the_interval_excludes(tmp_path):
    rid = "20261127T06-s"
    m = manifest(rid, "s")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    cells = [
        # summarization, n=1 each: patched 29% slower in throughput, TTFT +27%, TPOT -1% (level)
        _cell(rid, "sglang-patched", "summarization", 1, 507.0, 14540.0, 32.7),
        _cell(rid, "vllm", "summarization", 1, 715.5, 11450.0, 33.06),
        # chat, 3 repeats each: throughput clearly ahead, TTFT noisy (level), TPOT clearly behind
        *[_cell(rid, "sglang-patched", "chat", r, v, t, p)
          for r, (v, t, p) in enumerate([(110, 100, 20.0), (111, 300, 20.1), (112, 50, 20.2)], 1)],
        *[_cell(rid, "vllm", "chat", r, v, t, p)
          for r, (v, t, p) in enumerate([(100, 200, 18.0), (101, 90, 18.1), (99, 250, 18.0)], 1)],
        # MTP on under dummy weights: annotated
        _cell(rid, "sglang-patched", "chat", 1, 150, 100, 10, mtp=True),
        _cell(rid, "vllm", "chat", 1, 100, 100, 10, mtp=True),
    ]
    sec = _section(report_of_one_run(tmp_path, m, cells))
    rows = {(line.split(" | ")[2], line.split(" | ")[3]): line for line in sec.splitlines() if line.startswith("| [1]")}
    summ = rows[("summarization", "off")]
    assert "-29.1% (n=1, no interval) **behind**" in summ and "+27.0% (n=1, no interval) **behind**" in summ
    assert summ.endswith("| behind on output tok/s; behind on median TTFT |")
    chat = rows[("chat", "off")]
    assert "✱ **ahead**" in chat and chat.endswith("| ahead on output tok/s; behind on median TPOT |")
    assert "| 3 / 3 |" in chat
    assert "MTP on dummy weights: acceptance is noise" in rows[("chat", "on")]
    assert "a delta of at least 5% is called" in sec


def test_standing_rule():
    one = stats.welch_delta([95.0], [100.0])
    assert standing(one, higher=True) == "behind" and standing(one, higher=False) == "ahead"
    assert standing(stats.welch_delta([97.0], [100.0]), higher=True) == "level"
    noisy = stats.welch_delta([90.0, 110.0, 80.0], [100.0, 101.0, 99.0])
    assert standing(noisy, higher=True) == "level"
    assert standing(None, higher=True) is None


def test_dummy_moe_groups_say_that_routing_differs_between_engines(tmp_path):
    rid = "20261127T07-m"
    moe = report_of_one_run(tmp_path, manifest(rid, "s"), [_cell(rid, "sglang-patched", "chat", 1, 1, 1, 1)])
    assert "**MoE:** each engine fills its router with its own layout" in moe
    m = manifest("20261127T08-d", "s")
    m.model = "31B"
    dense = report_of_one_run(tmp_path / "dense", m, [_cell("20261127T08-d", "sglang-patched", "chat", 1, 1, 1, 1)])
    assert "DUMMY WEIGHTS" in dense and "**MoE:**" not in dense


def test_rows_of_the_checkout_s_patch_stack_are_marked_current(tmp_path):
    """The standing table says which groups measured the series of this checkout (`harness patches list`'s stack)
    and which measured an earlier one; without a readable series nothing is marked."""
    from analysis.load import load_eval_files, load_runs, resolve_inputs
    from analysis.render import build, render_report

    fixtures = Path(__file__).parent / "fixtures" / "runs"
    run_dirs, evals = resolve_inputs(None, fixtures)
    runs, standalone = load_runs(run_dirs), load_eval_files(evals)

    def standing_of(stack):
        md = render_report(runs, standalone, tmp_path / "C.md", with_plots=False,
                           model_loader=lambda name: (None, "none"), current_stack=stack).markdown
        return _section(md)

    sec = standing_of("fixturestack0001")  # the fixtures' sglang-patched stack
    rows = [ln for ln in sec.splitlines() if ln.startswith("| [")]
    assert rows and all(" | current stack · " in ln for ln in rows)
    assert "stack fixturestack (`harness patches list`): group(s) 1, 2" in sec
    older = standing_of("0" * 64)
    assert "current stack ·" not in older and "no group has measured it yet" in older
    assert "current stack" not in standing_of(None)
    built = build(None, fixtures, tmp_path / "B.md", with_plots=False, model_loader=lambda name: (None, "none"))
    assert "The patch series of this checkout is stack" in built.markdown  # build() reads this checkout's series


def test_the_headline_gives_the_patched_engine_s_delta_against_a_same_stack_control(tmp_path):
    """A control profile in the group (the stack with one patch switched off) gets its own Δ column in the headline:
    the patch's A/B. The standing table stays against the reference engines only."""
    rid = "20261127T07-c"
    m = manifest(rid, "s")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    m.engines["sglang-patched-no-moe-default"] = EngineInfo(name="sglang-patched-no-moe-default", family="sglang",
                                                            version="0.5.12", patch_stack="s")
    cells = [*[_cell(rid, "sglang-patched", "summarization", r, v, 5600.0, 23.0) for r, v in ((1, 1120.0), (2, 1125.0))],
             *[_cell(rid, "sglang-patched-no-moe-default", "summarization", r, v, 6200.0, 24.0)
               for r, v in ((1, 1050.0), (2, 1060.0))],
             *[_cell(rid, "vllm", "summarization", r, v, 4300.0, 22.5) for r, v in ((1, 1180.0), (2, 1182.0))]]
    text = report_of_one_run(tmp_path, m, cells)
    head = text.split("### Headline", 1)[1].split("###", 1)[0]
    header = next(ln for ln in head.splitlines() if ln.startswith("| Scenario"))
    assert header.endswith("| Δ sglang-patched vs vllm | Δ sglang-patched vs sglang-patched-no-moe-default |")
    tok = [c.strip() for c in next(ln for ln in head.splitlines() if "output tok/s" in ln).strip().strip("|").split("|")]
    vs_vllm = stats.welch_delta([1120.0, 1125.0], [1180.0, 1182.0])
    vs_control = stats.welch_delta([1120.0, 1125.0], [1050.0, 1060.0])
    assert tok[-2].startswith(f"{vs_vllm.rel * 100:+.1f}%") and tok[-1].startswith(f"{vs_control.rel * 100:+.1f}%")
    rows = [ln.split(" | ") for ln in _section(text).splitlines() if ln.startswith("| [1]")]
    assert [r[4] for r in rows] == ["vllm"]  # the standing table: reference engines only


def test_the_latest_stack_is_set_against_references_of_other_leases(tmp_path):
    """A lease that ran sglang-patched (stack "new") without vLLM: its cells against vLLM's of the latest other group
    with the same machine key and scenario definition, in its own section; not where the group has vLLM itself, not
    across weights, and without any reference nothing."""
    from analysis.load import load_runs
    from analysis.render import render_report
    from test_report_grouping import write_run

    old, new, other = "20261127T10-o", "20261127T11-n", "20261127T12-w"
    m_old = manifest(old, "old")
    m_old.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    write_run(tmp_path, m_old, [*[_cell(old, "sglang-patched", "chat", r, 100.0, 50.0, 20.0) for r in (1, 2)],
                                *[_cell(old, "vllm", "chat", r, v, 60.0, 21.0) for r, v in ((1, 100.0), (2, 102.0))],
                                *[_cell(old, "vllm", "summarization", r, 50.0, 600.0, 30.0) for r in (1, 2)]])
    write_run(tmp_path, manifest(new, "new"), [
        *[_cell(new, "sglang-patched", "chat", r, v, 40.0, 19.0) for r, v in ((1, 120.0), (2, 121.0))],
        *[_cell(new, "sglang-patched", "decode-burst", r, 90.0, 40.0, 19.0) for r in (1, 2)]])
    m_other = manifest(other, None)  # vLLM on other weights: never a reference for the dummy-weight group
    m_other.weights = "random-init"
    m_other.engines = {"vllm": EngineInfo(name="vllm", family="vllm", version="0.22.0")}
    write_run(tmp_path, m_other, [_cell(other, "vllm", "decode-burst", 1, 80.0, 40.0, 19.0)])
    runs = load_runs(sorted((tmp_path / "runs").iterdir()))

    def section(stack):
        md = render_report(runs, [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                           current_stack=stack).markdown
        if '<a id="cross-lease">' not in md:
            return None
        return _between(md, '<a id="cross-lease">')

    sec = section("new")
    assert "Stack new, this checkout's." in sec
    rows = [ln for ln in sec.splitlines() if ln.startswith("| [")]
    assert len(rows) == 1, rows  # chat vs vllm only: no vLLM summarization cell of stack "new", no decode-burst one
    cells = rows[0].split(" | ")
    assert cells[2:5] == ["chat", "off", "vllm"] and old in cells[5] and cells[6] == "2 / 2"
    assert cells[7].startswith("+19.3% [") and "✱ **ahead**" in cells[7]
    # an unmeasured checkout stack: the latest measured one, said so
    assert "Stack new, the latest measured; this checkout's (unmeasured) has not run yet." in section("unmeasured")
    # the old stack's group has vLLM itself: nothing to add for it when it is the stack asked about
    assert section("old") is None


def test_the_latest_measured_stack_comes_first(tmp_path):
    """Two leases with vLLM, stacks "old" and "new": the standing section first repeats the rows of the stack asked
    about (this checkout's if measured, else the latest measured), then every group; with one stack only the table."""
    from analysis.load import load_runs
    from analysis.render import render_report
    from test_report_grouping import write_run

    old, new = "20261127T10-o", "20261127T11-n"
    for rid, stack, tok in ((old, "old", 100.0), (new, "new", 120.0)):
        m = manifest(rid, stack)
        m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
        write_run(tmp_path, m, [*[_cell(rid, "sglang-patched", "chat", r, tok + r, 40.0, 19.0) for r in (1, 2)],
                                *[_cell(rid, "vllm", "chat", r, 100.0 + r, 60.0, 21.0) for r in (1, 2)]])
    runs = load_runs(sorted((tmp_path / "runs").iterdir()))

    def standing_of(stack, rs=runs):
        md = render_report(rs, [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                           current_stack=stack).markdown
        return _section(md)

    sec = standing_of("unmeasured")
    head, every = sec.split("**Every group:**")
    assert "**The latest measured stack first.** Stack new, the latest measured; this checkout's (unmeasured) has not run yet." in head
    first = [ln for ln in head.splitlines() if ln.startswith("| [")]
    assert len(first) == 1 and " | chat | off | vllm | " in first[0] and "stack new" in first[0]
    assert len([ln for ln in every.splitlines() if ln.startswith("| [")]) == 2
    assert "Stack old, this checkout's." in standing_of("old")
    assert "**Every group:**" not in standing_of("x", [r for r in runs if r.manifest.run_id == new])


def test_a_stack_with_the_same_code_counts_as_this_checkout_s(tmp_path):
    """Stack "old" ran; this checkout's series is "new", whose patches differ from old's in commit messages only
    (same_code): old's rows are this checkout's, and both sections say under which hash it was measured."""
    from analysis.load import load_runs
    from analysis.render import render_report
    from test_report_grouping import write_run

    rid = "20261127T10-o"
    m = manifest(rid, "old")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    write_run(tmp_path, m, [*[_cell(rid, "sglang-patched", "chat", r, 120.0 + r, 40.0, 19.0) for r in (1, 2)],
                            *[_cell(rid, "vllm", "chat", r, 100.0 + r, 60.0, 21.0) for r in (1, 2)]])
    runs = load_runs(sorted((tmp_path / "runs").iterdir()))

    def standing_of(same):
        md = render_report(runs, [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                           current_stack="new", same_code=same).markdown
        return _section(md)

    sec = standing_of(frozenset({"old"}))
    assert ("stack new (`harness patches list`): group(s) 1 measured it (as stack old: the same code, only patch "
            "messages differ)") in sec
    assert all(" | current stack · " in ln for ln in sec.splitlines() if ln.startswith("| ["))
    other = standing_of(frozenset({"unrelated"}))
    assert "no group has measured it yet" in other and "current stack ·" not in other


def test_the_latest_stack_is_set_against_the_code_measured_before_it(tmp_path):
    """Three leases on one machine key: stacks "older", "old" (each with vLLM) and "new" (with vLLM on chat only).
    New's sglang-patched is set against the latest earlier group with other code ("old", not "older"), per scenario,
    and the section says how vLLM moved between the same two groups where both have it; a group whose stack has the
    same code as this checkout's is not an earlier version; another weights' group never counts."""
    from analysis.load import load_runs
    from analysis.render import render_report
    from test_report_grouping import write_run

    older, old, same, new, other = "20261127T09-x", "20261127T10-o", "20261127T10-s", "20261127T11-n", "20261127T12-w"
    for rid, stack, tok in ((older, "older", 80.0), (old, "old", 100.0), (same, "samecode", 130.0)):
        m = manifest(rid, stack)
        m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
        write_run(tmp_path, m, [*[_cell(rid, "sglang-patched", s, r, tok + r, 50.0, 20.0) for r in (1, 2)
                                  for s in ("chat", "decode-burst")],
                                *[_cell(rid, "vllm", "chat", r, 100.0 + r, 60.0, 21.0) for r in (1, 2)]])
    m = manifest(new, "new")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    write_run(tmp_path, m, [*[_cell(new, "sglang-patched", "chat", r, v, 40.0, 19.0) for r, v in ((1, 120.0), (2, 121.0))],
                            *[_cell(new, "sglang-patched", "decode-burst", r, 90.0, 40.0, 19.0) for r in (1, 2)],
                            *[_cell(new, "vllm", "chat", r, v, 60.0, 21.0) for r, v in ((1, 95.0), (2, 96.0))]])
    m_other = manifest(other, "other")  # a later group on other weights: never the earlier version
    m_other.weights = "random-init"
    write_run(tmp_path, m_other, [_cell(other, "sglang-patched", "chat", 1, 500.0, 40.0, 19.0)])
    runs = load_runs(sorted((tmp_path / "runs").iterdir()))

    def section(same_code=frozenset({"samecode"}), stack="new"):
        md = render_report(runs, [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                           current_stack=stack, same_code=same_code).markdown
        if '<a id="stack-change">' not in md:
            return None
        assert "- [The latest stack against the code measured before it](#stack-change)" in md
        return _between(md, '<a id="stack-change">')

    sec = section()
    rows = {ln.split(" | ")[2]: ln.split(" | ") for ln in sec.splitlines() if ln.startswith("| [")}
    assert set(rows) == {"chat", "decode-burst"} and all(len(r) == 12 for r in rows.values())
    chat = rows["chat"]
    # against "old" (the latest with other code; "samecode" is this checkout's code, "older" is earlier)
    assert chat[4] == "stack old" and old in chat[5] and chat[6] == "2 / 2"
    assert chat[7].startswith("+18.7% [") and "✱ **ahead**" in chat[7] and chat[10] == "ahead on output tok/s; ahead on median TTFT; ahead on median TPOT"
    # vLLM moved -5.9% between the two groups: the leases' offset, said beside the stack's delta
    assert chat[11].startswith("vllm: output tok/s -5.9% [") and "median TPOT +0.0%" in chat[11]
    # no reference ran decode-burst in both: the same code's cells of another lease ("samecode": 131, 132 tok/s)
    # say how far two leases of one code differ
    assert rows["decode-burst"][11].startswith("no reference in both; sglang-patched on the same code in group ")
    assert "(another lease): output tok/s -31.6% [" in rows["decode-burst"][11]
    assert rows["decode-burst"][11].endswith("median TPOT -5.0% (no variance, no interval) |")
    # without the same-code hash, "samecode" is the latest earlier version
    assert "stack samecode" in section(frozenset())
    # the latest stack is "old" when this checkout's is "old": set against "older"
    against = {ln.split(" | ")[4] for ln in section(frozenset(), "old").splitlines() if ln.startswith("| [")}
    assert against == {"stack older"}  # not "new" or "samecode", measured after it


def test_the_latest_stack_in_figures_takes_references_from_the_same_lease_first(tmp_path):
    """This checkout's code ran twice: group "a" (stack new) with vLLM beside it on chat, a later group "b" (stack
    same, the same code) alone on chat and summarization; stack "old" ran earlier with vLLM and sglang on
    summarization. The figures take chat from "a" (a reference ran beside it there, though "b" is later),
    summarization from "b" with both references from "old" marked as another lease, and say "not measured" where a
    reference never ran the scenario."""
    from analysis.load import load_runs
    from analysis.render import render_report
    from test_report_grouping import write_run

    old, a, b = "20261127T09-o", "20261127T10-a", "20261127T11-b"
    m = manifest(old, "old")
    for e in ("vllm", "sglang"):
        m.engines[e] = EngineInfo(name=e, family=e, version="x")
    write_run(tmp_path, m, [*[_cell(old, "vllm", "summarization", r, 100.0 + r, 50.0, 20.0) for r in (1, 2)],
                            *[_cell(old, "sglang", "summarization", r, 80.0 + r, 50.0, 25.0) for r in (1, 2)]])
    m = manifest(a, "new")
    m.engines["vllm"] = EngineInfo(name="vllm", family="vllm", version="0.22.0")
    write_run(tmp_path, m, [*[_cell(a, "sglang-patched", "chat", r, 110.0 + r, 40.0, 19.0) for r in (1, 2)],
                            *[_cell(a, "vllm", "chat", r, 100.0 + r, 40.0, 20.0) for r in (1, 2)]])
    write_run(tmp_path, manifest(b, "same"), [_cell(b, "sglang-patched", s, r, 500.0 + r, 40.0, 18.0) for r in (1, 2)
                                              for s in ("chat", "summarization")])
    runs = load_runs(sorted((tmp_path / "runs").iterdir()))
    md = render_report(runs, [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                       current_stack="new", same_code=frozenset({"same"})).markdown
    assert "- [The latest stack in figures](#latest-figures)" in md
    sec = _between(md, '<a id="latest-figures">')
    rows = {(ln.split(" | ")[1], ln.split(" | ")[3]): ln.split(" | ") for ln in sec.splitlines() if ln.startswith("| 26B")}
    assert set(rows) == {(s, m) for s in ("chat", "summarization") for m in ("output tok/s (tok/s) ↑", "median TPOT (ms) ↓")}
    group = {rid: ln.split("- [")[1].split(".")[0] for rid in (old, a, b) for ln in md.splitlines()
             if ln.startswith("- [") and f"stack {({old: 'old', a: 'new', b: 'same'}[rid])}" in ln}
    chat = rows[("chat", "output tok/s (tok/s) ↑")]
    # sglang-patched 111, 112 from "a" against vLLM 101, 102 in the same group: no "other lease"
    assert chat[4] == f"111.5 ± 6.4 (n=2) · [{group[a]}](#group-{group[a]})"
    assert chat[5] == f"101.5 ± 6.4 (n=2) · [{group[a]}](#group-{group[a]})"
    assert chat[6].startswith("+9.9% [") and chat[7] == "not measured" and chat[8] == " |"
    summ = rows[("summarization", "median TPOT (ms) ↓")]
    # from "b", the references from "old": another lease
    assert summ[4] == f"18.00 ± 0.00 (n=2) · [{group[b]}](#group-{group[b]})"
    assert summ[5] == f"20.00 ± 0.00 (n=2) · [{group[old]}](#group-{group[old]}), other lease"
    assert summ[6].startswith("-10.0%")
    assert summ[7] == f"25.00 ± 0.00 (n=2) · [{group[old]}](#group-{group[old]}), other lease"
    assert summ[8].startswith("-28.0%")
    # a stack whose groups have no sglang-patched cell has no figures
    md = render_report(runs[:2], [], tmp_path / "C.md", with_plots=False, model_loader=lambda name: (None, "none"),
                       current_stack="old").markdown
    assert "## The latest stack in figures" not in md  # stack old ran no sglang-patched cell
