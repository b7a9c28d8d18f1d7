"""Server lifecycle: start an engine server in its own process group, wait until healthy, stop it for sure.

* Own process group (``start_new_session``), log file per server, health wait with a timeout and early
  detection of a dead process (the error carries the log tail).
* ``stop()``: SIGTERM to the whole group, then SIGKILL after the grace period, then any straggler that still
  carries the group id. It runs on normal exit, on exceptions, on Ctrl-C (KeyboardInterrupt) and on SIGTERM to
  the harness (see ``install_signal_handlers``), and from ``atexit`` as a last resort, so no server survives
  the harness.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import httpx

from harness.errors import HarnessError

_LIVE: "set[ManagedServer]" = set()
_LIVE_LOCK = threading.Lock()


class ServerError(HarnessError):
    def __init__(self, message: str, *, stage: str, log_tail: str = "", returncode: int | None = None):
        super().__init__(message)
        self.stage = stage
        self.log_tail = log_tail
        self.returncode = returncode


class ServerStartError(ServerError):
    pass


class ServerDied(ServerError):
    pass


def tail_text(path: Path, max_lines: int = 60, max_bytes: int = 64_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-max_lines:])


def group_pids(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (Linux /proc scan)."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            # pid (comm) state ppid pgrp ... ; comm may contain spaces, so split after the last ')'
            fields = stat[stat.rindex(")") + 2 :].split()
            state, pgrp = fields[0], int(fields[2])
            if pgrp == pgid and state != "Z":
                pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return pids


@dataclass
class StopReport:
    seconds: float
    signal_used: str  # "none" (already exited) | "SIGTERM" | "SIGKILL"
    returncode: int | None
    leftover_pids: list[int] = field(default_factory=list)


class ManagedServer:
    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        base_url: str,
        health_path: str = "/health",
        startup_timeout_s: float = 1800,
        stop_timeout_s: float = 60,
        name: str = "server",
        cwd: str | None = None,
    ):
        self.argv = argv
        self.env = env
        self.log_path = Path(log_path)
        self.base_url = base_url.rstrip("/")
        self.health_path = health_path
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.name = name
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.healthy_at: float | None = None
        self._log_fh = None
        self.stop_report: StopReport | None = None

    # ------------------------------------------------------------------ start / health
    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(f"# harness: starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log_fh.flush()
        self.started_at = time.monotonic()
        with deferred_signals():  # an interrupt now is raised once the server is known, so stop() can reach it
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdout=self._log_fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                self._log_fh.close()
                raise ServerStartError(f"{self.name}: cannot execute {self.argv[0]!r}: {exc}",
                                       stage="server-start") from exc
            with _LIVE_LOCK:
                _LIVE.add(self)

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def log_tail(self, max_lines: int = 60) -> str:
        return tail_text(self.log_path, max_lines)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def read_log(self, start: int = 0, end: int | None = None) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(start)
                data = fh.read() if end is None else fh.read(max(0, end - start))
            return data.decode("utf-8", errors="replace")
        except OSError:
            return ""

    def wait_healthy(self, on_tick: Callable[[float], None] | None = None, poll_s: float = 1.0) -> float:
        """Block until GET health_path answers 200; return seconds since spawn."""
        assert self.proc is not None and self.started_at is not None
        deadline = self.started_at + self.startup_timeout_s
        url = self.base_url + self.health_path
        with httpx.Client(timeout=5.0) as client:
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    raise ServerStartError(
                        f"{self.name} exited with code {rc} during startup (log: {self.log_path})",
                        stage="server-start",
                        log_tail=self.log_tail(),
                        returncode=rc,
                    )
                try:
                    if client.get(url).status_code == 200:
                        self.healthy_at = time.monotonic()
                        return self.healthy_at - self.started_at
                except httpx.HTTPError:
                    pass
                now = time.monotonic()
                if on_tick:
                    on_tick(now - self.started_at)
                if now >= deadline:
                    tail = self.log_tail()
                    self.stop()
                    raise ServerStartError(
                        f"{self.name} not healthy after {self.startup_timeout_s:.0f} s (log: {self.log_path})",
                        stage="server-start",
                        log_tail=tail,
                    )
                time.sleep(poll_s)

    def ensure_alive(self, stage: str) -> None:
        rc = self.returncode()
        if rc is not None:
            raise ServerDied(
                f"{self.name} died (exit code {rc}) during {stage} (log: {self.log_path})",
                stage=stage,
                log_tail=self.log_tail(),
                returncode=rc,
            )

    # ------------------------------------------------------------------ stop
    def stop(self) -> StopReport:
        if self.stop_report is not None:
            return self.stop_report
        t0 = time.monotonic()
        used = "none"
        rc = None
        if self.proc is not None:
            pgid = self.proc.pid
            if self.proc.poll() is None or group_pids(pgid):
                used = "SIGTERM"
                _killpg(pgid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    pass
                # children may outlive the leader; give the group the rest of the grace period
                deadline = t0 + self.stop_timeout_s
                while group_pids(pgid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if self.proc.poll() is None or group_pids(pgid):
                    used = "SIGKILL"
                    _killpg(pgid, signal.SIGKILL)
                    for pid in group_pids(pgid):
                        _kill(pid, signal.SIGKILL)
                    try:
                        self.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                    end = time.monotonic() + 10
                    while group_pids(pgid) and time.monotonic() < end:
                        time.sleep(0.1)
            rc = self.proc.poll()
            leftover = group_pids(pgid)
        else:
            leftover = []
        if self._log_fh is not None:
            try:
                self._log_fh.write(f"# harness: stopped {self.name} ({used}, rc={rc})\n".encode())
                self._log_fh.close()
            except (OSError, ValueError):
                pass
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self.stop_report = StopReport(time.monotonic() - t0, used, rc, leftover)
        return self.stop_report

    def __enter__(self) -> "ManagedServer":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for s in live:
        try:
            s.stop()
        except Exception:  # noqa: BLE001 - last-resort cleanup must not raise
            pass


atexit.register(stop_all)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the harness receives SIGTERM/SIGHUP, so cleanup runs like on Ctrl-C."""


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM / SIGHUP while a child process is being spawned, and deliver them right after.

    An interrupt that lands inside ``subprocess.Popen`` (after the fork, before it returns) leaves a started child
    that the caller never learnt about, in its own session, so nothing stops it: a load generator or a server
    orphaned that way outlived the harness. With this, the interrupt is raised once the ``Popen`` object is bound,
    so the caller's cleanup sees the child. Only in the main thread (where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for signum in held[:1]:
            signal.raise_signal(signum)  # the restored handler raises (KeyboardInterrupt / Terminated)


def install_signal_handlers() -> None:
    def handler(signum: int, frame: object) -> None:  # noqa: ARG001
        raise Terminated(f"received signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass


def gpu_compute_pids() -> list[int] | None:
    """PIDs that hold a GPU context (nvidia-smi), or None where nvidia-smi is absent."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [int(x) for x in out.stdout.split() if x.strip().isdigit()]


@contextmanager
def running(server: ManagedServer, on_tick: Callable[[float], None] | None = None) -> Iterator[ManagedServer]:
    """Start, wait healthy, yield, and always stop."""
    server.start()
    try:
        server.wait_healthy(on_tick)
        yield server
    finally:
        server.stop()


@dataclass
class LiveServer:
    base_url: str
    served_model_name: str
    engine: str
    dummy: bool  # random weights of any kind (dummy or random-init): quality numbers from it are meaningless
    server: "ManagedServer"
    environment: dict | None = None  # machine, engine versions, patch stack, exact server command (for records)
    weights: str = "real"  # harness.synth.weights_kind: real | dummy | random-init


@contextmanager
def managed_server(
    engine: str,
    model: str,
    mtp: bool = False,
    run_dir: Path | None = None,
    *,
    model_path: Path | None = None,
    assistant_path: Path | None = None,
    overrides: Path | None = None,
    tp: int = 1,
    server_args: list[str] | None = None,
    patched_tree: Path | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> Iterator[LiveServer]:
    """Start an engine server from the definitions (as ``harness bench`` does), yield its URL, always stop it."""
    from harness.definitions import load_definitions
    from harness.engines import build_launch
    from harness.paths import state_dir
    from harness.synth import resolve_model_path, weights_kind

    defs = load_definitions(overrides=overrides)
    mdef = defs.model(model)
    path, dummy, a_path = resolve_model_path(mdef, model_path, assistant=mtp, assistant_path=assistant_path)
    plan = build_launch(defs, engine, mdef, path, dummy=dummy, mtp=mtp, assistant_path=a_path, tp=tp,
                        extra_args=server_args, patched_tree=patched_tree)
    log_dir = Path(run_dir) / "logs" if run_dir else state_dir() / "serve"
    srv = ManagedServer(plan.argv, env=plan.full_env(), log_path=log_dir / f"{engine}__{'mtp-on' if mtp else 'mtp-off'}.log",
                        base_url=plan.base_url, health_path=plan.engine.health_path,
                        startup_timeout_s=plan.engine.startup_timeout_s, stop_timeout_s=plan.engine.stop_timeout_s, name=engine)
    environment = server_environment(plan, engine, patched_tree)
    with running(srv, on_tick):
        # for quality records "dummy" means random weights of any kind (--load-format dummy or random-init);
        # `weights` tells them apart
        kind = weights_kind(path)
        yield LiveServer(plan.base_url, plan.served_model_name, engine, kind != "real", srv, environment, kind)


def server_environment(plan, engine: str, patched_tree: Path | None) -> dict:
    """What an evaluation record needs to say where its numbers came from (as a run manifest does)."""
    import os

    from harness.engines import patched_tree_default
    from harness.machine import engine_info, machine_info

    if plan.engine.overlay == "patch-stack" and patched_tree is None:
        patched_tree = patched_tree_default()  # the tree build_launch put in front of the installed sglang
    info = engine_info(engine, plan.engine, patched_tree)
    machine = machine_info()
    machine.torch = info.packages.get("torch")
    return {"machine": machine.model_dump(mode="json"), "engine": info.model_dump(mode="json"),
            "server_command": list(plan.argv), "server_env": dict(plan.env),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
