"""Run a stdlib-only script inside an engine environment and read back the one JSON line it prints after a marker
(the environment probe, the FlashInfer JIT warm-up)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any, Callable, Mapping

from harness.errors import HarnessError
from harness.server import deferred_signals


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the script and everything it started (it runs in its own session: nvcc and ninja go too)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_marked(cmd: list[str], *, env: Mapping[str, str], mark: str, who: str, what: str, timeout: float,
               tail_lines: int = 10, started: Callable[[subprocess.Popen], None] | None = None) -> Any:
    """``cmd[0]`` is the environment's interpreter; ``who`` names the environment or engine in errors, ``what`` the
    script ("the probe"). The last stdout line starting with ``mark`` is parsed as JSON; without one, the error
    carries the output's last ``tail_lines`` lines. The script runs in its own session; ``started`` gets its
    process (to stop it from elsewhere with :func:`kill_group`); a timeout kills the whole group."""
    proc = None
    try:
        with deferred_signals():  # a Ctrl-C inside Popen is raised once proc is bound, so the script is killed
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                        text=True, env=dict(env), start_new_session=True)
            except FileNotFoundError as exc:
                raise HarnessError(f"{who}: interpreter {cmd[0]} not found ({exc})") from exc
        if started is not None:
            started(proc)
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc)
        proc.communicate()
        raise HarnessError(f"{who}: {what} timed out after {timeout:.0f}s") from exc
    except BaseException:  # Ctrl-C in the caller: the script must not outlive it
        if proc is not None:
            kill_group(proc)
            proc.communicate()
        raise
    for line in reversed(stdout.splitlines()):
        if line.startswith(mark):
            return json.loads(line[len(mark):])
    tail = "\n".join((stdout + stderr).strip().splitlines()[-tail_lines:])
    raise HarnessError(f"{who}: {what} gave no result (exit {proc.returncode}):\n{tail}")
