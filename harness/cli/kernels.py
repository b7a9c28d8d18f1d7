"""``harness kernels run``: run a patch's kernel microbenchmark and record it as a run (``kernels/<name>.json``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from harness.cli.app import app
from harness.cli.bench import stack_hash_or_none
from harness.cli.common import console
from harness.engines import resolve_interpreter
from harness.errors import HarnessError
from harness.results import Failure, KernelBench
from harness.runs import RunDir, utcnow

kernels_app = typer.Typer(help="Kernel microbenchmarks shipped by the patches, recorded as runs.", no_args_is_help=True)
app.add_typer(kernels_app, name="kernels")


@kernels_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_kernel_bench(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Benchmark name, e.g. gemma4-fused-routing (the record's file name)."),
    tree: Path = typer.Option(..., "--tree", help="Patched SGLang tree (from `harness patches apply`); the command runs there."),
    patch: Optional[str] = typer.Option(None, "--patch", help="Patch file the kernel comes from."),
    env_name: str = typer.Option("sglang", "--env", help="Environment whose python runs the benchmark (registry name)."),
    run: Optional[str] = typer.Option(None, "--run", help="Add to this run id instead of creating a new run."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where run directories go (default: runs/)."),
    timeout: float = typer.Option(1800, "--timeout", help="Seconds before the benchmark is stopped."),
) -> None:
    """Run `-- COMMAND ...` (placeholders {python} and {out}) in TREE with the patched sglang first on PYTHONPATH.

    The command writes JSON to {out}: {"rows": [...], "columns": [...] (optional), "device": ..., anything else
    goes to the record's environment}. A failing command is recorded as a failed kernel bench with its output tail.
    """
    from harness.machine import machine_info

    cmd_t = list(ctx.args)
    if not cmd_t:
        raise HarnessError("give the benchmark command after `--`, e.g. -- {python} benchmark/x.py --out {out}")
    tree = tree.resolve()
    if not (tree / "python" / "sglang").is_dir():
        raise HarnessError(f"{tree} is not a patched SGLang tree (no python/sglang)")
    interp = resolve_interpreter(env_name)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "python")] + interp.pythonpath + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory() as td:
        out_json = Path(td) / "bench.json"
        cmd = [a.replace("{python}", interp.python).replace("{out}", str(out_json)) for a in cmd_t]
        if run:
            rd = RunDir.open(run, runs_dir)
        else:
            rd = RunDir.create({"command": sys.argv, "model": "kernels", "weights": "dummy",
                                "patch_stack_hash": stack_hash_or_none(), "machine": machine_info(),
                                "notes": ["kernel microbenchmarks on random inputs (no model weights involved)"]},
                               base=runs_dir, run_id=None)
        console.print(f"run {rd.manifest.run_id}: {' '.join(cmd)}")
        started = utcnow()
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
            rc, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, output = None, f"timeout after {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}"
        (rd.path / "logs").mkdir(exist_ok=True)
        (rd.path / "logs" / f"kernel-{name}.log").write_text(output)
        data = json.loads(out_json.read_text()) if out_json.is_file() else None
    kb = KernelBench(run_id=rd.manifest.run_id, name=name, patch=patch, command=cmd, started_at=started)
    if rc != 0 or data is None:
        kb.status = "failed"
        kb.failure = Failure(stage="other", message=f"benchmark exited with {rc}" + ("" if data else ", no JSON written"),
                             log_tail="\n".join(output.splitlines()[-60:]), returncode=rc)
    else:
        kb.rows = list(data.get("rows") or [])
        kb.columns = list(data.get("columns") or (list(kb.rows[0]) if kb.rows else []))
        kb.device = data.get("device")
        kb.environment = {k: v for k, v in data.items() if k not in ("rows", "columns", "device")}
        kb.environment["wall_s"] = round(time.monotonic() - t0, 2)
    rd.write_kernel_bench(kb)
    rd.manifest.status = "complete" if kb.status == "ok" else "partial"
    rd.manifest.finished_at = utcnow()
    rd.save_manifest()
    console.print(f"{kb.status}: {rd.path / 'kernels' / (name + '.json')}")
    if kb.status != "ok":
        console.print(kb.failure.log_tail if kb.failure else "")
        raise typer.Exit(1)
