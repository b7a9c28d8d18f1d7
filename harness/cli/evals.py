"""``harness mmlu``, ``harness parity`` and ``harness gate``: quality checks and the CI gate."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.app import app
from harness.errors import HarnessError

out = Console()
err = Console(stderr=True)


def _parse_json_option(value: Optional[str], flag: str) -> Optional[dict]:
    if not value:
        return None
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{flag}: not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise HarnessError(f"{flag}: must be a JSON object")
    return obj


def _resolve_served(base_url: str, wanted: str, explicit: bool) -> str:
    """Check the server lists the model we will ask for; adopt the only served model when not explicit."""
    from harness.evals import client as chat_client

    try:
        names = chat_client.served_models(chat_client.make_client(base_url, timeout=30))
    except Exception as exc:
        raise HarnessError(f"cannot list models at {base_url}/v1/models: {type(exc).__name__}: {exc}") from None
    if wanted in names:
        return wanted
    if not explicit and len(names) == 1:
        err.print(f"[yellow]note:[/] {base_url} serves {names[0]!r}, not {wanted!r}; using {names[0]!r} "
                  "(pass --served-model-name to be explicit)")
        return names[0]
    raise HarnessError(f"{base_url} does not serve model {wanted!r} (it serves {names}); "
                       "pass --served-model-name")


def _warn_dummy(ep) -> None:
    if ep.weights == "random-init":
        err.print("[yellow]warning:[/] the server runs seeded random-init weights (`harness model init-weights`): "
                  "answers vary but are no model's, so parity compares numerics and MMLU is chance-level; such "
                  "checkpoints amplify bf16 rounding, so engines whose kernels differ rarely agree on them (read a "
                  "mismatch against `harness parity-floor --model-path DIR`)")
    elif ep.dummy_weights:
        err.print("[yellow]warning:[/] the server runs dummy (random) weights: answers are noise, so this "
                  "measures the plumbing, not the model (pass --model-path to real weights)")


def _weights_meta(ep) -> dict:
    """What a quality record says about a managed server's weights: ``dummy_weights`` (random of any kind, so the
    gate refuses it) and ``weights`` (real | dummy | random-init, so the report can tell the two random kinds
    apart)."""
    return {"dummy_weights": ep.dummy_weights, **({"weights": ep.weights} if ep.weights else {})}


# --------------------------------------------------------------------------------------------- mmlu
@app.command("mmlu")
def mmlu_cmd(
    engine: str = typer.Option(..., "--engine", help="Engine name (an engine profile when the harness starts the "
                               "server; a label recorded in the summary with --base-url)."),
    model: str = typer.Option(..., "--model", help="Model name (definitions name or HF repo)."),
    num_questions: int = typer.Option(500, "--num-questions", help="Questions drawn with random.Random(0).sample."),
    source: str = typer.Option("hf", "--source", help="'hf' (cais/mmlu all/test via datasets) or a local path: "
                               "simple-evals mmlu.csv, a parquet/jsonl/csv file in cais/mmlu columns, or a "
                               "datasets.save_to_disk directory."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="An already running OpenAI-compatible server "
                                           "(http://HOST:PORT, optionally ending in /v1). Without it the harness starts ENGINE itself."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name",
                                                    help="Model name to send (default: --model, or the only "
                                                    "model the server lists)."),
    concurrency: int = typer.Option(512, "--concurrency", help="Parallel requests (SGLang run_eval uses 512)."),
    repeat: int = typer.Option(1, "--repeat", help="Run the same questions K times against the same server "
                               "(K=2 measures the run-to-run floor the gate reports)."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="max_tokens per answer (SGLang: 2048)."),
    extra_body: Optional[str] = typer.Option(None, "--extra-body", help="JSON object merged into every request, "
                                             "e.g. '{\"chat_template_kwargs\": {\"enable_thinking\": false}}'."),
    mtp: bool = typer.Option(False, "--mtp", help="Start the engine with MTP speculative decoding (managed "
                             "server only)."),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="Weights directory for the server the "
                                              "harness starts (passed to managed_server as model_path)."),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel size of the server the harness starts "
                           "(GPUs: CUDA_VISIBLE_DEVICES)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="New directory for records.jsonl, responses.jsonl "
                                           "and summary.json (default runs/mmlu/<UTC>-<engine>-<model>)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """MMLU-N the way SGLang's run_eval scores it, with one record per question for `harness gate`."""
    from harness.evals.endpoint import endpoint
    from harness.evals.mmlu import MMLUConfig, check_out_dir, default_out_dir, run_mmlu
    from harness.evals.mmlu_data import load_source
    from harness.paths import runs_dir

    if base_url and mtp:
        raise HarnessError("--mtp applies to a server the harness starts; with --base-url the server is yours")
    if concurrency < 1:
        raise HarnessError(f"--concurrency must be at least 1, got {concurrency}")
    cfg = MMLUConfig(num_questions=num_questions, concurrency=concurrency, repeat=repeat, max_tokens=max_tokens,
                     extra_body=_parse_json_option(extra_body, "--extra-body"))
    target = out_dir or default_out_dir(runs_dir(), engine, model)
    check_out_dir(target)
    src = load_source(source)
    err.print(f"MMLU source {src.kind} {src.location} ({len(src.rows)} rows, sha256 {src.sha256[:12]})")
    if base_url and (model_path or tp != 1):
        raise HarnessError(f"{'--model-path' if model_path else '--tp'} applies to a server the harness starts; "
                           "with --base-url the server is yours")
    server_kw = _server_kw(model_path, tp)
    with endpoint(engine, model, base_url=base_url, served_model_name=served_model_name, mtp=mtp,
                  run_dir=target, **server_kw) as ep:
        served = _resolve_served(ep.base_url, ep.served_model_name, explicit=bool(served_model_name))
        _warn_dummy(ep)
        outcome = run_mmlu(base_url=ep.base_url, served_model=served, source=src, cfg=cfg, engine=engine,
                           model=model, out_dir=target, server=ep.server, show_progress=not no_progress,
                           extra_meta={"mtp": mtp, **_weights_meta(ep), "environment": ep.environment}
                           if ep.server == "managed" else None)
    s = outcome.summary
    lo, hi = s["ci95"]
    out.print(f"[bold]MMLU-{s['num_questions']}[/] {engine} {model}: score {s['score']:.3f} "
              f"(95% CI {lo:.3f}-{hi:.3f}), errors {s['errors']}, no answer {s['no_answer']}")
    for r in s["run_to_run"]:
        out.print(f"  repeat {r['repeats'][1]} vs 0: {r['discordant']} questions changed correctness "
                  f"({r['answer_changed']} changed answers)")
    if s["errors"]:
        err.print(f"[yellow]warning:[/] {s['errors']} request(s) failed and were scored wrong "
                  "(see the 'error' field in records.jsonl)")
    out.print(f"records: {outcome.out_dir}")


# --------------------------------------------------------------------------------------------- parity
def _print_parity(result: dict, target: Path) -> None:
    """The per-prompt table and the match-rate line of one parity record."""
    a, b = result["a"].get("engine"), result["b"].get("engine")
    mode = ""
    if "mtp" in result["a"]:
        mode = ", MTP on" if result["a"]["mtp"] else ", MTP off"
    t = Table(title=f"greedy parity {a} vs {b} ({result['model']}, max_tokens {result['sampling']['max_tokens']}{mode})")
    for col in ("prompt", "category", "match", "char div", "token div", "prefix ratio", "tokens A/B"):
        t.add_column(col)
    for r in result["per_prompt"]:
        t.add_row(r["id"], r["category"], "[green]yes[/]" if r["exact_match"] else "[red]no[/]",
                  "-" if r["char_divergence"] is None else str(r["char_divergence"]),
                  "-" if r["token_divergence"] is None else f"{r['token_divergence']} ({r['token_method']})",
                  f"{r['common_prefix_ratio']:.2f}",
                  f"{r['a']['completion_tokens']}/{r['b']['completion_tokens']}")
    out.print(t)
    out.print(f"match_rate = {result['matches']}/{result['n']} = {result['match_rate']:.2f}; "
              f"errors A {result['errors']['a']}, B {result['errors']['b']}; written {target}")
    dm = result.get("divergence_margins")
    if dm and dm.get("divergent"):
        from harness.evals.parity import divergence_margins_text

        out.print(f"divergence margins: {divergence_margins_text(dm)}", highlight=False)
    sig = result.get("signal") or {}
    if sig.get("informative") is False:
        out.print(f"[yellow]no signal:[/] {sig.get('why')}", highlight=False)
    bat = result.get("batching") or {}
    if bat.get("batch_invariant") is False:
        out.print(f"[yellow]batching:[/] {bat.get('why')}", highlight=False)


FROM_RUN_EXCLUSIVE = ("a", "b", "a_url", "b_url", "model", "served_model_name", "prompts", "max_tokens", "concurrency",
                      "mtp", "model_path", "tp", "out_file")
FROM_RUN_ONLY = ("runs_dir", "pair")
# with --from-generations, --a/--b are labels and --model/--out keep their meaning; nothing starts a server
FROM_GENERATIONS_EXCLUSIVE = ("a_url", "b_url", "served_model_name", "prompts", "max_tokens", "concurrency", "mtp",
                              "model_path", "tp", "from_run", "runs_dir", "pair")


def _server_kw(model_path: Optional[Path], tp: int) -> dict:
    """Keyword arguments for a server the harness starts (managed_server's defaults otherwise)."""
    kw: dict = {"model_path": model_path} if model_path else {}
    if tp != 1:
        kw["tp"] = tp
    return kw


def _given(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` given on the command line (or by environment), as their flags."""
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    given = []
    for n in names:
        src = ctx.get_parameter_source(n)  # by name: typer may bring its own click and its own enum
        if src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.append(flags[n])
    return given


def _parse_pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for v in values:
        a, sep, b = v.partition(":")
        if not sep or not a.strip() or not b.strip() or ":" in b:
            raise HarnessError(f"--pair takes ENGINE_A:ENGINE_B (got {v!r})")
        pairs.append((a.strip(), b.strip()))
    return pairs


def _run_engine_order(rd) -> list[str]:
    """The run's engines in the order it ran them (its planned cells are in --engines order)."""
    from harness.results import parse_cell_id

    order: list[str] = []
    for cid in rd.manifest.cells:
        parsed = parse_cell_id(cid)
        if parsed and parsed[0] not in order:
            order.append(parsed[0])
    return order


def _parity_from_run(run: str, runs_dir_opt: Optional[Path], pair_opts: list[str], as_json: bool,
                     min_match_rate: Optional[float]) -> None:
    """``harness parity --from-run``: the records `harness compare` writes, from a run's stored generations."""
    from harness.bench import mode_name, parity_pairs, run_parity, stored_generations
    from harness.runs import RunDir, utcnow

    rd = RunDir.open(run, runs_dir_opt)  # HarnessError (exit 2) names the missing manifest
    stored = stored_generations(rd.path)
    files = sum(len(v) for v in stored.values())
    if files < 2:
        raise HarnessError(f"run {rd.manifest.run_id} has {files} stored generation file(s) under {rd.path / 'evals'}"
                           " (evals/generations-<engine>__mtp-X.json); parity needs two")
    with_gens = {e for v in stored.values() for e in v}
    order = [e for e in _run_engine_order(rd) if e in with_gens] + sorted(with_gens - set(_run_engine_order(rd)))
    if pair_opts:
        pairs = _parse_pairs(pair_opts)
        unknown = sorted({e for p in pairs for e in p} - with_gens)
        if unknown:
            raise HarnessError(f"--pair: no stored generations from {', '.join(unknown)} in run {rd.manifest.run_id} "
                               f"(engines with generations: {', '.join(order)})")
    else:
        pairs = None
    extra = {"computed_by": "harness parity --from-run", "computed_at": utcnow()}
    outcomes = []
    for mtp in sorted(stored):  # mtp-off, then mtp-on: the modes this run has generations for
        mode_pairs = pairs if pairs is not None else parity_pairs([e for e in order if e in stored[mtp]])
        outcomes += run_parity(rd.path, rd.manifest.run_id, rd.manifest.model, mode_pairs, mtp, extra=extra)
    written = [o for o in outcomes if o.status == "written"]
    if as_json:
        sys.stdout.write(json.dumps([o.record for o in written], indent=2, sort_keys=True) + "\n")
    else:
        for o in written:
            _print_parity(o.record, o.path)
    for o in outcomes:
        if o.status != "written":
            err.print(o.note, highlight=False, soft_wrap=True)
    kept = sum(o.status == "exists" for o in outcomes)
    err.print(f"run {rd.manifest.run_id}: {len(written)} parity record(s) written, {kept} kept as they were, "
              f"{len(outcomes) - len(written) - kept} skipped "
              f"({', '.join(sorted({mode_name(m) for m in stored}))})", highlight=False)
    low = [o for o in written if min_match_rate is not None and o.record["match_rate"] < min_match_rate]
    for o in low:
        err.print(f"[red]parity {o.a} vs {o.b} ({mode_name(o.mtp)}) below --min-match-rate {min_match_rate}[/]")
    if low or any(o.status == "error" for o in outcomes):
        raise typer.Exit(1)


def _parity_from_generations(specs: list[str], a: Optional[str], b: Optional[str], model: Optional[str],
                             out_file: Optional[Path], as_json: bool, min_match_rate: Optional[float]) -> None:
    from harness.evals.parity_sources import compare_answer_sets, load_answer_set
    from harness.paths import runs_dir

    if len(specs) != 2:
        raise HarnessError(f"--from-generations takes exactly two answer sets (given {len(specs)})")
    sa, sb = (load_answer_set(s) for s in specs)
    started = dt.datetime.now(dt.timezone.utc)
    result = compare_answer_sets(sa, sb, label_a=a, label_b=b, model=model,
                                 started_at=started.isoformat(timespec="seconds"),
                                 computed_by="harness parity --from-generations", record_sources=True)
    la, lb = result["a"]["engine"], result["b"]["engine"]
    target = out_file or runs_dir() / "parity" / (f"parity-{started.strftime('%Y%m%dT%H%M%SZ')}-"
                                                  f"{_file_label(la)}-vs-{_file_label(lb)}.json")
    if target.exists():
        raise HarnessError(f"{target} already exists: parity records are never overwritten")
    _write_parity(result, target, as_json, min_match_rate)


def _write_parity(result: dict, target: Path, as_json: bool, min_match_rate: Optional[float]) -> None:
    """Write a new parity record, show it, and exit 1 when it is below --min-match-rate."""
    from harness.atomic import write_new_json

    write_new_json(target, result)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        _print_parity(result, target)
    if min_match_rate is not None and result["match_rate"] < min_match_rate:
        err.print(f"[red]parity below --min-match-rate {min_match_rate}[/]")
        raise typer.Exit(1)


def _file_label(label: str) -> str:
    """A side's label as it can stand in a file name."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "side"


@app.command("parity")
def parity_cmd(
    ctx: typer.Context,
    a: Optional[str] = typer.Option(None, "--a", help="Engine A (profile name, or a label with --a-url). Required "
                                    "unless --from-run."),
    b: Optional[str] = typer.Option(None, "--b", help="Engine B (profile name, or a label with --b-url). Required "
                                    "unless --from-run."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name. Required unless --from-run."),
    a_url: Optional[str] = typer.Option(None, "--a-url", help="Running server for A; without it the harness "
                                        "starts A."),
    b_url: Optional[str] = typer.Option(None, "--b-url", help="Running server for B; without it the harness "
                                        "starts B (after stopping A)."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name",
                                                    help="Model name to send to both servers."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Prompt set (default "
                                           "scenarios/parity/prompts-v1.yaml)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="max_tokens per prompt (a prompt may set its own)."),
    concurrency: int = typer.Option(1, "--concurrency", help="Prompts in flight at a time per server. 1 sends the "
                                    "prompts one at a time, so no prompt's batch depends on the others' timing; "
                                    "higher is faster, but the record then mixes batch composition into the numerics "
                                    "(its `batching` says so)."),
    mtp: bool = typer.Option(False, "--mtp", help="Start managed servers with MTP speculative decoding."),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="Weights directory for servers the "
                                              "harness starts (passed to managed_server as model_path)."),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel size of the servers the harness starts "
                           "(GPUs: CUDA_VISIBLE_DEVICES)."),
    min_match_rate: Optional[float] = typer.Option(None, "--min-match-rate",
                                                   help="Exit 1 when match_rate is below this (0..1); with "
                                                   "--from-run, when any record written is."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="JSON output (default "
                                            "runs/parity/parity-<UTC>-<a>-vs-<b>.json); never overwritten."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON result instead of the table (with "
                                 "--from-run: a list of the records written)."),
    from_run: Optional[str] = typer.Option(
        None, "--from-run",
        help="Run id (or run directory): compute the pairwise records `harness compare --parity` writes "
             "(evals/parity-<a>-vs-<b>-mtp-X.json) from the generations that run stored, e.g. after it was "
             "interrupted. Starts no server; an existing record is kept (noted, never overwritten); each record "
             "written says computed_by 'harness parity --from-run' and computed_at (UTC). Not with "
             "--a/--b/--a-url/--b-url or the other server options."),
    runs_dir_opt: Optional[Path] = typer.Option(None, "--runs-dir", help="With --from-run: where the run is "
                                                "(default: runs/)."),
    pair: Optional[list[str]] = typer.Option(
        None, "--pair",
        help="With --from-run: ENGINE_A:ENGINE_B to compare (repeatable). Default: every pair of engines with "
             "stored generations, in the run's engine order, in each MTP mode that has them."),
    from_generations: Optional[list[str]] = typer.Option(
        None, "--from-generations",
        help="Give it twice: two stored answer sets to compare, each a run's evals/generations-<engine>__mtp-X.json "
             "or one side of a parity record (PATH#a or PATH#b). Starts no server. E.g. one engine against itself "
             "across two server starts: the run-to-run floor a mismatch between engines has to be read against. "
             "--a/--b label the sides (needed when both name the same engine); --model when neither file says it. "
             "A record side keeps no alternatives at every position, so margins need generations files."),
) -> None:
    """Greedy parity of two engines on a versioned prompt set: exact matches, first divergence and, where both
    servers return top logprobs, how close their two candidates were there (near-tie or not). With --from-run,
    the same from a run's stored generations; with --from-generations, from any two stored answer sets (no
    server either way)."""
    if from_generations:
        clash = _given(ctx, FROM_GENERATIONS_EXCLUSIVE)
        if clash:
            raise HarnessError(f"--from-generations compares stored answers; it cannot be combined with "
                               f"{', '.join(clash)}")
        _parity_from_generations(list(from_generations), a, b, model, out_file, as_json, min_match_rate)
        return
    if from_run is not None:
        clash = _given(ctx, FROM_RUN_EXCLUSIVE)
        if clash:
            raise HarnessError(f"--from-run computes parity from a run's stored generations; it cannot be combined "
                               f"with {', '.join(clash)}")
        _parity_from_run(from_run, runs_dir_opt, list(pair or []), as_json, min_match_rate)
        return
    only = _given(ctx, FROM_RUN_ONLY)
    if only:
        raise HarnessError(f"{', '.join(only)} only apply with --from-run")
    missing = [f for f, v in (("--a", a), ("--b", b), ("--model", model)) if v is None]
    if missing:
        raise HarnessError(f"missing option(s) {', '.join(missing)} (or pass --from-run RUN, or "
                           "--from-generations twice)")
    if concurrency < 1:
        raise HarnessError(f"--concurrency must be at least 1, got {concurrency}")

    from harness.evals.endpoint import endpoint
    from harness.evals.parity import compare_runs, default_prompts_path, generate_all, load_prompts
    from harness.paths import runs_dir

    ppath = prompts or default_prompts_path()
    pset, psha = load_prompts(ppath)
    started = dt.datetime.now(dt.timezone.utc)
    target = out_file or runs_dir() / "parity" / f"parity-{started.strftime('%Y%m%dT%H%M%SZ')}-{a}-vs-{b}.json"
    if target.exists():
        raise HarnessError(f"{target} already exists: parity records are never overwritten")
    gens, metas = [], []
    for side, name, url in (("a", a, a_url), ("b", b, b_url)):  # one server at a time: A, stop, then B
        server_kw = {} if url else _server_kw(model_path, tp)
        with endpoint(name, model, base_url=url, served_model_name=served_model_name, mtp=mtp,
                      run_dir=target.parent / f"{target.stem}-server-{side}-{name}", **server_kw) as ep:
            served = _resolve_served(ep.base_url, ep.served_model_name, explicit=bool(served_model_name))
            err.print(f"parity: {len(pset.prompts)} prompts -> {name} at {ep.base_url}")
            gens.append(generate_all(ep.base_url, served, pset, max_tokens=max_tokens, concurrency=concurrency))
            _warn_dummy(ep)
            metas.append({"engine": name, "base_url": ep.base_url, "served_model_name": served,
                          "server": ep.server, **_weights_meta(ep), "environment": ep.environment,
                          "concurrency": concurrency})
    result = compare_runs(gens[0], gens[1], prompts=pset, prompts_path=str(ppath), prompts_sha256=psha,
                          meta_a=metas[0], meta_b=metas[1], model=model, max_tokens=max_tokens,
                          started_at=started.isoformat(timespec="seconds"))
    _write_parity(result, target, as_json, min_match_rate)


# the interpreter that runs transformers for parity-reference and parity-floor
TransformersEnvOpt = typer.Option("sglang", "--env", help="Environment whose interpreter runs transformers (an engine "
                                  "environment has torch and transformers).")
TransformersPythonOpt = typer.Option(None, "--python", help="Interpreter to use instead of --env's.")


@app.command("parity-reference")
def parity_reference_cmd(
    records: list[Path] = typer.Argument(..., help="Parity records (a run's evals/parity-*.json, or ones under "
                                         "runs/parity/) of engines that loaded the --model-path checkpoint."),
    model_path: Path = typer.Option(..., "--model-path", help="The checkpoint the engines loaded (e.g. the "
                                    "`harness model init-weights` directory)."),
    env: str = TransformersEnvOpt,
    python: Optional[str] = TransformersPythonOpt,
    device: Optional[str] = typer.Option(None, "--device", help="Default: cuda when available, else cpu. The model "
                                         "must fit one device in --dtype (31B in float32: ~125 GB)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 (the checkpoint's bf16 weights, computed "
                              "without bf16 rounding) or bfloat16."),
    tie_nats: float = typer.Option(1e-3, "--tie-nats", help="|Δ| at or below this is a tie."),
    control: bool = typer.Option(True, "--control/--no-control", help="With float32: also run transformers' own "
                                 "bfloat16 forward of every context, the checkpoint's rounding floor the engines' "
                                 "gaps are read against (the model is cast in place: no second load)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="JSON output, with one record only (default "
                                            "runs/parity/parity-reference-<record>.json); never overwritten."),
    timeout_s: float = typer.Option(3600, "--timeout", help="Seconds for loading the model and the forwards."),
) -> None:
    """At each first divergence of parity records, ask transformers' float32 forward of the same checkpoint which
    engine's token it prefers, by how much, and what its own top token is: tells near-ties that rounding flipped
    (preferences split, small |Δ|) from one engine computing something else (the reference sides with the other
    nearly every time). The model is loaded once for all the records given."""
    from harness.atomic import write_new_json
    from harness.engines import resolve_interpreter
    from harness.evals.parity import default_prompts_path, load_prompts
    from harness.evals.reference import run_references, summary_text
    from harness.paths import runs_dir

    if dtype not in ("float32", "bfloat16"):
        raise HarnessError(f"--dtype takes float32 or bfloat16, not {dtype!r}")
    if out_file is not None and len(records) != 1:
        raise HarnessError(f"--out names the output of one record; {len(records)} were given (leave --out out: "
                           "each goes to runs/parity/parity-reference-<record>.json)")
    targets = []
    for record in records:
        if not record.is_file():
            raise HarnessError(f"{record}: no such parity record")
        stem = record.stem if record.parent.name != "evals" else f"{record.parent.parent.name}-{record.stem}"
        target = out_file or runs_dir() / "parity" / f"parity-reference-{stem.removeprefix('parity-')}.json"
        if target.exists() or target in targets:
            raise HarnessError(f"{target} already exists: reference records are never overwritten")
        targets.append(target)
    interp = resolve_interpreter(env, python)
    pset, psha = load_prompts(default_prompts_path())
    err.print(f"reference forward of {model_path} with {interp.python} (transformers, {dtype}) for "
              f"{len(records)} record(s)")
    results = run_references(list(records), model_path, python=interp.python, pythonpath=list(interp.pythonpath),
                             prompts=pset, prompts_sha256=psha, device=device, dtype=dtype, tie_nats=tie_nats,
                             timeout_s=timeout_s, control=control)
    for res, target in zip(results, targets):
        write_new_json(target, res)
        a, b = res["engines"]
        out.print(f"{a} vs {b}: {summary_text(res['summary'], a or 'A', b or 'B')}", highlight=False)
        out.print(f"  written {target}", highlight=False)


@app.command("parity-floor")
def parity_floor_cmd(
    model_path: Path = typer.Option(..., "--model-path", help="The checkpoint (e.g. a `harness model init-weights` "
                                    "directory)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name for the record (default: the "
                                        "directory's harness marker)."),
    env: str = TransformersEnvOpt,
    python: Optional[str] = TransformersPythonOpt,
    device: Optional[str] = typer.Option(None, "--device", help="Default: cuda when available, else cpu. The model "
                                         "must fit one device in float32 (31B: ~125 GB)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="JSON output (default runs/parity/parity-floor-"
                                            "<model>-<fingerprint or config>.json); never overwritten."),
    timeout_s: float = typer.Option(3600, "--timeout", help="Seconds for loading the model and the forwards."),
) -> None:
    """The checkpoint's rounding floor for greedy parity, no engine involved: transformers' float32 and bfloat16
    forwards of every parity prompt, compared at the first answer token. Engines compute in bf16, so engines with
    different kernels cannot be expected to agree more often than bf16 agrees with float32 here; on random-init
    weights that is rarely (the report shows the floor next to the parity records)."""
    from harness.atomic import write_new_json
    from harness.engines import resolve_interpreter
    from harness.evals.parity import default_prompts_path, load_prompts
    from harness.evals.reference import floor_text, run_floor
    from harness.paths import runs_dir
    from harness.synth import config_sha256, read_marker, weights_init_summary

    name = model or (read_marker(model_path) or {}).get("model")
    if not name:
        raise HarnessError(f"{model_path}: no harness marker names the model; pass --model")
    tag = (weights_init_summary(model_path) or {}).get("fingerprint") or (config_sha256(model_path) or "unknown")[:16]
    target = out_file or runs_dir() / "parity" / f"parity-floor-{name}-{tag}.json"
    if target.exists():
        raise HarnessError(f"{target} already exists: floor records are never overwritten")
    interp = resolve_interpreter(env, python)
    pset, psha = load_prompts(default_prompts_path())
    err.print(f"float32 and bfloat16 forwards of {model_path} with {interp.python} on {len(pset.prompts)} prompts")
    res = run_floor(model_path, python=interp.python, pythonpath=list(interp.pythonpath), prompts=pset,
                    prompts_sha256=psha, model=name, device=device, timeout_s=timeout_s)
    write_new_json(target, res)
    out.print(f"{name}: {floor_text(res['summary'])}", highlight=False)
    out.print(f"  written {target}", highlight=False)


# --------------------------------------------------------------------------------------------- gate
@app.command("gate")
def gate_cmd(
    reference: Path = typer.Option(..., "--reference", help="Reference `harness mmlu` output dir (or its "
                                   "summary.json)."),
    candidate: Path = typer.Option(..., "--candidate", help="Candidate `harness mmlu` output dir (or its "
                                   "summary.json)."),
    margin: float = typer.Option(1.0, "--margin", help="Non-inferiority margin in percentage points."),
    alpha: float = typer.Option(0.05, "--alpha", help="One-sided error level of the bound."),
    rule: str = typer.Option("non-inferiority", "--rule", help="non-inferiority: fail when the upper bound of "
                             "reference-candidate exceeds the margin; regression: fail only when its lower bound "
                             "does."),
    resamples: int = typer.Option(10_000, "--resamples", help="Paired-bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate", help="Refuse (exit 2) a run whose failed "
                                         "requests exceed this fraction."),
    allow_dummy: bool = typer.Option(False, "--allow-dummy", help="Accept runs made on dummy (random) weights "
                                     "(pipeline checks only); without it such a run is unusable input (exit 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Also write the JSON result here (new file)."),
) -> None:
    """Paired MMLU comparison: McNemar, paired-bootstrap CI, non-inferiority verdict. Exit 0 pass, 1 regression,
    2 unusable input."""
    from harness.atomic import write_new_json
    from harness.evals.gate import run_gate

    res = run_gate(reference, candidate, margin_pp=margin, alpha=alpha, rule=rule,  # type: ignore[arg-type]
                   resamples=resamples, seed=seed, max_error_rate=max_error_rate, allow_dummy=allow_dummy)
    if out_file:
        if out_file.exists():
            raise HarnessError(f"{out_file} already exists: gate results are never overwritten")
        write_new_json(out_file, res)
    if as_json:
        sys.stdout.write(json.dumps(res, indent=2, sort_keys=True) + "\n")
    else:
        t = Table(title=f"MMLU gate ({res['rule']}, margin {res['margin_pp']:g} pp, alpha {res['alpha']:g})")
        t.add_column("")
        t.add_column("reference")
        t.add_column("candidate")
        t.add_row("engine", str(res["reference"]["engine"]), str(res["candidate"]["engine"]))
        t.add_row("score", f"{res['reference']['score']:.3f}", f"{res['candidate']['score']:.3f}")
        t.add_row("correct", f"{res['reference']['correct']}/{res['n']}", f"{res['candidate']['correct']}/{res['n']}")
        out.print(t)
        bt = res["bootstrap"]
        out.print(f"delta {res['delta_pp']:+.2f} pp, b={res['paired']['b']} c={res['paired']['c']}, "
                  f"McNemar p={res['mcnemar_p_two_sided']:.3g}, bootstrap 95% CI "
                  f"[{bt['ci95_delta'][0] * 100:+.2f}, {bt['ci95_delta'][1] * 100:+.2f}] pp, "
                  f"upper bound of reference-candidate {bt['drop_upper'] * 100:.2f} pp")
        colour = "green" if res["verdict"] == "pass" else "red"
        body = res["explanation"].split(" ", 1)[1]  # the paragraph opens with "PASS." / "FAIL."
        out.print(f"[bold {colour}]{res['verdict'].upper()}.[/] {body}")
    raise typer.Exit(res["exit_code"])
