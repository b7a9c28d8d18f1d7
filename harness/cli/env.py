"""``harness env create|check|bundle|install-bundle|warm-jit|list|register|forget``: engine environments."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.app import app
from harness.cli.common import OverridesOpt, definitions, split_csv
from harness.errors import HarnessError

env_app = typer.Typer(
    help="Engine environments (one per engine: their FlashInfer pins conflict) and offline wheel bundles.",
    no_args_is_help=True,
)
app.add_typer(env_app, name="env")

out = Console()
log = Console(stderr=True)

PinsOpt = typer.Option(None, "--pins", help="Pins file (default: scenarios/engine-pins.yaml).")


def _progress(msg: str) -> None:
    log.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}")


def _index_args(find_links: list[Path] | None, no_index: bool) -> list[str]:
    args: list[str] = []
    for fl in find_links or []:
        args += ["--find-links", str(Path(fl).resolve())]
    if no_index:
        args.append("--no-index")
    return args


def _print_check(res) -> None:
    status = "[green]ok[/]" if res.ok else "[bold red]MISMATCH[/]"
    out.print(f"[bold]{res.engine}[/] ({res.record.kind}: {res.record.python}"
              f"{' + ' + ':'.join(res.record.pythonpath) if res.record.pythonpath else ''}) {status}")
    t = Table("package", "installed", "pin")
    for name, version in res.versions.items():
        t.add_row(name, version or "-", res.pins_view.get(name, ""))
    torch = res.probe.get("torch") or {}
    out.print(t)
    out.print(f"  CUDA (torch build): {torch.get('cuda') or '-'}   GPU visible: {res.gpu}")
    for module, r in (res.probe.get("imports") or {}).items():
        mark = "[green]ok[/]" if r.get("ok") else f"[red]FAILED[/] {r.get('error')}"
        out.print(f"  import {module}: {mark} ({r.get('seconds')}s)")
    for p in res.problems:
        out.print(f"  [red]-[/] {p}")


def _run_checks(engines: list[str], pins_file: Optional[Path], as_json: bool, require_gpu: bool, imports: bool) -> None:
    from harness.envs.check import check_environment
    from harness.envs.pins import load_engine_pins
    from harness.envs.registry import lookup

    results = []
    missing = []
    for engine in engines:
        rec = lookup(engine)
        if rec is None:
            missing.append(engine)
            continue
        pins = load_engine_pins(engine, pins_file)
        if not as_json:
            _progress(f"checking {engine} ({rec.python}) ...")
        res = check_environment(pins, rec, require_gpu=require_gpu, imports=imports)
        results.append(res)
    if as_json:
        typer.echo(json.dumps({"environments": [r.to_json() for r in results], "not_registered": missing}, indent=2))
    else:
        for r in results:
            _print_check(r)
    failed = [r for r in results if not r.ok]
    msgs = [f"{r.engine}: " + "; ".join(r.problems) for r in failed]
    msgs += [f"{e}: no environment registered (harness env create --engine {e}, or install-bundle)" for e in missing]
    if msgs:
        raise HarnessError("environment check failed: " + " | ".join(msgs))


@env_app.command("create")
def create(
    engine: str = typer.Option(..., "--engine", help="sglang | vllm | harness."),
    path: Optional[Path] = typer.Option(None, "--path", help="Where to create the venv (default: <state dir>/envs/<engine>)."),
    python: str = typer.Option(sys.executable, "--python", help="Base interpreter of the venv (on the GPU host: /opt/torch/.venv/bin/python3)."),
    host_packages: bool = typer.Option(
        True, "--host-packages/--no-host-packages",
        help="Reuse what the base interpreter already has (torch!) through a .pth file; --no-host-packages installs everything, torch included.",
    ),
    find_links: Optional[list[Path]] = typer.Option(None, "--find-links", help="Extra wheel directory for pip download (repeatable)."),
    no_index: bool = typer.Option(False, "--no-index", help="Use only --find-links directories, no package index."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Download cache (default: ~/.cache/gemma4-harness/pip-download)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing venv at --path."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run `env check` on the new environment."),
    pins_file: Optional[Path] = PinsOpt,
) -> None:
    """Create a virtual environment for one engine with the pinned engine version and the known-good pins.

    The wheel set is resolved like a bundle (pins applied, exclusions left out), downloaded with pip (cached)
    and installed with --no-deps (uv if available, else pip); the environment is registered so the engine
    profiles use it without further configuration.
    """
    from harness.envs.create import create_env
    from harness.envs.pins import load_engine_pins

    pins = load_engine_pins(engine, pins_file)
    record, res = create_env(
        pins, python, path=path, host_packages=host_packages, pip_args=_index_args(find_links, no_index),
        cache_dir=cache_dir, force=force, progress=_progress,
    )
    out.print(f"created [bold]{record.engine}[/] venv: {record.python} ({len(res.bundled)} wheels installed, "
              f"{len(res.from_host)} from the base interpreter, {len(res.excluded)} excluded)")
    if check:
        _run_checks([record.engine], pins_file, as_json=False, require_gpu=False, imports=True)


@env_app.command("check")
def check(
    engine: Optional[list[str]] = typer.Option(None, "--engine", help="Engine(s) to check (repeatable; default: every registered one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    require_gpu: bool = typer.Option(False, "--require-gpu", help="Fail when torch sees no GPU."),
    imports: bool = typer.Option(True, "--imports/--no-imports", help="Import the engine's server modules (slower, catches missing modules)."),
    pins_file: Optional[Path] = PinsOpt,
) -> None:
    """Import each engine in its environment and compare versions with the pins; exit non-zero on a mismatch.

    Prints the engine, torch, CUDA, transformers, tokenizers, flashinfer, xgrammar versions and whether a
    GPU is visible (and its name).
    """
    from harness.envs.registry import all_records

    engines = list(engine or [])
    if not engines:
        engines = sorted(all_records())
        if not engines:
            raise HarnessError("no environment registered; run `harness env create --engine E` or `harness env install-bundle`")
    _run_checks(engines, pins_file, as_json, require_gpu, imports)


@env_app.command("bundle")
def bundle(
    engine: str = typer.Option(..., "--engine", help="sglang | vllm | harness (the harness's own runtime deps from pyproject.toml)."),
    python_version: str = typer.Option("3.12", "--python", help="Target Python version, e.g. 3.12."),
    platform: str = typer.Option(
        "manylinux_2_39_x86_64", "--platform",
        help="Target platform tag: manylinux_<glibc>_<arch> of the target host (default: the lent GPU host, glibc 2.39); "
        "every older manylinux tag is accepted too. sglang 0.5.12 needs >= manylinux_2_34.",
    ),
    exclude_from: Optional[Path] = typer.Option(
        None, "--exclude-from",
        help="The target host's `pip freeze` or `pip list --format=json`: what it has is left out unless its version violates a pin or a requirement.",
    ),
    split_mb: Optional[float] = typer.Option(None, "--split-mb", help="Split the bundle into hashed parts of at most N MB (10^6 bytes)."),
    compress: bool = typer.Option(
        False, "--compress/--no-compress",
        help="With --split-mb: re-pack each wheel with its members stored uncompressed (the same files) and xz it, "
        "so the parts carry fewer bytes (sglang 0.5.12's bundle 42%, vLLM 0.22.0's 69%); `env install-bundle` and install.sh "
        "unpack them with Python's lzma and verify the re-packed wheels' sha256 (in the manifest beside the index's).",
    ),
    out_dir: Path = typer.Option(..., "--out", help="Output directory (must be empty, or --force)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Download cache (default: ~/.cache/gemma4-harness/pip-download)."),
    refresh: bool = typer.Option(False, "--refresh", help="Ask the index again instead of reusing cached answers."),
    workers: int = typer.Option(6, "--workers", help="Parallel pip downloads."),
    find_links: Optional[list[Path]] = typer.Option(None, "--find-links", help="Extra wheel directory for pip download (repeatable)."),
    no_index: bool = typer.Option(False, "--no-index", help="Use only --find-links directories, no package index."),
    audit_host: bool = typer.Option(
        True, "--audit-host/--no-audit-host",
        help="With --exclude-from: check that the host packages the closure uses accept the bundled versions (metadata only).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing bundle in --out."),
    pins_file: Optional[Path] = PinsOpt,
) -> None:
    """Resolve, download and package an engine's wheel closure for an offline (air-gapped) host.

    Writes manifest.json (every wheel with sha256 and size, what the host provides, what was excluded and
    why), SHA256SUMS, wheels.sha256, install.sh and either wheels/ or <engine>-bundle.tar.partNNN.
    """
    from harness.envs.bundle import build_bundle
    from harness.envs.hostpkgs import HostPackages
    from harness.envs.pins import load_engine_pins
    from harness.envs.resolve import Resolver, audit_host_requirements
    from harness.envs.target import TargetSpec
    from harness.envs.wheels import PipFetcher, default_cache_dir

    if compress and not split_mb:
        raise typer.BadParameter("--compress needs --split-mb: an unsplit bundle keeps the wheels as they are", param_hint="--compress")
    pins = load_engine_pins(engine, pins_file)
    target = TargetSpec(python_version=python_version, platform=platform)
    host = HostPackages.from_file(exclude_from) if exclude_from else None
    fetcher = PipFetcher(target, cache_dir or default_cache_dir(), pip_args=_index_args(find_links, no_index), refresh=refresh)
    _progress(f"resolving {engine} {pins.display_version} for Python {target.short_version} / {platform}"
              f"{f' minus {len(host)} host packages' if host else ''}")
    res = Resolver(target, pins, fetcher, host=host, workers=workers, progress=_progress).resolve(pins.root_requirements())
    audit = None
    if host is not None and audit_host:
        t_a = time.monotonic()
        conflicts, unknown = audit_host_requirements(res, host, fetcher, progress=_progress)
        audit = {"conflicts": conflicts, "metadata_unknown": unknown, "seconds": round(time.monotonic() - t_a, 1)}
    result = build_bundle(pins, res, out_dir, split_mb=split_mb, host_source=str(exclude_from) if exclude_from else None,
                          timings={"network_fetches": fetcher.network_fetches, **({"host_audit_s": audit["seconds"]} if audit else {})}, host_audit=audit, force=force,
                          compress=compress, progress=_progress)
    m = result.manifest
    xz_note = f" ({m['split']['archive']['size'] / 1e6:.1f} MB after xz)" if compress else ""
    out.print(
        f"[bold]{engine}[/] bundle in {out_dir}: {len(m['wheels'])} wheels, {m['total_wheel_bytes'] / 1e6:.1f} MB"
        f"{f', {result.part_count} parts of <= {split_mb:g} MB' if split_mb else ''}"
        f"{xz_note}; "
        f"{len(m['from_host'])} from the host, {len(m['excluded'])} excluded; "
        f"resolve+download {m['timings']['resolve_and_download_s']}s ({fetcher.network_fetches} pip downloads), "
        f"packaging {m['timings']['package_s']}s"
    )
    for e in m["excluded"]:
        out.print(f"  excluded {e['name']}: {e['why']}")
    for c in (audit or {}).get("conflicts", []):
        out.print(f"  [yellow]warning:[/] host {c['host_package']} requires {c['requires']}, the bundle has {c['bundled']}")
    if (audit or {}).get("metadata_unknown"):
        out.print(f"  [yellow]note:[/] no metadata for host packages {', '.join(audit['metadata_unknown'])} (not audited)")
    for w in m["wheels"]:
        if w.get("host_version"):
            out.print(f"  host has {w['name']} {w['host_version']}, bundled {w['version']}: {'; '.join(w['host_version_rejected_because'])}")


@env_app.command("install-bundle")
def install_bundle_cmd(
    bundle_dir: Path = typer.Argument(..., help="Bundle directory (manifest.json, install.sh, parts or wheels/)."),
    target: Optional[Path] = typer.Option(None, "--target", help="Install into this directory (pip --target); used via PYTHONPATH."),
    venv: Optional[Path] = typer.Option(None, "--venv", help="Or create a venv here (it also sees --python's packages)."),
    python: str = typer.Option("python3", "--python", help="Host interpreter (on the GPU host: /opt/torch/.venv/bin/python3)."),
    force: bool = typer.Option(
        False, "--force",
        help="Replace an earlier bundle install at the destination (the same bundle again is just re-registered without it).",
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Run `env check` after installing."),
    require_gpu: bool = typer.Option(False, "--require-gpu", help="Make the check fail when torch sees no GPU."),
    pins_file: Optional[Path] = PinsOpt,
) -> None:
    """Verify a bundle (every part and wheel hash), install it with pip --no-index --no-deps, register it, check it."""
    from harness.envs.install import install_bundle

    record = install_bundle(bundle_dir, python=python, target=target, venv=venv, force=force, progress=_progress)
    out.print(f"installed and registered [bold]{record.engine}[/]: python {record.python}"
              f"{', PYTHONPATH ' + ':'.join(record.pythonpath) if record.pythonpath else ''}")
    if check:
        _run_checks([record.engine], pins_file, as_json=False, require_gpu=require_gpu, imports=True)


@env_app.command("warm-jit")
def warm_jit_cmd(
    engine: list[str] = typer.Option(..., "--engine", "-e", help="Engine definition(s) whose JIT modules to build (repeatable or comma-separated)."),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel size the servers will run with (some modules are only built from TP=2 up)."),
    generator: Optional[list[str]] = typer.Option(
        None, "--generator",
        help="Build this 'package.module:function' (a FlashInfer JitSpec generator) instead of the engines' jit_warmup lists.",
    ),
    timeout: float = typer.Option(3600, "--timeout", help="Seconds one engine's builds may take."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    overrides: Optional[Path] = OverridesOpt,
) -> None:
    """Build ahead, into FlashInfer's JIT cache, the CUDA modules an engine compiles with nvcc at its first start
    (the `jit_warmup` list of its definition, e.g. the all-reduce fusion's trtllm_comm at TP>1: ~3 min on an H200
    host), so that server starts, and the lease time they take, leave the build out. Runs on the CPUs of the GPU
    host (FlashInfer picks the target archs from the visible GPUs); a server starting meanwhile waits on
    FlashInfer's build lock instead of building again. Exit 1 when a build fails."""
    from harness.envs.jit_warm import describe, generators_for, warm_jit

    defs = definitions(overrides)
    engines = [defs.engine(e) for e in split_csv(engine)]
    results: dict[str, list[dict]] = {}
    for eng in engines:
        gens = list(generator or []) or generators_for(eng, tp)
        if not gens:
            _progress(f"{eng.name}: nothing to build at TP={tp} (its definition's jit_warmup: "
                      f"{', '.join(f'{w.generator} from TP={w.min_tp}' for w in eng.jit_warmup) or 'none'})")
            results[eng.name] = []
            continue
        _progress(f"{eng.name}: building {', '.join(gens)}")
        results[eng.name] = warm_jit(eng, gens, timeout=timeout)
        for r in results[eng.name]:
            line = f"{eng.name}: {describe(r)}"
            if r.get("library"):
                line += f" ({r['library']})"
            if r["status"] == "failed":
                line += f": {r.get('error')}\n{r.get('traceback', '')}"
            _progress(line)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    if any(r["status"] == "failed" for rs in results.values() for r in rs):
        raise typer.Exit(1)


@env_app.command("list")
def list_envs(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The registered environments."""
    from harness.envs.registry import all_records, registry_path

    recs = all_records()
    if as_json:
        typer.echo(json.dumps({k: v.to_json() for k, v in recs.items()}, indent=2))
        return
    if not recs:
        out.print(f"no environment registered ({registry_path()})")
        return
    t = Table("engine", "kind", "python", "pythonpath", "created", "source")
    for name, r in sorted(recs.items()):
        t.add_row(name, r.kind, r.python, ":".join(r.pythonpath), r.created, r.source)
    out.print(t)


@env_app.command("register")
def register_cmd(
    engine: str = typer.Option(..., "--engine", help="sglang | sglang-patched | vllm | harness."),
    python: str = typer.Option(..., "--python", help="Interpreter of the environment."),
    pythonpath: Optional[list[str]] = typer.Option(None, "--pythonpath", help="Extra PYTHONPATH entry (repeatable; makes it a 'target' environment)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run `env check` after registering."),
    pins_file: Optional[Path] = PinsOpt,
) -> None:
    """Register an existing environment (a venv, or a host python plus --target directories)."""
    from harness.envs.registry import EnvRecord, register

    paths = [str(Path(p).resolve()) for p in pythonpath or []]
    rec = register(EnvRecord(engine=engine, python=python, pythonpath=paths, kind="target" if paths else "venv",
                             source="env register"))
    out.print(f"registered {rec.engine}: {rec.python}{' + ' + ':'.join(rec.pythonpath) if rec.pythonpath else ''}")
    if check:
        _run_checks([rec.engine], pins_file, as_json=False, require_gpu=False, imports=True)


@env_app.command("forget")
def forget(engine: str = typer.Argument(..., help="Engine whose registry entry to drop (files are left alone).")) -> None:
    """Drop an environment from the registry."""
    from harness.envs.registry import unregister

    if not unregister(engine):
        raise HarnessError(f"no environment registered for {engine!r}")
    out.print(f"forgot {engine}")
