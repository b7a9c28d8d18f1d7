"""``harness bench`` (run benchmark cells) and ``harness serve`` (start a server and keep it up)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from harness.bench import BenchOptions, CellPlan, client_commands, launch_plan, pin_patched_tree, record_unrun, run_session
from harness.cli.app import app
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
from harness.definitions import Definitions, ModelDef
from harness.errors import HarnessError
from harness.runs import RunDir


def stack_hash_or_none() -> str | None:
    try:
        from harness.patchstack import stack_hash
    except ImportError:
        return None
    try:
        return stack_hash()
    except Exception:  # noqa: BLE001 - a missing series is reported by `harness patches check`
        return None


def plan_cells(defs: Definitions, model: ModelDef, engines: list[str], scenarios: list[str] | None, mtp_modes: list[bool],
               repeats: int | None, interleave: bool = False) -> tuple[list[CellPlan], dict[str, str]]:
    for e in engines:
        defs.engine(e)
    scs, skipped = defs.scenarios_for(model, scenarios)
    cells: list[CellPlan] = []
    max_rep = max([repeats or s.repeats for s in scs] or [1])
    if interleave:
        for r in range(1, max_rep + 1):
            for mtp in mtp_modes:
                for e in engines:
                    for s in scs:
                        if r <= (repeats or s.repeats):
                            cells.append(CellPlan(e, s, mtp, r))
    else:
        for mtp in mtp_modes:
            for e in engines:
                for r in range(1, max_rep + 1):
                    for s in scs:
                        if r <= (repeats or s.repeats):
                            cells.append(CellPlan(e, s, mtp, r))
    return cells, skipped


def sessions(cells: list[CellPlan]) -> list[list[CellPlan]]:
    """Consecutive cells with the same engine and MTP mode share one server."""
    out: list[list[CellPlan]] = []
    for c in cells:
        if out and out[-1][0].engine == c.engine and out[-1][0].mtp == c.mtp:
            out[-1].append(c)
        else:
            out.append([c])
    return out


def _launched_module(argv: list[str]) -> str | None:
    """The top-level package a ``python -m pkg.mod ...`` command line imports first (None for a script path)."""
    for i, a in enumerate(argv[:-1]):
        if a == "-m":
            return argv[i + 1].split(".")[0]
    return None


def preflight_environments(defs: Definitions, model: ModelDef, cells: list[CellPlan], opts: BenchOptions) -> None:
    """Before a run directory exists: every server's interpreter and the load generator's can find the package they
    are launched with. A host where an engine environment is missing (a failed bundle install, a fresh state dir)
    otherwise records every cell as a server-start failure, with an engine version of '?', one server at a time."""
    import os
    import subprocess

    from harness.engines import resolve_interpreter

    if opts.profile:
        cannot = sorted({c.engine for c in cells if not (defs.engine(c.engine).profile_start and defs.engine(c.engine).profile_stop)})
        if cannot:
            raise HarnessError(f"--profile: engine(s) {', '.join(cannot)} define no profile_start/profile_stop calls "
                               "(scenarios/engines/<engine>.yaml), so they cannot be profiled")
    checks: dict[tuple[str, str, str], str] = {}  # (python, PYTHONPATH, module) -> who needs it
    for group in sessions(cells):
        try:
            plan = launch_plan(defs, group[0].engine, model, opts, group[0].mtp, [c.scenario for c in group])
        except HarnessError:
            continue  # a definition error: the run records it at this session, as before
        mod = _launched_module(plan.argv)
        if mod:
            env = plan.full_env()
            checks.setdefault((plan.argv[0], env.get("PYTHONPATH", ""), mod),
                              f"engine {group[0].engine!r} (environment {plan.engine.env!r}, {plan.interpreter.source})")
    lg = defs.loadgen
    interp = resolve_interpreter(lg.env, lg.python)
    mod = _launched_module(lg.command)
    if mod:
        pp = os.pathsep.join([*interp.pythonpath, *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])])
        checks.setdefault((interp.python, pp, mod), f"the load generator (environment {lg.env!r}, {interp.source})")
    problems = []
    for (python, pythonpath, module), who in checks.items():
        env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            rc = subprocess.run([python, "-c", "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 3)",
                                 module], env=env, capture_output=True, timeout=60).returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{who}: cannot run {python}: {exc}")
            continue
        if rc != 0:
            hint = (" no environment is registered for it here: `harness env install-bundle DIR` or `harness env create "
                    "--engine NAME` makes one (`harness env list` shows what is registered)" if "default)" in who else "")
            problems.append(f"{who}: {python} cannot import {module!r}" + (f" with PYTHONPATH={pythonpath}" if pythonpath else "")
                            + (";" + hint if hint else ""))
    if problems:
        raise HarnessError("engine environment check failed before the run started (nothing was recorded):\n  "
                           + "\n  ".join(problems))


def print_dry_run(defs: Definitions, model: ModelDef, cells: list[CellPlan], opts: BenchOptions) -> None:
    for group in sessions(cells):
        plan = launch_plan(defs, group[0].engine, model, opts, group[0].mtp, [c.scenario for c in group])
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(plan.env.items()))
        console.print(f"[bold]# server {group[0].engine} mtp={'on' if group[0].mtp else 'off'}[/]", highlight=False)
        console.print((env + " " if env else "") + shlex.join(plan.argv), highlight=False, soft_wrap=True)
        seen: dict[str, str] = {}
        for c in group:
            warm, cmd, cenv = client_commands(defs, plan, c, opts, Path("runs/<run-id>"), "<run-id>")
            if warm and c.scenario.name in seen:
                console.print(f"[bold]# cell {c.cell_id}[/]", highlight=False)
                console.print(f"# warmup: skipped if {seen[c.scenario.name]} runs ok (same shapes, same server)", highlight=False)
                console.print(" ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(cenv.items())) + (" " if cenv else "")
                              + shlex.join(cmd), highlight=False, soft_wrap=True)
                continue
            seen.setdefault(c.scenario.name, c.cell_id)
            prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(cenv.items()))
            prefix = prefix + " " if prefix else ""
            console.print(f"[bold]# cell {c.cell_id}[/]", highlight=False)
            if warm:
                console.print("# warmup: " + prefix + shlex.join(warm), highlight=False, soft_wrap=True)
            console.print(prefix + shlex.join(cmd), highlight=False, soft_wrap=True)
        if opts.profile:
            from harness.bench import profile_command

            eng = plan.engine
            for name, sc in {c.scenario.name: c.scenario for c in group}.items():
                pcmd, penv, _ = profile_command(defs, plan, sc, opts, Path("runs/<run-id>"))
                pre = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(penv.items()))
                console.print(f"[bold]# profiled pass {group[0].engine} / {name}[/] (after the cells that ran ok): "
                              f"{eng.profile_start.method} {eng.profile_start.path}; "
                              + (pre + " " if pre else "") + shlex.join(pcmd)
                              + f"; {eng.profile_stop.method} {eng.profile_stop.path}", highlight=False, soft_wrap=True)


def weights_notes(weights: str) -> list[str]:
    """The run notes that say what the weights are worth."""
    if weights == "dummy":
        return ["weights: dummy (--load-format dummy on a synthetic config); accuracy and acceptance are meaningless"]
    if weights == "random-init":
        return ["weights: random-init (seeded random weights written by `harness model init-weights`; every engine "
                "loads the same checkpoint); accuracy and acceptance are meaningless, greedy parity compares numerics"]
    return []


def create_run(defs: Definitions, model: ModelDef, cells: list[CellPlan], opts: BenchOptions, engines: list[str],
               runs_dir: Optional[Path], notes: list[str]) -> RunDir:
    from harness.machine import engine_info, machine_info
    from harness.synth import config_sha256, weights_init_summary

    eng_info = {e: engine_info(e, defs.engine(e), opts.patched_tree, opts.stack_hash) for e in engines}
    scen = {c.scenario.name: c.scenario.model_dump(mode="json") for c in cells}
    machine = machine_info()
    # the host torch the engines import (the harness itself may run without torch)
    machine.torch = next((i.packages["torch"] for i in eng_info.values() if i.packages.get("torch")), None)
    return RunDir.create(
        {
            "command": sys.argv,
            "model": model.name,
            "model_path": str(opts.model_path),
            "weights": opts.weights_label,
            "model_config_sha256": config_sha256(opts.model_path),
            "weights_init": weights_init_summary(opts.model_path),
            "patch_stack_hash": next((i.patch_stack for i in eng_info.values() if i.patch_stack), opts.stack_hash),
            "machine": machine,
            "engines": eng_info,
            "scenarios": scen,
            "cells": [c.cell_id for c in cells],
            "notes": notes,
            "extra": {"loadgen": defs.loadgen.model_dump(mode="json"), "options": {
                "tp": opts.tp, "num_prompts_override": opts.num_prompts, "server_args": opts.server_args,
                "warmup": opts.warmup}},
        },
        base=runs_dir,
    )


@app.command()
def bench(
    engine: list[str] = typer.Option(..., "--engine", "-e", help="Engine profile(s): sglang, sglang-patched, vllm (repeat or comma-separate)."),
    model: str = typer.Option(..., "--model", "-m", help="Model definition: 31B, 26B-A4B, E4B, E2B."),
    scenario: Optional[list[str]] = typer.Option(None, "--scenario", "-s", help="Scenario(s); default: every scenario the model supports."),
    mtp: bool = typer.Option(False, "--mtp/--no-mtp", help="Run with MTP speculative decoding (the model's assistant as draft)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-r", min=1, help="Repeats per cell (default: the scenario's)."),
    num_prompts: Optional[int] = NumPromptsOpt,
    model_path: Optional[Path] = ModelPathOpt,
    assistant_path: Optional[Path] = AssistantPathOpt,
    tp: int = TpOpt,
    server_arg: Optional[list[str]] = ServerArgOpt,
    patched_tree: Optional[Path] = PatchedTreeOpt,
    warmup: bool = typer.Option(True, "--warmup/--no-warmup", help="Warm up with the scenario's own shapes before each measured load."),
    profile: bool = ProfileOpt,
    profile_output_len: int = ProfileOutputLenOpt,
    startup_timeout: Optional[float] = StartupTimeoutOpt,
    runs_dir: Optional[Path] = RunsDirOpt,
    note: Optional[list[str]] = NoteOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every exact server and client command line; run nothing."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Start each engine's server, warm it up, run the scenarios with `vllm bench serve`, record a run under runs/."""
    from harness.server import install_signal_handlers
    from harness.synth import resolve_model_path, weights_kind

    defs = definitions(overrides)
    mdef = defs.model(model)
    engines = split_csv(engine)
    path, dummy, a_path = resolve_model_path(mdef, model_path, assistant=mtp, assistant_path=assistant_path)
    opts = BenchOptions(model_path=path, dummy=dummy, weights=weights_kind(path), assistant_path=a_path, tp=tp,
                        server_args=list(server_arg or []),
                        patched_tree=pin_patched_tree(defs, engines, patched_tree), num_prompts=num_prompts, warmup=warmup,
                        startup_timeout_s=startup_timeout, stack_hash=stack_hash_or_none(), profile=profile,
                        profile_output_len=profile_output_len)
    cells, skipped = plan_cells(defs, mdef, engines, split_csv(scenario) or None, [mtp], repeats)
    for name, why in skipped.items():
        console.print(f"[yellow]skipped scenario {name}:[/] {why}")
    if not cells:
        raise HarnessError("nothing to run: no applicable scenario")
    if dry_run:
        print_dry_run(defs, mdef, cells, opts)
        return
    notes = [f"note: {n}" for n in note or []]
    notes += [f"skipped scenario {k}: {v}" for k, v in skipped.items()]
    notes += weights_notes(opts.weights_label)
    preflight_environments(defs, mdef, cells, opts)
    rd = create_run(defs, mdef, cells, opts, engines, runs_dir, notes)
    console.print(f"run {rd.manifest.run_id} -> {rd.path}")
    install_signal_handlers()
    status = "complete"
    try:
        with console.status("starting ...") as live_status:
            def show(msg: str, _s=live_status) -> None:
                _s.update(msg)

            for group in sessions(cells):
                res = run_session(rd, defs, group[0].engine, mdef, group, opts, report=console.print, status=show)
                if any(r.status != "ok" for r in res):
                    status = "partial"
    except KeyboardInterrupt:
        status = "interrupted"
        raise typer.Exit(130)
    except Exception as exc:
        status = "failed"
        record_unrun(rd, cells, mdef, f"not run: the run aborted: {type(exc).__name__}: {exc}")
        raise
    finally:
        from harness.runs import utcnow

        rd.manifest.status = status
        rd.manifest.finished_at = utcnow()
        rd.save_manifest()
        console.print(f"run {rd.manifest.run_id}: {status} ({rd.path})")
    if status != "complete":
        raise typer.Exit(1)


@app.command()
def serve(
    engine: str = typer.Option(..., "--engine", "-e", help="Engine profile: sglang, sglang-patched, vllm."),
    model: str = typer.Option(..., "--model", "-m", help="Model definition."),
    mtp: bool = typer.Option(False, "--mtp/--no-mtp", help="Enable MTP speculative decoding."),
    multimodal: bool = typer.Option(False, "--multimodal/--text-only", help="Allow image inputs (vLLM: no zero mm limits)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (default: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    model_path: Optional[Path] = ModelPathOpt,
    assistant_path: Optional[Path] = AssistantPathOpt,
    tp: int = TpOpt,
    server_arg: Optional[list[str]] = ServerArgOpt,
    patched_tree: Optional[Path] = PatchedTreeOpt,
    log: Optional[Path] = typer.Option(None, "--log", help="Server log file (default: state dir)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the server command line; start nothing."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Start a server the way `bench` does and keep it up until Ctrl-C (then stop its whole process group)."""
    from harness.engines import build_launch
    from harness.paths import state_dir
    from harness.server import ManagedServer, install_signal_handlers
    from harness.synth import resolve_model_path, weights_kind

    defs = definitions(overrides)
    mdef = defs.model(model)
    path, dummy, a_path = resolve_model_path(mdef, model_path, assistant=mtp, assistant_path=assistant_path)
    plan = build_launch(defs, engine, mdef, path, dummy=dummy, mtp=mtp, assistant_path=a_path, text_only=not multimodal,
                        host=host, port=port, tp=tp, extra_args=list(server_arg or []), patched_tree=patched_tree)
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(plan.env.items()))
    console.print((env + " " if env else "") + shlex.join(plan.argv), highlight=False, soft_wrap=True)
    if dry_run:
        return
    log_path = log or state_dir() / "serve" / f"{engine}-{int(time.time())}.log"
    srv = ManagedServer(plan.argv, env=plan.full_env(), log_path=log_path, base_url=plan.base_url,
                        health_path=plan.engine.health_path, startup_timeout_s=plan.engine.startup_timeout_s,
                        stop_timeout_s=plan.engine.stop_timeout_s, name=engine)
    install_signal_handlers()
    with srv:
        console.print(f"log: {log_path}; waiting for {plan.base_url}{plan.engine.health_path} ...")
        secs = srv.wait_healthy()
        console.print(f"[green]{engine} healthy after {secs:.0f} s[/] at {plan.base_url} "
                      f"(model name {plan.served_model_name!r}, weights {weights_kind(path)}). Ctrl-C stops it.")
        try:
            while True:
                srv.ensure_alive("serve")
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("stopping ...")
