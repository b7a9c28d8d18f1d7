"""Run one ``harness compare`` matrix on several GPU slots of one host at the same time.

``harness compare --gpus 0,1,2,3 --tp 1`` splits the engines of the matrix over the GPU slots (``tp`` GPUs each)
and starts one child ``harness compare`` per slot with ``CUDA_VISIBLE_DEVICES`` set to that slot. Each child
records its own run (its manifest counts only its GPUs and carries a note naming the concurrency), so the runs
meet in one report table exactly when they would have without the fan-out. Ctrl-C reaches every child's process
group; the children record their cells as interrupted and stop their servers.

Concurrent jobs share the host's CPUs and PCIe: the note says so, and a reader compares across slots knowing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError

# options of `harness compare` that the parent handles itself and never passes to a child
_PARENT_ONLY_WITH_VALUE = ("--gpus", "--engines", "--out", "--resume")
_PARENT_ONLY_FLAGS = ("--report", "--no-report", "--dry-run")


def gpu_slots(gpus: str, tp: int) -> list[str]:
    """``"0,1,2,3"`` with tp 2 -> ``["0,1", "2,3"]``. Every GPU in exactly one slot, in the order given."""
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids:
        raise HarnessError("--gpus needs at least one GPU id, e.g. --gpus 0,1")
    if len(set(ids)) != len(ids):
        raise HarnessError(f"--gpus lists a GPU twice: {gpus}")
    if len(ids) % tp:
        raise HarnessError(f"--gpus gives {len(ids)} GPU(s), not a multiple of --tp {tp}")
    return [",".join(ids[i:i + tp]) for i in range(0, len(ids), tp)]


def partition(engines: list[str], n_slots: int) -> list[list[str]]:
    """Engines dealt round-robin over at most ``n_slots`` slots (no empty slot)."""
    parts: list[list[str]] = [[] for _ in range(min(n_slots, len(engines)))]
    for i, e in enumerate(engines):
        parts[i % len(parts)].append(e)
    return parts


def child_args(args: list[str], engines: list[str], note: str) -> list[str]:
    """The parent's ``compare`` arguments for one child: its own engines, no report, the concurrency note."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if name in _PARENT_ONLY_WITH_VALUE:
            i += 1 if "=" in a else 2
            continue
        if a in _PARENT_ONLY_FLAGS:
            i += 1
            continue
        out.append(a)
        i += 1
    return out + ["--engines", ",".join(engines), "--no-report", "--note", note]


@dataclass
class Child:
    slot: str
    engines: list[str]
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    returncode: int | None = None
    run_id: str | None = None
    started: float = field(default_factory=time.monotonic)


def _run_id_from_log(log: Path) -> str | None:
    try:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("run ") and " -> " in line:
                return line.split()[1]
    except OSError:
        pass
    return None


def plan_children(args: list[str], engines: list[str], slots: list[str], log_dir: Path) -> list[Child]:
    parts = partition(engines, len(slots))
    used = slots[:len(parts)]
    note = (f"concurrent: {len(parts)} harness compare processes ran at the same time on GPU slots "
            f"{' | '.join(used)} of this host (engines split over them)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return [Child(slot=s, engines=p, argv=[sys.executable, "-m", "harness", "compare", *child_args(args, p, note)],
                  log=log_dir / f"{stamp}-gpus-{s.replace(',', '-')}.log") for s, p in zip(used, parts)]


def run_children(children: list[Child], report: Callable[[str], None], poll_s: float = 2.0) -> int:
    """Start every child in its own process group, wait for all; Ctrl-C interrupts them all. Returns the exit code
    (0 all complete, 1 any partial or failed, 130 interrupted)."""
    for c in children:
        c.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=c.slot)
        with open(c.log, "wb") as fh:
            c.proc = subprocess.Popen(c.argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        report(f"GPUs {c.slot}: {', '.join(c.engines)} (pid {c.proc.pid}, log {c.log})")
    interrupted = False
    try:
        while any(c.returncode is None for c in children):
            for c in children:
                if c.returncode is None and c.proc is not None and (rc := c.proc.poll()) is not None:
                    c.returncode = rc
                    c.run_id = _run_id_from_log(c.log)
                    report(f"GPUs {c.slot}: finished rc={rc} after {time.monotonic() - c.started:.0f} s, run {c.run_id}")
            time.sleep(poll_s)
    except KeyboardInterrupt:
        interrupted = True
        report("interrupted: stopping every child (SIGINT to each process group)")
        _stop(children)
    for c in children:
        if c.run_id is None:
            c.run_id = _run_id_from_log(c.log)
    if interrupted:
        return 130
    return 0 if all(c.returncode == 0 for c in children) else 1


def _stop(children: list[Child], grace_s: float = 120.0) -> None:
    live = [c for c in children if c.proc is not None and c.proc.poll() is None]
    for c in live:
        try:
            os.killpg(c.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for c in live:
        try:
            c.returncode = c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(c.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            c.returncode = c.proc.wait()
