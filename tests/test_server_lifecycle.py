"""Server lifecycle against the stand-in engine: healthy start, crash during startup, timeout, sure stop."""

import sys
import time

import pytest

from conftest import FAKE_ENGINE, processes_with
from harness.engines import free_port
from harness.server import ManagedServer, ServerStartError, group_pids


def fake(tmp_path, *flags, startup=20.0, stop=5.0, token="lifecycle"):
    port = free_port()
    argv = [sys.executable, str(FAKE_ENGINE), "--port", str(port), "--model", token, *flags]
    return ManagedServer(argv, env={"PATH": "/usr/bin:/bin"}, log_path=tmp_path / "server.log",
                         base_url=f"http://127.0.0.1:{port}", startup_timeout_s=startup, stop_timeout_s=stop, name="fake")


def test_healthy_start_and_clean_stop(tmp_path):
    srv = fake(tmp_path, "--startup-delay", "0.5", token="tok-healthy")
    srv.start()
    secs = srv.wait_healthy(poll_s=0.1)
    assert secs >= 0.4
    pgid = srv.pgid
    rep = srv.stop()
    assert rep.signal_used == "SIGTERM" and rep.leftover_pids == []
    assert group_pids(pgid) == [] and processes_with("tok-healthy") == []
    assert "fake_engine" in (tmp_path / "server.log").read_text()


def test_crash_during_startup_reports_log_tail(tmp_path):
    srv = fake(tmp_path, "--startup-delay", "0.3", "--crash-on-start", token="tok-crash")
    srv.start()
    with pytest.raises(ServerStartError) as ei:
        srv.wait_healthy(poll_s=0.1)
    assert "exited with code 1 during startup" in str(ei.value)
    assert ei.value.returncode == 1 and "fake_engine" in ei.value.log_tail
    srv.stop()
    assert processes_with("tok-crash") == []


def test_startup_timeout_kills_server(tmp_path):
    srv = fake(tmp_path, "--startup-delay", "60", startup=1.5, token="tok-timeout")
    srv.start()
    t0 = time.monotonic()
    with pytest.raises(ServerStartError, match="not healthy after 2 s"):
        srv.wait_healthy(poll_s=0.1)
    assert time.monotonic() - t0 < 10
    assert processes_with("tok-timeout") == []


def test_stop_kills_whole_group_and_sigterm_deaf_processes(tmp_path):
    # a "server" that ignores SIGTERM and leaves a grandchild behind
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "subprocess.Popen([sys.executable, '-c', 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)', 'tok-grandchild']); "
              "time.sleep(300)")
    srv = ManagedServer([sys.executable, "-c", script, "tok-deaf"], env={"PATH": "/usr/bin:/bin"}, log_path=tmp_path / "s.log",
                        base_url="http://127.0.0.1:9", stop_timeout_s=1.0, name="deaf")
    srv.start()
    deadline = time.monotonic() + 10
    while len(group_pids(srv.pgid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_pids(srv.pgid)) == 2
    rep = srv.stop()
    assert rep.signal_used == "SIGKILL" and rep.leftover_pids == []
    assert processes_with("tok-grandchild") == [] and processes_with("tok-deaf") == []


def test_context_manager_stops_on_exception(tmp_path):
    srv = fake(tmp_path, token="tok-ctx")
    with pytest.raises(RuntimeError):
        with srv:
            srv.wait_healthy(poll_s=0.1)
            raise RuntimeError("boom")
    assert processes_with("tok-ctx") == []


def test_deferred_signals_hold_ctrl_c_until_the_spawn_is_bound():
    """A Ctrl-C while a child is being spawned is raised after the block, once the caller holds the process."""
    import os
    import signal
    import subprocess
    import sys

    from harness.server import deferred_signals

    before = signal.getsignal(signal.SIGINT)
    proc = None
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)  # lands "inside Popen"
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    assert proc is not None and proc.poll() is None  # bound and alive: the caller's cleanup can stop it
    proc.kill()
    proc.wait()
    assert signal.getsignal(signal.SIGINT) is before
    # nothing held: nothing raised
    with deferred_signals():
        pass
