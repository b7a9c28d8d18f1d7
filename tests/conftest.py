"""Shared fixtures: an isolated state dir, and definition overrides that point the engines at the stand-in
server (tests/fake_engine.py) and the load generator at the stand-in client (tests/fake_bench_client.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FAKE_ENGINE = TESTS / "fake_engine.py"
FAKE_CLIENT = TESTS / "fake_bench_client.py"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("HARNESS_STATE", str(state))
    monkeypatch.delenv("HARNESS_OVERRIDES", raising=False)
    return state


def fake_overrides(tmp_path: Path, *, engine_flags: dict[str, list[str]] | None = None, client_flags: list[str] | None = None,
                   startup_timeout: float = 30, stop_timeout: float = 10, served: str | None = None) -> Path:
    """An overrides file: every engine profile launches the fake engine; the load generator is the fake client."""
    engine_flags = engine_flags or {}
    engines = {}
    for name, flavor in (("sglang", "sglang"), ("sglang-patched", "sglang"), ("vllm", "vllm")):
        engines[name] = {
            "python": sys.executable,
            "overlay": "none",
            "launch": ["{python}", str(FAKE_ENGINE), "--host", "{host}", "--port", "{port}", "--model", "{served_model_name}",
                       "--flavor", flavor] + engine_flags.get(name, []),
            "dummy_args": [], "text_only_args": [], "env_vars": {"FAKE_ENGINE_LOG_DIR": str(tmp_path)},
            "startup_timeout_s": startup_timeout, "stop_timeout_s": stop_timeout,
        }
    data = {
        "engines": engines,
        "loadgen": {"python": sys.executable, "command": ["{python}", str(FAKE_CLIENT)], "extra_args": list(client_flags or []),
                    "timeout_s": 120},
        # a small vocabulary keeps the synthetic tokenizer quick to write
        "models": {"26B-A4B": {"hf_config": {"text_config": {"vocab_size": 512}}}},
    }
    if served:  # a unique served-model name lands on the fake server's command line
        data["models"]["26B-A4B"]["hf_repo"] = f"test/{served}"
    p = tmp_path / "overrides.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def processes_with(token: str) -> list[int]:
    """PIDs whose command line contains ``token`` (to prove no server survived)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmd and state != "Z":
            out.append(int(entry))
    return out
