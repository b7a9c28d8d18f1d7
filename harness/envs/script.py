"""Run a stdlib-only script inside an engine environment and read back the one JSON line it prints after a marker
(the environment probe, the FlashInfer JIT warm-up)."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Mapping

from harness.errors import HarnessError


def run_marked(cmd: list[str], *, env: Mapping[str, str], mark: str, who: str, what: str, timeout: float,
               tail_lines: int = 10) -> Any:
    """``cmd[0]`` is the environment's interpreter; ``who`` names the environment or engine in errors, ``what`` the
    script ("the probe"). The last stdout line starting with ``mark`` is parsed as JSON; without one, the error
    carries the output's last ``tail_lines`` lines."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(env))
    except FileNotFoundError as exc:
        raise HarnessError(f"{who}: interpreter {cmd[0]} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{who}: {what} timed out after {timeout:.0f}s") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(mark):
            return json.loads(line[len(mark):])
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-tail_lines:])
    raise HarnessError(f"{who}: {what} gave no result (exit {proc.returncode}):\n{tail}")
