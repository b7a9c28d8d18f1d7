"""Benchmark cells: start one server per (engine, MTP mode), run its scenarios, record every cell.

A cell is (engine, scenario, MTP mode, repeat). Per cell: warm up with the scenario's own shapes (so lazily
compiled kernels are out of the measured window; a repeat skips it when an earlier cell of the same scenario
already ran its measured load ok on this server, which walked the same shapes), reset caches and spec counters, scrape server metrics, run
the measured load with ``vllm bench serve``, scrape again, and write the cell record. A failure (server crash,
OOM, timeout, client error) is recorded as a failed cell with the stage and the server log tail; partial client
results are kept in it. Ctrl-C records the cell in flight as interrupted and stops the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from harness import machine, server_metrics
from harness.definitions import Definitions, ModelDef, Scenario
from harness.engines import LaunchPlan, build_launch, resolve_interpreter
from harness.loadgen import bench_command, parse_result, slim_raw
from harness.results import CellResult, CellTimings, Failure, ProfileRecord, ServerObservations, cell_id
from harness.runs import RunDir, utcnow
from harness.server import ManagedServer, ServerDied, ServerStartError, deferred_signals, group_pids


@dataclass
class CellPlan:
    engine: str
    scenario: Scenario
    mtp: bool
    repeat: int

    @property
    def cell_id(self) -> str:
        return cell_id(self.engine, self.scenario.name, self.mtp, self.repeat)


@dataclass
class BenchOptions:
    model_path: Path
    dummy: bool  # the engines load the model with their dummy_args (--load-format dummy)
    weights: str = ""  # "real" | "dummy" | "random-init" (harness.synth.weights_kind); "" = derived from dummy
    assistant_path: Path | None = None
    tp: int = 1
    host: str = "127.0.0.1"
    server_args: list[str] = field(default_factory=list)
    patched_tree: Path | None = None
    num_prompts: int | None = None  # reduce every scenario's prompt count (smoke runs)
    warmup: bool = True
    startup_timeout_s: float | None = None
    stack_hash: str | None = None
    # quality checks after a session's scenarios (only with real weights; see run_quality)
    mmlu: bool = False
    mmlu_source: str = "hf"
    mmlu_questions: int = 500
    parity: bool = False
    parity_on_dummy: bool = False  # parity generations under dummy weights, asked for explicitly
    parity_concurrency: int = 1  # parity prompts in flight at a time (1: no prompt's batch depends on the others')
    # profiled passes after a session's cells (harness.profiles)
    profile: bool = False
    profile_output_len: int = 32
    profile_stop_timeout_s: float = 600  # the engine writes its traces before /stop_profile answers

    @property
    def weights_label(self) -> str:
        return self.weights or ("dummy" if self.dummy else "real")


Reporter = Callable[[str], None]


def server_session_name(engine: str, mtp: bool) -> str:
    return f"{engine}__{mode_name(mtp)}"


def launch_plan(defs: Definitions, engine: str, model: ModelDef, opts: BenchOptions, mtp: bool, scenarios: list[Scenario],
                runs_path: Path | str | None = None) -> LaunchPlan:
    """The server's command line; with --profile its profiler writes under ``<runs_path>/profiles/<session>``."""
    profile_dir = None
    if opts.profile:
        profile_dir = Path(runs_path if runs_path is not None else "runs/<run-id>") / "profiles" / server_session_name(engine, mtp)
    return build_launch(
        defs, engine, model, opts.model_path,
        dummy=opts.dummy, mtp=mtp, assistant_path=opts.assistant_path,
        text_only=not any(s.dataset == "random-mm" for s in scenarios),
        host=opts.host, tp=opts.tp, extra_args=opts.server_args, patched_tree=opts.patched_tree,
        profile_dir=profile_dir,
    )


def loadgen_interpreter(defs: Definitions) -> tuple[str, dict[str, str]]:
    """The load generator's python and the variables its process needs (PYTHONPATH of a --target environment)."""
    lg = defs.loadgen
    interp = resolve_interpreter(lg.env, lg.python)
    return interp.python, ({"PYTHONPATH": os.pathsep.join(interp.pythonpath)} if interp.pythonpath else {})


def client_commands(defs: Definitions, plan: LaunchPlan, cell: CellPlan, opts: BenchOptions, rd_path: Path, run_id: str) -> tuple[list[str] | None, list[str], dict[str, str]]:
    lg = defs.loadgen
    python, env = loadgen_interpreter(defs)
    sc = cell.scenario
    n = opts.num_prompts or sc.num_prompts
    common = dict(
        python=python, base_url=plan.base_url, served_model_name=plan.served_model_name,
        tokenizer=str(opts.model_path), result_dir=rd_path / "raw",
    )
    meta = {
        "harness_run": run_id, "engine": cell.engine, "scenario": sc.name, "mtp": "on" if cell.mtp else "off",
        "repeat": str(cell.repeat), "weights": opts.weights_label,
        "patch_stack": opts.stack_hash or "none",
    }
    warm = None
    if opts.warmup and sc.effective_warmup_prompts > 0:
        warm = bench_command(lg, sc, result_filename="unused.json", metadata={}, save=False,
                             num_prompts=min(sc.effective_warmup_prompts, n), seed=sc.seed + 1000, **common)
    measured = bench_command(lg, sc, result_filename=f"{cell.cell_id}.client.json", metadata=meta, num_prompts=n, **common)
    return warm, measured, env


def _run_client(argv: list[str], env_add: dict[str, str], log_path: Path, server: ManagedServer | None, timeout_s: float,
                tick: Callable[[float], None] | None = None) -> tuple[int | None, str]:
    """Run the load generator in its own process group; stop it if the server dies or the timeout passes."""
    env = dict(os.environ)
    env.update(env_add)
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"# harness: {' '.join(argv)}\n".encode())
        log.flush()
        proc = None
        try:
            with deferred_signals():  # a Ctrl-C inside Popen is raised once proc is bound, so the client is stopped
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                        start_new_session=True)
            t0 = time.monotonic()
            deadline = t0 + timeout_s
            server_dead_since: float | None = None
            while True:
                rc = proc.poll()
                if rc is not None:
                    return rc, "exited"
                now = time.monotonic()
                if tick:
                    tick(now - t0)
                if server is not None and server.returncode() is not None:
                    # let the client notice the dead server and write what it has, then stop it
                    server_dead_since = server_dead_since or now
                    if now - server_dead_since > 60:
                        _stop_group(proc)
                        return proc.poll(), "server-died"
                if now > deadline:
                    _stop_group(proc)
                    return proc.poll(), "timeout"
                time.sleep(0.2)
        except BaseException:
            if proc is not None:
                _stop_group(proc)
            raise


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None and not group_pids(proc.pid):
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def run_session(
    rd: RunDir,
    defs: Definitions,
    engine: str,
    model: ModelDef,
    cells: list[CellPlan],
    opts: BenchOptions,
    report: Reporter = lambda s: None,
    status: Reporter | None = None,
) -> list[CellResult]:
    """One server for all ``cells`` (same engine and MTP mode). ``report`` gets lines worth keeping; ``status``
    (optional) gets a transient one-line state about once a second (server start-up, warmup, load)."""
    assert cells and all(c.engine == engine and c.mtp == cells[0].mtp for c in cells)
    mtp = cells[0].mtp
    plan = launch_plan(defs, engine, model, opts, mtp, [c.scenario for c in cells], rd.path.resolve())
    eng = plan.engine
    session_name = server_session_name(engine, mtp)
    server = ManagedServer(
        plan.argv, env=plan.full_env(), log_path=rd.log_path(session_name), base_url=plan.base_url,
        health_path=eng.health_path, startup_timeout_s=opts.startup_timeout_s or eng.startup_timeout_s,
        stop_timeout_s=eng.stop_timeout_s, name=session_name,
    )
    results: list[CellResult] = []
    server_cmd = [f"{k}={v}" for k, v in sorted(plan.env.items())] + plan.argv

    def failed(cell: CellPlan, stage: str, message: str, log_tail: str = "", rc: int | None = None, **extra) -> CellResult:
        res = CellResult(
            run_id=rd.manifest.run_id, cell_id=cell.cell_id, engine=engine, model=model.name,
            scenario=cell.scenario.name, mtp=mtp, repeat=cell.repeat, status="failed",
            failure=Failure(stage=stage, message=message, log_tail=log_tail, returncode=rc),
            server_command=server_cmd, started_at=extra.pop("started_at", utcnow()), finished_at=utcnow(), **extra,
        )
        rd.write_cell(res)
        results.append(res)
        report(f"[red]failed[/] {cell.cell_id}: {message}")
        return res

    if opts.profile:
        (rd.path / "profiles" / session_name).mkdir(parents=True, exist_ok=True)
    report(f"starting {session_name}: {' '.join(plan.argv)}")
    t_spawn = time.monotonic()
    try:
        server.start()
        start_s = server.wait_healthy(
            (lambda t: status(f"{session_name}: waiting for {eng.health_path} ({t:.0f} s)")) if status else None)
    except ServerStartError as exc:
        server.stop()
        for c in cells:
            failed(c, "server-start", str(exc), exc.log_tail, exc.returncode)
        return results
    except KeyboardInterrupt:
        # every cell of this server is kept, with what the server had logged by then (how far its start had got)
        waited = time.monotonic() - t_spawn
        tail = server.log_tail()
        for c in cells:
            failed(c, "interrupted", f"interrupted (Ctrl-C or SIGTERM) while the {session_name} server was starting, "
                   f"{waited:.0f} s after it was spawned; no request was sent", tail)
        mark_interrupted(rd)
        server.stop()
        raise
    except BaseException:
        server.stop()
        raise
    report(f"{session_name} healthy after {start_s:.1f} s")
    launch_text = server.read_log(0)
    kv, lines = server_metrics.scan_log(eng, launch_text)

    client = httpx.Client()
    prev_end = time.monotonic()
    walked: dict[str, str] = {}  # scenario -> the cell of this server whose measured load ran ok with its shapes
    try:
        for i, cell in enumerate(cells):
            started = utcnow()
            t0 = time.monotonic()
            timings = CellTimings(server_start_s=start_s if i == 0 else None)
            warm_cmd, cmd, cenv = client_commands(defs, plan, cell, opts, rd.path, rd.manifest.run_id)
            if warm_cmd and cell.scenario.name in walked:
                warm_cmd = None
                timings.warmup_skipped = f"{walked[cell.scenario.name]} ran these shapes on this server"
            client_log = rd.path / "logs" / f"{cell.cell_id}.client.log"
            try:
                server.ensure_alive("warmup")
                warmup_s = 0.0
                if warm_cmd:
                    tw = time.monotonic()
                    rc, why = _run_client(warm_cmd, cenv, client_log, server, defs.loadgen.timeout_s,
                                          (lambda t: status(f"{cell.cell_id}: warmup ({t:.0f} s)")) if status else None)
                    warmup_s = time.monotonic() - tw
                    server.ensure_alive("warmup")
                    if rc != 0:
                        failed(cell, "warmup", f"warmup client exited with {rc} ({why}); see {client_log.name}",
                               _tail_file(client_log), rc, client_command=cmd, started_at=started, timings=timings)
                        continue
                timings.warmup_s = warmup_s
                notes = server_metrics.flush(eng, plan.base_url, client)
                try:
                    before = server_metrics.snapshot(eng, plan.base_url, client)
                except httpx.HTTPError:
                    before = {}
                host_gpus = machine.host_gpu_use()  # what else the host's GPUs carry as the load starts
                log_start = server.log_size()
                t_load = time.monotonic()
                timings.healthy_to_load_s = round(t_load - prev_end - warmup_s, 3)
                rc, why = _run_client(cmd, cenv, client_log, server, defs.loadgen.timeout_s,
                                      (lambda t: status(f"{cell.cell_id}: measured load ({t:.0f} s)")) if status else None)
                t_load_end = time.monotonic()
                timings.load_s = round(t_load_end - t_load, 3)
                window = server.read_log(log_start)
                raw_path = rd.path / "raw" / f"{cell.cell_id}.client.json"
                data = json.loads(raw_path.read_text()) if raw_path.is_file() else None
                if data is not None:
                    raw_path.write_text(json.dumps(slim_raw(data), indent=1, sort_keys=True))
                metrics = spec = None
                if data is not None:
                    try:
                        metrics, spec = parse_result(data)
                    except ValueError:
                        metrics = None
                observations = ServerObservations(kv_pool=kv, log_lines=lines,
                                                  warnings_in_window=server_metrics.window_warnings(eng, window) + notes)
                if server.returncode() is not None:
                    rcs = server.returncode()
                    failed(cell, "load", f"server died during the measured load (exit code {rcs})", server.log_tail(), rcs,
                           metrics=metrics, client_command=cmd, started_at=started, server=observations, timings=timings,
                           raw_result=f"raw/{raw_path.name}" if data is not None else None, host_gpus=host_gpus)
                    raise ServerDied("server died", stage="load")
                if rc != 0 or metrics is None:
                    failed(cell, "load", f"load generator exited with {rc} ({why}); see logs/{client_log.name}",
                           _tail_file(client_log), rc, metrics=metrics, client_command=cmd, started_at=started,
                           server=observations, timings=timings, host_gpus=host_gpus,
                           raw_result=f"raw/{raw_path.name}" if data is not None else None)
                    prev_end = time.monotonic()
                    continue
                try:
                    after = server_metrics.snapshot(eng, plan.base_url, client)
                    sd = server_metrics.spec_decode(eng, before, after) or spec
                except httpx.HTTPError:
                    sd = spec
                timings.harness_overhead_s = round(time.monotonic() - t0 - warmup_s - timings.load_s, 3)
                res = CellResult(
                    run_id=rd.manifest.run_id, cell_id=cell.cell_id, engine=engine, model=model.name,
                    scenario=cell.scenario.name, mtp=mtp, repeat=cell.repeat, status="ok", metrics=metrics,
                    spec_decode=sd if mtp else None, server=observations, timings=timings, server_command=server_cmd,
                    client_command=cmd, raw_result=f"raw/{raw_path.name}", host_gpus=host_gpus, started_at=started,
                    finished_at=utcnow(),
                )
                if metrics.failed:
                    res.status = "failed"
                    res.failure = Failure(stage="load", message=f"{metrics.failed} of {metrics.completed + metrics.failed} requests failed",
                                          log_tail=_tail_file(client_log))
                rd.write_cell(res)
                results.append(res)
                if res.status == "ok":
                    walked.setdefault(cell.scenario.name, cell.cell_id)
                report(f"[green]ok[/] {cell.cell_id}: {metrics.output_throughput:.1f} output tok/s, "
                       f"median TPOT {metrics.tpot_ms.median} ms")
                prev_end = time.monotonic()
            except ServerDied as exc:
                done = {r.cell_id for r in results}
                if cell.cell_id not in done:
                    failed(cell, exc.stage if exc.stage in ("warmup", "load") else "other", str(exc),
                           exc.log_tail or server.log_tail(), exc.returncode, client_command=cmd, started_at=started,
                           timings=timings)
                for rest in cells[i + 1:]:
                    failed(rest, "server-start", f"not run: the {session_name} server died during {cell.cell_id}",
                           server.log_tail())
                break
            except KeyboardInterrupt:
                failed(cell, "interrupted", "interrupted (Ctrl-C or SIGTERM) during this cell", server.log_tail(),
                       client_command=cmd, started_at=started, timings=timings)
                mark_interrupted(rd)
                raise
        # quality before profiling: a profiler that stalls the server (session 8: SGLang's stop with stacks on ran
        # past 4 minutes) must not cost the parity answers
        if server.returncode() is None and (opts.mmlu and opts.weights_label == "real"
                                            or opts.parity and (not opts.dummy or opts.parity_on_dummy)):
            run_quality(rd, engine, model, plan, session_name, opts, report)
        if opts.profile and server.returncode() is None:
            ok_scenarios = {r.scenario for r in results if r.status == "ok"}
            by_name = {c.scenario.name: c.scenario for c in cells if c.scenario.name in ok_scenarios}
            for sc in by_name.values():
                if server.returncode() is not None:
                    break
                profile_pass(rd, defs, plan, engine, sc, mtp, opts, client, report, server,
                             layer_types=model.text_config.get("layer_types"))
    finally:
        client.close()
        t_stop = time.monotonic()
        rep = server.stop()
        # cell records are immutable once written: the stop report goes into the manifest, per server session
        rd.manifest.extra.setdefault("server_stops", {})[session_name] = {
            "stop_s": round(rep.seconds, 3), "signal": rep.signal_used, "returncode": rep.returncode,
            "leftover_pids": rep.leftover_pids, "load_end_to_stopped_s": round(time.monotonic() - prev_end, 3),
            "session_s": round(time.monotonic() - t_spawn, 3),
        }
        rd.save_manifest()
        report(f"stopped {session_name} in {time.monotonic() - t_stop:.1f} s ({rep.signal_used})")
    return results


def profile_command(defs: Definitions, plan: LaunchPlan, sc: Scenario, opts: BenchOptions,
                    rd_path: Path) -> tuple[list[str], dict[str, str], Scenario]:
    """The profiled pass's load: the scenario's shapes, its prompt count capped at its concurrency, its output at
    ``opts.profile_output_len`` tokens (a trace of every decode step of 1000-token answers runs to GBs)."""
    n = min(opts.num_prompts or sc.num_prompts, sc.max_concurrency or sc.num_prompts)
    short = sc.model_copy(update={"output_len": min(sc.output_len, opts.profile_output_len), "num_prompts": n})
    python, env = loadgen_interpreter(defs)
    cmd = bench_command(defs.loadgen, short, python=python, base_url=plan.base_url, served_model_name=plan.served_model_name,
                        tokenizer=str(opts.model_path), result_dir=rd_path / "raw", result_filename="unused.json",
                        metadata={}, save=False, num_prompts=n, seed=sc.seed + 2000)
    return cmd, env, short


def profile_pass(rd: RunDir, defs: Definitions, plan: LaunchPlan, engine: str, sc: Scenario, mtp: bool,
                 opts: BenchOptions, client: httpx.Client, report: Reporter, server: ManagedServer | None = None,
                 layer_types: list[str] | None = None) -> Path:
    """One profiled pass of scenario ``sc`` on a running server (harness.profiles): start the profiler, a short load
    with the scenario's shapes, stop the profiler (it writes the traces), summarise rank 0's trace and, given the
    model's ``layer_types``, split its attention kernel's time by layer type (harness.profile_layers) and its forwards'
    GPU busy / idle time and host calls (harness.profile_steps). The record is
    written however it ends; only Ctrl-C/SIGTERM propagates."""
    from harness.atomic import write_new_json
    from harness import profiles
    from harness.profile_layers import attention_layer_split
    from harness.profile_steps import step_summary

    session = server_session_name(engine, mtp)
    pdir = rd.path / "profiles" / session
    stem = f"{engine}__{sc.name}__{mode_name(mtp)}"
    out = rd.path / "profiles" / f"{stem}.json"
    k = 2
    while out.exists():  # a resumed run profiles again: records are never overwritten
        out, k = rd.path / "profiles" / f"{stem}.{k}.json", k + 1
    cmd, env, short = profile_command(defs, plan, sc, opts, rd.path)
    n = short.num_prompts
    rec: dict = {"engine": engine, "scenario": sc.name, "mtp": mtp, "run_id": rd.manifest.run_id, "status": "failed",
                 "started_at": utcnow(), "num_prompts": n, "input_len": sc.input_len, "output_len": short.output_len,
                 "client_command": cmd, "profile_dir": str(pdir.relative_to(rd.path)), "traces": [], "summary": None,
                 "layers": None, "steps": None,
                 "note": "a profiled pass after the measured cells, the cache flushed first, with the profiler on: its timings "
                         "are not measurements"}
    before = set(profiles.trace_files(pdir)) if pdir.exists() else set()

    def call(c, what: str, timeout: float) -> str | None:
        try:
            r = client.request(c.method, plan.base_url + c.path, json=c.json_body, timeout=timeout)
            return None if r.status_code < 400 else f"{what}: HTTP {r.status_code}: {r.text[:300]}"
        except httpx.HTTPError as exc:
            return f"{what}: {type(exc).__name__}: {exc}"

    eng = plan.engine
    err: str | None = None
    stage, interrupted = "start", False
    try:
        # the pass replays prompts the measured cells sent: without a flush the prefix cache serves part of the
        # prefill and the trace shows only what missed (session 9: prefill-3k traces of 3-4 forwards, not 12)
        flush_notes = server_metrics.flush(eng, plan.base_url, client)
        rec["cache_flushed"] = not flush_notes
        if flush_notes:
            rec["note"] += "; the cache flush before it failed: " + "; ".join(flush_notes)
        err = call(eng.profile_start, f"{eng.profile_start.method} {eng.profile_start.path}", 120)
        if err is None:
            stage = "load"
            rc, why = _run_client(cmd, env, rd.log_path(f"{session}__{sc.name}__profile.client"), server, timeout_s=1800)
            stage = "stop"
            stop_err = call(eng.profile_stop, f"{eng.profile_stop.method} {eng.profile_stop.path}", opts.profile_stop_timeout_s)
            err = stop_err or (None if rc == 0 else f"profiled load exited with {rc} ({why})")
        new = [f for f in profiles.trace_files(pdir) if f not in before] if pdir.exists() else []
        if new:
            dest = pdir / sc.name
            dest.mkdir(parents=True, exist_ok=True)
            moved = []
            for f in new:
                target = dest / f.name
                f.replace(target)
                moved.append(target)
            rec["traces"] = [str(f.relative_to(rd.path)) for f in moved]
            picked = profiles.rank0_pick(moved)
            rec["summary"] = picked[1] if picked else None
            if picked and layer_types:
                rec["layers"] = attention_layer_split(picked[0], layer_types, draft=mtp)
                try:  # a step-analysis problem is said in the record; the pass itself stands
                    rec["steps"] = step_summary(picked[0], len(layer_types), draft=mtp)
                except Exception as exc:  # noqa: BLE001
                    rec["steps"] = {"steps": None, "median": None, "why": f"{type(exc).__name__}: {exc}"}
        elif err is None:
            err = f"the profiler wrote no trace under {pdir.relative_to(rd.path)}"
    except Exception as exc:  # noqa: BLE001 - a profiling problem is recorded, never ends the run
        err = err or f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:  # Ctrl-C/SIGTERM: recorded below like any failure, saying where, then the run stops
        err, interrupted = f"interrupted (Ctrl-C or SIGTERM) during the profiler's {stage}", True
    rec["status"] = "ok" if err is None and rec["summary"] else "failed"
    rec["error"] = err
    rec["finished_at"] = utcnow()
    write_new_json(out, ProfileRecord(**rec).model_dump(mode="json"))
    if interrupted:
        raise KeyboardInterrupt
    if rec["status"] == "ok":
        top = rec["summary"]["families"]
        report(f"profile {engine} / {sc.name}: {rec['summary']['gpu_time_us'] / 1e3:.1f} ms of GPU kernels; "
               + ", ".join(f"{k} {v['share']:.0%}" for k, v in list(top.items())[:4]))
    else:
        report(f"[yellow]profile {engine} / {sc.name} failed:[/] {err}")
    return out


def mark_interrupted(rd: RunDir) -> None:
    """Save the manifest as interrupted before the server is stopped: stopping can take long (vLLM with tensor
    parallelism: tens of seconds) and a supervisor may SIGKILL the harness meanwhile; the record on disk must
    already say what happened. The command's own handler saves the final state afterwards."""
    rd.manifest.status = "interrupted"
    rd.manifest.finished_at = utcnow()
    rd.save_manifest()


def _tail_file(path: Path, n: int = 40) -> str:
    from harness.server import tail_text

    return tail_text(path, n)


def run_quality(rd: RunDir, engine: str, model: ModelDef, plan: LaunchPlan, session_name: str, opts: BenchOptions,
                report: Reporter) -> None:
    """MMLU records and parity generations for this server, under ``evals/``; a failure is recorded, not raised."""
    from harness.atomic import write_new_json

    evals = rd.path / "evals"
    if opts.mmlu and opts.weights_label == "real":  # MMLU on random weights (dummy or random-init) is noise
        try:
            from harness.evals.mmlu import MMLUConfig, run_mmlu
            from harness.evals.mmlu_data import load_source

            out = run_mmlu(base_url=plan.base_url, served_model=plan.served_model_name, source=load_source(opts.mmlu_source),
                           cfg=MMLUConfig(num_questions=opts.mmlu_questions), engine=engine, model=model.name,
                           out_dir=evals / f"mmlu-{session_name}", server="managed", show_progress=False,
                           extra_meta={"run_id": rd.manifest.run_id, "mtp": plan.mtp})
            report(f"MMLU {engine}: {out.summary.get('score')}")
        except Exception as exc:  # noqa: BLE001 - recorded, the matrix goes on
            write_new_json(evals / f"mmlu-{session_name}-failed.json",
                           {"kind": "mmlu", "engine": engine, "status": "failed", "failure": f"{type(exc).__name__}: {exc}",
                            "run_id": rd.manifest.run_id, "started_at": utcnow()})
            report(f"[red]MMLU {engine} failed:[/] {exc}")
    if opts.parity:
        try:
            from harness.evals.parity import default_prompts_path, generate_all, load_prompts

            prompts, sha = load_prompts(default_prompts_path())
            gens = generate_all(plan.base_url, plan.served_model_name, prompts, concurrency=opts.parity_concurrency)
            write_new_json(evals / f"generations-{session_name}.json",
                           {"engine": engine, "mtp": plan.mtp, "prompts_sha256": sha, "dummy_weights": opts.dummy,
                            "weights": opts.weights_label, "concurrency": opts.parity_concurrency,
                            "generations": [g.as_dict() for g in gens]}, compact=True)
        except Exception as exc:  # noqa: BLE001
            report(f"[red]parity generations {engine} failed:[/] {exc}")


def parity_pairs(engines: list[str]) -> list[tuple[str, str]]:
    """Every pair of the run's engines, in the order given (A-B, A-C, B-C): a variant is compared with its base too."""
    return [(a, b) for i, a in enumerate(engines) for b in engines[i + 1:]]


def parity_from_generations(fa: Path, fb: Path, a: str, b: str, model: ModelDef | str, mtp: bool) -> dict:
    """A parity record from two stored generation files (``evals/generations-<engine>__mtp-X.json``).

    The generations must come from the prompt set this checkout has (its sha256 is in each file): a record that
    names one prompt set and compares answers to another would be wrong, so that raises a HarnessError."""
    from harness.evals.parity_sources import compare_answer_sets, read_answer_set

    sets = []
    for f in (fa, fb):
        s = read_answer_set(f, spec=f.name)
        s.meta = {"mtp": mtp, "dummy_weights": bool(s.meta.get("dummy_weights")),
                  **({"weights": s.meta["weights"]} if s.meta.get("weights") else {}),
                  "concurrency": s.meta.get("concurrency")}
        sets.append(s)
    return compare_answer_sets(sets[0], sets[1], label_a=a, label_b=b,
                               model=model if isinstance(model, str) else model.name, started_at=utcnow())


def mode_name(mtp: bool) -> str:
    return "mtp-on" if mtp else "mtp-off"


def generations_file(run_path: Path, engine: str, mtp: bool) -> Path:
    return run_path / "evals" / f"generations-{engine}__{mode_name(mtp)}.json"


def parity_record_file(run_path: Path, a: str, b: str, mtp: bool) -> Path:
    return run_path / "evals" / f"parity-{a}-vs-{b}-{mode_name(mtp)}.json"


def stored_generations(run_path: Path) -> dict[bool, list[str]]:
    """Engines with stored generations in a run, per MTP mode (file-name order; see ``generations_file``)."""
    out: dict[bool, list[str]] = {}
    evals = run_path / "evals"
    for f in sorted(evals.glob("generations-*__mtp-o*.json")) if evals.is_dir() else []:
        engine, _, mode = f.stem[len("generations-"):].rpartition("__")
        if engine and mode in ("mtp-on", "mtp-off"):
            out.setdefault(mode == "mtp-on", []).append(engine)
    return out


@dataclass
class ParityOutcome:
    """What became of one (pair, MTP mode): ``written``, ``exists`` (kept as it was), ``missing`` (a side has no
    stored generations) or ``error`` (both sides there, but they could not be compared)."""

    a: str
    b: str
    mtp: bool
    status: str
    path: Path
    note: str = ""
    record: dict | None = None


def run_parity(run_path: Path, run_id: str, model: ModelDef | str, pairs: list[tuple[str, str]], mtp: bool,
               extra: dict | None = None) -> list[ParityOutcome]:
    """Pairwise parity records of one run from its stored generations, for every pair whose two generation files
    exist; an existing record is never overwritten. Reads and writes files only (no server)."""
    from harness.atomic import write_new_json

    mode = mode_name(mtp)
    out = []
    for a, b in pairs:
        target = parity_record_file(run_path, a, b, mtp)
        fa, fb = generations_file(run_path, a, mtp), generations_file(run_path, b, mtp)
        label = f"parity {a} vs {b} ({mode})"
        if target.exists():
            out.append(ParityOutcome(a, b, mtp, "exists", target, f"{label}: {target.name} exists, kept as it is"))
            continue
        missing = [e for e, f in ((a, fa), (b, fb)) if not f.is_file()]
        if missing:
            out.append(ParityOutcome(a, b, mtp, "missing", target,
                                     f"{label}: skipped, no stored generations from {' or '.join(missing)}"))
            continue
        try:
            rec = parity_from_generations(fa, fb, a, b, model, mtp)
        except Exception as exc:  # noqa: BLE001 - one unreadable pair must not hide the others
            out.append(ParityOutcome(a, b, mtp, "error", target, f"{label}: not compared: {type(exc).__name__}: {exc}"))
            continue
        rec["run_id"] = run_id
        rec.update(extra or {})
        write_new_json(target, rec)
        sig = rec.get("signal") or {}
        note = f"{label}: {rec['matches']}/{rec['n']} exact ({target.name})"
        if sig.get("informative") is False:
            note += f"; no signal: {sig.get('why')}"
        out.append(ParityOutcome(a, b, mtp, "written", target, note, rec))
    return out


def compare_parity(rd: RunDir, model: ModelDef, pairs: list[tuple[str, str]], mtp: bool,
                   report: Reporter | None = None, extra: dict | None = None) -> list[Path]:
    """Pairwise parity records from the stored generations (``evals/parity-<a>-vs-<b>-mtp-X.json``); a pair that
    cannot be compared is reported in one line and skipped."""
    written = []
    for o in run_parity(rd.path, rd.manifest.run_id, model, pairs, mtp, extra=extra):
        if o.status == "written":
            written.append(o.path)
        if report is not None:
            report(o.note)
    return written


def cross_run_parity(runs: dict[str, Path], model: ModelDef, pairs: list[tuple[str, str]], mtp: bool,
                     out_dir: Path, report: Reporter | None = None) -> list[Path]:
    """Parity records for engine pairs whose generations live in different runs (e.g. `compare --gpus` slots):
    written as stand-alone records under ``out_dir`` with both run ids."""
    from harness.atomic import write_new_json

    mode = mode_name(mtp)
    written = []
    for a, b in pairs:
        ra, rb = runs.get(a), runs.get(b)
        if ra == rb and ra is not None:
            continue  # same run: that run's own parity step pairs them
        label = f"parity (across slots) {a} vs {b} ({mode})"
        fa = generations_file(ra, a, mtp) if ra is not None else None
        fb = generations_file(rb, b, mtp) if rb is not None else None
        missing = [e for e, f in ((a, fa), (b, fb)) if f is None or not f.is_file()]
        if missing:
            if report is not None:
                report(f"{label}: skipped, no stored generations from {' or '.join(missing)}")
            continue
        out = out_dir / f"parity-{ra.name}-{a}-vs-{b}-{mode}.json"
        if out.exists():
            continue
        try:
            rec = parity_from_generations(fa, fb, a, b, model, mtp)
        except Exception as exc:  # noqa: BLE001
            if report is not None:
                report(f"{label}: not compared: {type(exc).__name__}: {exc}")
            continue
        rec["run_ids"] = {a: ra.name, b: rb.name}
        out_dir.mkdir(parents=True, exist_ok=True)
        written.append(write_new_json(out, rec))
    return written


def pin_patched_tree(defs: Definitions, engines: list[str], patched_tree: Path | None) -> Path | None:
    """Resolve the patched tree once, at the start of a run, so a series edited mid-run cannot switch it."""
    if patched_tree is not None:
        return Path(patched_tree).resolve()
    if any(defs.engine(e).overlay == "patch-stack" for e in engines):
        from harness.engines import patched_tree_default

        return patched_tree_default()
    return None


def record_unrun(rd: RunDir, planned: list[CellPlan], model: ModelDef, message: str) -> int:
    """Write a failed record for every planned cell that has none (the run aborted before reaching it)."""
    n = 0
    for c in planned:
        if rd.cell_path(c.cell_id).exists():
            continue
        rd.write_cell(CellResult(run_id=rd.manifest.run_id, cell_id=c.cell_id, engine=c.engine, model=model.name,
                                 scenario=c.scenario.name, mtp=c.mtp, repeat=c.repeat, status="failed",
                                 failure=Failure(stage="other", message=message), started_at=utcnow(), finished_at=utcnow()))
        n += 1
    return n
