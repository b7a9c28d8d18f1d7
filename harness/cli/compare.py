"""``harness compare``: the whole matrix (engines x MTP modes x scenarios x repeats) in one run directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.live import Live
from rich.table import Table

from harness.bench import BenchOptions, pin_patched_tree, record_unrun, run_session
from harness.cli.app import app
from harness.cli.bench import (create_run, plan_cells, preflight_environments, print_dry_run, sessions, stack_hash_or_none,
                               weights_notes)
from harness.cli.common import (
    AssistantPathOpt,
    ModelPathOpt,
    NumPromptsOpt,
    OverridesOpt,
    PatchedTreeOpt,
    ProfileOpt,
    ProfileOutputLenOpt,
    RunsDirOpt,
    NoteOpt,
    ServerArgOpt,
    StartupTimeoutOpt,
    TpOpt,
    console,
    definitions,
    split_csv,
)
from harness.errors import HarnessError
from harness.runs import RunDir, utcnow

DEFAULT_ENGINES = "sglang,sglang-patched,vllm"


def _mtp_modes(values: list[str]) -> list[bool]:
    out = []
    for v in values:
        if v not in ("off", "on"):
            raise HarnessError(f"--mtp takes 'off', 'on' or 'off,on' (got {v!r})")
        out.append(v == "on")
    return out


def _render_report(out: Optional[Path], runs_dir: Optional[Path]) -> None:
    """COMPARISON.md from every run under the runs directory, as `harness report` renders it."""
    from analysis.render import build, write_report
    from harness.paths import repo_root, runs_dir as default_runs_dir

    target = out if out is not None else repo_root() / "COMPARISON.md"
    write_report(build(None, runs_dir if runs_dir is not None else default_runs_dir(), target))
    console.print(f"COMPARISON.md: {target}")


def _pairwise_parity(rd: RunDir, mdef, engines: list[str], modes: list[bool], status: str) -> bool:
    """Parity records for every pair of engines whose generations are stored in the run; a pair with a missing
    side is skipped with a one-line note. Never raises (it may run while an exception propagates); returns False
    when a Ctrl-C/SIGTERM stopped it."""
    from harness.bench import compare_parity, parity_pairs

    extra = {"computed_by": "harness compare", "run_status": status}
    note = lambda msg: console.print(msg, highlight=False)  # noqa: E731
    try:
        for m in modes:
            for p in compare_parity(rd, mdef, parity_pairs(engines), m, report=note, extra=extra):
                console.print(f"parity: {p}", highlight=False)
    except KeyboardInterrupt:
        console.print(f"parity step interrupted; compute the rest with: harness parity --from-run {rd.path}")
        return False
    except Exception as exc:  # noqa: BLE001 - never hide the run's own outcome
        console.print(f"[red]parity step failed:[/] {type(exc).__name__}: {exc}; retry with: "
                      f"harness parity --from-run {rd.path}")
    return True


def _fan_out(slots: list[str], engines: list[str], resume: Optional[str], dry_run: bool, report: bool,
             out: Optional[Path], runs_dir: Optional[Path], parity=None) -> None:
    """Split the engines over the GPU slots and run one child `harness compare` per slot at the same time.
    With parity on, engine pairs that ended up in different slots are compared afterwards (records under
    <runs>/parity/, naming both runs)."""
    import shlex

    from harness.fanout import plan_children, run_children
    from harness.paths import runs_dir as default_runs_dir

    if resume:
        raise HarnessError("--resume with several GPU slots: resume each slot's run on its own (harness compare "
                           "--resume RUN --gpus SLOT ...)")
    base = runs_dir if runs_dir is not None else default_runs_dir()
    children = plan_children(sys.argv[2:] if sys.argv[1:2] == ["compare"] else sys.argv[1:], engines, slots,
                             base / ".fanout")
    for c in children:
        console.print(f"# GPUs {c.slot}: CUDA_VISIBLE_DEVICES={c.slot} " + shlex.join(c.argv), highlight=False, soft_wrap=True)
    if dry_run:
        return
    rc = run_children(children, report=lambda m: console.print(m, highlight=False))
    console.print("runs: " + " ".join(c.run_id or f"(none from GPUs {c.slot}, see {c.log})" for c in children))
    if parity is not None:  # also after an interruption: it reads stored generations only
        from harness.bench import cross_run_parity, parity_pairs

        mdef, modes = parity
        by_engine = {e: base / c.run_id for c in children if c.run_id for e in c.engines}
        try:
            for m in modes:
                for p in cross_run_parity(by_engine, mdef, parity_pairs(engines), m, base / "parity",
                                          report=lambda msg: console.print(msg, highlight=False)):
                    console.print(f"parity (across slots): {p}")
        except KeyboardInterrupt:
            console.print("parity across slots interrupted; the records not written yet are missing")
            rc = 130
    if report and rc != 130:
        _render_report(out, base)
    if rc:
        raise typer.Exit(rc)


def matrix_table(rd: RunDir, planned: list[str], now: str = "") -> Table:
    t = Table("cell", "status", "out tok/s", "TPOT med ms", title=f"run {rd.manifest.run_id}", caption=now or None)
    for cid in planned:
        c = rd.read_cell(cid)
        if c is None:
            t.add_row(cid, "pending", "", "")
        else:
            m = c.metrics
            t.add_row(cid, c.status if c.status == "ok" else f"[red]{c.status}[/]",
                      f"{m.output_throughput:.1f}" if m else "-",
                      f"{m.tpot_ms.median:.2f}" if m and m.tpot_ms.median is not None else "-")
    return t


@app.command()
def compare(
    model: str = typer.Option(..., "--model", "-m", help="Model definition: 31B, 26B-A4B, E4B, E2B."),
    engines: str = typer.Option(DEFAULT_ENGINES, "--engines", help="Comma-separated engine profiles."),
    scenarios: Optional[list[str]] = typer.Option(None, "--scenarios", "-s", help="Scenarios (comma-separated or repeated); default: every one the model supports."),
    mtp: str = typer.Option("off", "--mtp", help="MTP modes: off, on, or off,on."),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-r", min=1, help="Repeats per cell (default: each scenario's)."),
    interleave: bool = typer.Option(False, "--interleave/--no-interleave", help="Order repeats across engines (A B C A B C ...) to decorrelate from drift; restarts servers per repeat."),
    mmlu: bool = typer.Option(True, "--mmlu/--no-mmlu", help="Run MMLU per engine after its scenarios (skipped, with the reason, under dummy weights)."),
    parity: Optional[bool] = typer.Option(
        None, "--parity/--no-parity",
        help="Run the greedy parity prompts per engine and compare every pair of engines. Default: with real weights "
             "only; pass --parity to run it under dummy weights too (each engine fills its weights with the same small "
             "seeded uniform values; the answers then often degenerate into one repeated token, which the record's "
             "`signal` and the report flag as carrying no information). The pairs are compared from the stored generations "
             "also when the run is interrupted or fails, for the engines that got that far (later: `harness parity "
             "--from-run RUN`)."),
    parity_concurrency: int = typer.Option(
        1, "--parity-concurrency",
        help="Parity prompts in flight at a time per engine. 1 sends the prompts one at a time, so no prompt's batch "
             "depends on the others' timing; higher is faster, but the records then mix batch composition into the "
             "numerics (the record's `batching` and the report say so)."),
    mmlu_source: Optional[str] = typer.Option(None, "--mmlu-source", help="MMLU source for `harness mmlu` (default: Hugging Face cais/mmlu)."),
    mmlu_questions: int = typer.Option(500, "--mmlu-questions", min=1, help="MMLU questions (random.Random(0).sample)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Run id: redo only the cells of that run that are missing or failed."),
    num_prompts: Optional[int] = NumPromptsOpt,
    model_path: Optional[Path] = ModelPathOpt,
    assistant_path: Optional[Path] = AssistantPathOpt,
    tp: int = TpOpt,
    gpus: Optional[str] = typer.Option(
        None, "--gpus",
        help="GPU ids to use, e.g. 0,1,2,3. One slot: the run uses those GPUs (CUDA_VISIBLE_DEVICES). Several slots "
             "(ids / --tp): the engines are split over the slots and run at the same time, one run per slot, each "
             "noting the concurrency; the report renders them together."),
    server_arg: Optional[list[str]] = ServerArgOpt,
    patched_tree: Optional[Path] = PatchedTreeOpt,
    startup_timeout: Optional[float] = StartupTimeoutOpt,
    runs_dir: Optional[Path] = RunsDirOpt,
    note: Optional[list[str]] = NoteOpt,
    report: bool = typer.Option(True, "--report/--no-report", help="Render COMPARISON.md from the run at the end."),
    warm_jit: bool = typer.Option(
        False, "--warm-jit/--no-warm-jit",
        help="From the start of the run, build in the background the FlashInfer JIT modules the engines compile at "
             "their first start (their jit_warmup at --tp, as `harness env warm-jit`: trtllm_comm at TP>1, ~3 min of "
             "nvcc per FlashInfer version), so that later engines' servers find them built; one that needs a module "
             "still being built waits on FlashInfer's lock. The builds use CPUs while the first cells run: the run's "
             "notes say when they ran. Put an engine that needs none first (e.g. sglang)."),
    profile: bool = ProfileOpt,
    profile_output_len: int = ProfileOutputLenOpt,
    out: Optional[Path] = typer.Option(None, "--out", help="Where the report goes (default: COMPARISON.md in the repository root); it is rendered from every run under the runs directory, as `harness report` does."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every exact command line; run nothing."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Start each engine once per MTP mode, run every scenario (and MMLU/parity with real weights), record one run,
    and render COMPARISON.md. A failing cell is recorded with its log tail and the matrix goes on."""
    from harness.server import install_signal_handlers
    from harness.synth import resolve_model_path, weights_kind

    if parity_concurrency < 1:
        raise HarnessError(f"--parity-concurrency must be at least 1, got {parity_concurrency}")
    defs = definitions(overrides)
    mdef = defs.model(model)
    eng = split_csv([engines])
    modes = _mtp_modes(split_csv([mtp]))
    path, dummy, a_path = resolve_model_path(mdef, model_path, assistant=any(modes), assistant_path=assistant_path)
    explicit_parity = parity is True
    parity = (not dummy) if parity is None else parity
    weights = weights_kind(path)
    opts = BenchOptions(model_path=path, dummy=dummy, weights=weights, assistant_path=a_path, tp=tp,
                        server_args=list(server_arg or []),
                        patched_tree=pin_patched_tree(defs, eng, patched_tree), num_prompts=num_prompts,
                        startup_timeout_s=startup_timeout,
                        stack_hash=stack_hash_or_none(), mmlu=mmlu, parity=parity, parity_on_dummy=explicit_parity,
                        parity_concurrency=parity_concurrency, mmlu_source=mmlu_source or "hf",
                        mmlu_questions=mmlu_questions, profile=profile, profile_output_len=profile_output_len)
    cells, skipped = plan_cells(defs, mdef, eng, split_csv(scenarios) or None, modes, repeats, interleave)
    if not cells:
        raise HarnessError("nothing to run: no applicable scenario")
    if gpus is not None:
        from harness.fanout import gpu_slots

        slots = gpu_slots(gpus, tp)
        if len(slots) > 1:
            _fan_out(slots, eng, resume, dry_run, report, out, runs_dir,
                     parity=(mdef, modes) if parity else None)
            return
        import os

        os.environ["CUDA_VISIBLE_DEVICES"] = slots[0]
    if dry_run:
        print_dry_run(defs, mdef, cells, opts)
        if warm_jit:
            from harness.envs.jit_warm import BackgroundWarmup

            for e, gens in BackgroundWarmup([defs.engine(x) for x in eng], tp).jobs:
                console.print(f"# warm-jit in the background from the start (harness env warm-jit -e {e.name} --tp {tp}): "
                              + ", ".join(gens), highlight=False, soft_wrap=True)
        return
    notes = [f"note: {n}" for n in note or []]
    notes += [f"skipped scenario {k}: {v}" for k, v in sorted(skipped.items())]
    notes += weights_notes(weights)
    if weights == "random-init" and mmlu:
        notes.append("MMLU skipped: random-init weights give chance-level accuracy")
    if dummy:
        if mmlu:
            notes.append("MMLU skipped: dummy weights give chance-level accuracy")
        if parity:
            notes.append("parity under dummy weights (asked for with --parity): the engines load small seeded uniform "
                         "weights; where the answers vary a match says two engines compute the same thing, where they "
                         "degenerate into one repeated token (see each record's signal) it says nothing; never quality")
        else:
            notes.append("parity skipped: dummy weights (pass --parity to compare the engines' numerics anyway)")
    preflight_environments(defs, mdef, cells, opts)
    if resume:
        rd = RunDir.open(resume, runs_dir)
        if rd.manifest.model != mdef.name:
            raise HarnessError(f"run {resume} is for model {rd.manifest.model}, not {mdef.name}")
        from harness.machine import machine_info

        here = machine_info().gpu_name
        if rd.manifest.machine.gpu_name != here:
            raise HarnessError(f"run {resume} was made on {rd.manifest.machine.gpu_name}; this machine has {here}. "
                               f"Start a new run here; `harness report` shows runs side by side, never mixed.")
        todo = [c for c in cells if (rec := rd.read_cell(c.cell_id)) is None or rec.status != "ok"]
        new_ids = [c.cell_id for c in cells if c.cell_id not in rd.manifest.cells]
        rd.manifest.cells += new_ids
        rd.manifest.notes.append(f"resumed at {utcnow()}: {len(todo)} cell(s) to (re)do: {' '.join(sys.argv)}")
        rd.manifest.notes += [f"note: {n}" for n in note or []]
        rd.manifest.status = "running"
        rd.save_manifest()
    else:
        rd = create_run(defs, mdef, cells, opts, eng, runs_dir, notes)
        todo = cells
    console.print(f"run {rd.manifest.run_id} -> {rd.path}: {len(todo)} cell(s) to run")
    install_signal_handlers()
    warmup_jobs = None
    if warm_jit:
        from harness.envs.jit_warm import BackgroundWarmup

        warmup_jobs = BackgroundWarmup([defs.engine(e) for e in eng], tp).start()
    planned = [c.cell_id for c in cells]
    status = "complete"
    parity_stopped = False
    log_lines: list[str] = []
    try:
        with Live(matrix_table(rd, planned), console=console, refresh_per_second=1, transient=False) as live:
            def rep(msg: str) -> None:
                log_lines.append(msg)
                live.console.print(msg)
                live.update(matrix_table(rd, planned))

            def now(msg: str) -> None:
                live.update(matrix_table(rd, planned, msg))

            for group in sessions(todo):
                run_session(rd, defs, group[0].engine, mdef, group, opts, report=rep, status=now)
                live.update(matrix_table(rd, planned))
    except KeyboardInterrupt:
        status = "interrupted"
    except Exception as exc:
        status = "failed"
        record_unrun(rd, cells, mdef, f"not run: the run aborted: {type(exc).__name__}: {exc}")
        raise
    finally:
        if status not in ("interrupted", "failed"):
            recs = [rd.read_cell(c) for c in planned]
            status = "complete" if all(r is not None and r.status == "ok" for r in recs) else "partial"
        rd.manifest.status = status
        rd.manifest.finished_at = utcnow()
        if warmup_jobs is not None:
            warmup_jobs.stop()
            rd.manifest.extra["jit_warmup"] = warmup_jobs.results
            rd.manifest.notes += warmup_jobs.notes()
        rd.save_manifest()
        # the pairwise step runs however the run ended (complete, partial, interrupted, failed): it only reads the
        # generations stored so far, so the engines that finished are compared
        parity_stopped = bool(parity) and not _pairwise_parity(rd, mdef, eng, modes, status)
    console.print(f"run {rd.manifest.run_id}: {status}")
    if parity_stopped:
        raise typer.Exit(130)
    if report and status != "interrupted":
        _render_report(out, runs_dir)
    if status == "interrupted":
        raise typer.Exit(130)
    if status != "complete":
        raise typer.Exit(1)
