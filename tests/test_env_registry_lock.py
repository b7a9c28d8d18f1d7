"""Concurrent registrations (two `harness env install-bundle` at once) keep every record."""

import multiprocessing as mp

from harness.envs import registry


def _register(state: str, name: str, n: int) -> None:
    import os

    os.environ["HARNESS_STATE"] = state
    for i in range(n):
        registry.register(registry.EnvRecord(engine=f"{name}{i}", python="/usr/bin/python3", kind=registry.KINDS[0]))


def test_parallel_register_keeps_all_records(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE", str(tmp_path))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_register, args=(str(tmp_path), name, 25)) for name in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert set(registry.all_records()) == {f"{n}{i}" for n in "abc" for i in range(25)}
