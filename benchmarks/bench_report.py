"""Time a full ``harness report`` render of ~1000 synthetic cells (CPU only, no GPU, no network).

    python benchmarks/bench_report.py [--repeats 3] [--samples 256] [--keep DIR]

What it generates (in a temporary directory, deleted afterwards unless ``--keep``): 2 GPUs (H100 SXM, H200) x
4 models (31B, 26B-A4B, E4B, E2B) = 8 runs, one table group each; every run has 7 scenarios x MTP on/off x
3 engines x 3 repeats = 126 planned cells, i.e. 1008 cells in all. About 2% of the cells are failed records and
about 1% are planned but have no record (missing). Every ok cell carries ``--samples`` per-request TTFT and E2E
samples (so the distribution plots are drawn). The numbers are SYNTHETIC (seeded random), only there to give the
renderer realistic work; they are not measurements of anything.

What it measures: the wall time and the peak resident memory of ``python -m harness report`` as a child
process (interpreter start, imports, loading, tables, 16 PNG plots, writing), repeated ``--repeats`` times,
plus the same render without plots (``--no-plots``). Peak memory is the report process's maximum resident set
and, separately, the largest forked plot worker's (``HARNESS_REPORT_JOBS``, default one per CPU). It prints one
JSON object with the machine it ran on, including the 1-minute load average before and after (the numbers are
only meaningful on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.results import CellResult, Manifest, cell_id  # noqa: E402

MODELS = ("31B", "26B-A4B", "E4B", "E2B")
GPUS = ("NVIDIA H100 80GB HBM3", "NVIDIA H200")
SCENARIOS = ("balanced-500", "chat", "decode-burst", "long-prefill-7k", "mm-images", "prefill-3k", "summarization")
ENGINES = ("sglang", "sglang-patched", "vllm")
REPEATS = 3


def _latency(rng: random.Random, base: float) -> dict:
    m = base * rng.uniform(0.9, 1.1)
    return {"mean": m * 1.05, "median": m, "std": m * 0.1, "p90": m * 1.3, "p99": m * 1.6}


def generate(root: Path, samples: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    n_cells = 0
    for gi, gpu in enumerate(GPUS):
        for model in MODELS:
            run_id = f"bench-{gi}-{model}"
            d = root / run_id
            (d / "cells").mkdir(parents=True)
            planned = []
            for scenario in SCENARIOS:
                for mtp in (False, True):
                    for engine in ENGINES:
                        for rep in range(1, REPEATS + 1):
                            cid = cell_id(engine, scenario, mtp, rep)
                            planned.append(cid)
                            u = rng.random()
                            if u < 0.01:
                                continue  # planned, no record: "missing"
                            cell = {"run_id": run_id, "cell_id": cid, "engine": engine, "model": model,
                                    "scenario": scenario, "mtp": mtp, "repeat": rep,
                                    "started_at": "2026-01-01T00:00:00+00:00"}
                            if u < 0.03:
                                cell.update(status="failed", failure={"stage": "load", "message": "synthetic failure"})
                            else:
                                tput = rng.uniform(500, 5000)
                                tpot = rng.uniform(5, 40)
                                metrics = {
                                    "completed": samples, "failed": 0, "duration_s": 60.0, "request_throughput": 1.0,
                                    "output_throughput": tput, "total_token_throughput": tput * 2,
                                    "total_input_tokens": 1000 * samples, "total_output_tokens": 1000 * samples,
                                    "ttft_ms": _latency(rng, 500), "tpot_ms": _latency(rng, tpot),
                                    "itl_ms": _latency(rng, tpot), "e2el_ms": _latency(rng, 20000),
                                    "ttfts_ms": [round(rng.lognormvariate(6, 0.5), 3) for _ in range(samples)],
                                    "e2els_ms": [round(rng.lognormvariate(10, 0.3), 3) for _ in range(samples)],
                                }
                                cell.update(status="ok", metrics=metrics)
                                if mtp:
                                    cell["spec_decode"] = {"accept_length": rng.uniform(2, 4), "source": "synthetic"}
                            rec = CellResult.model_validate(cell).model_dump(mode="json")
                            (d / "cells" / f"{cid}.json").write_text(json.dumps(rec), encoding="utf-8")
                            n_cells += 1
            man = Manifest.model_validate({
                "run_id": run_id, "command": ["synthetic"], "created_at": "2026-01-01T00:00:00+00:00",
                "status": "complete", "harness_version": "0.1.0", "model": model, "weights": "real",
                "machine": {"gpu_name": gpu, "gpu_count": 1, "driver": "synthetic", "cuda": "13.0"},
                "engines": {e: {"name": e, "family": e.split("-")[0], "version": "synthetic"} for e in ENGINES},
                "scenarios": {s: {"name": s} for s in SCENARIOS}, "cells": planned,
            }).model_dump(mode="json")
            (d / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    return n_cells


def run_once(runs: Path, out: Path, plots: bool) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + sys, with the plot workers), peak RSS (KiB) of the report process and of
    its largest plot worker."""
    cmd = [sys.executable, "-c",
           "import resource, sys; from harness.cli.app import main; sys.argv[0] = 'harness';"
           "\ntry:\n    main()\nfinally:\n"
           "    sys.stderr.write('\\nPEAK_RSS_KIB=%d %d\\n' % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
           " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))",
           "report", "--runs-dir", str(runs), "--out", str(out)] + ([] if plots else ["--no-plots"])
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"report failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    self_kib, child_kib = (int(x) for x in proc.stderr.rsplit("PEAK_RSS_KIB=", 1)[1].split()[:2])
    return wall, cpu, self_kib, child_kib


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import matplotlib
    import pandas

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "pandas": pandas.__version__, "matplotlib": matplotlib.__version__, "loadavg_1m_before": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=256, help="per-request samples per ok cell")
    ap.add_argument("--keep", type=Path, default=None, help="generate into this directory and keep it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-")) if args.keep is None else args.keep
    try:
        runs = tmp / "runs"
        n = generate(runs, args.samples)
        mach = machine()
        res = {}
        for plots in (True, False):
            walls, cpus, peaks, workers = [], [], [], []
            for i in range(args.repeats):
                wall, cpu, peak, worker = run_once(runs, tmp / f"out-{plots}-{i}" / "COMPARISON.md", plots)
                walls.append(wall)
                cpus.append(cpu)
                peaks.append(peak)
                workers.append(worker)
            res["with_plots" if plots else "no_plots"] = {
                "wall_s": [round(w, 2) for w in walls], "median_wall_s": round(statistics.median(walls), 2),
                "cpu_s": [round(c, 2) for c in cpus],
                "peak_rss_mib": round(max(peaks) / 1024, 1),
                "largest_plot_worker_rss_mib": round(max(workers) / 1024, 1),
            }
        outs = sorted(tmp.glob("out-True-*/COMPARISON.md"))
        identical = len({p.read_bytes() for p in outs}) == 1 and len(
            {tuple((q.name, q.read_bytes()) for q in sorted((p.parent / "COMPARISON_plots").iterdir())) for p in outs}) == 1
        n_png = len(list((outs[0].parent / "COMPARISON_plots").iterdir()))
        mach["loadavg_1m_after"] = os.getloadavg()[0]
        print(json.dumps({"cells": n, "per_request_samples": args.samples, "pngs": n_png,
                          "renders_byte_identical": identical, **res, "machine": mach}, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
