"""`harness bench` end to end against the stand-in engine and client: records, failures, Ctrl-C, no orphans."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, fake_overrides, processes_with


def harness(*args, env=None, timeout=180):
    env = env or os.environ.copy()
    env["COLUMNS"] = "250"
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def start_harness_until(token: str, *args: str, timeout: float = 60) -> subprocess.Popen:
    """Start `harness ARGS` in the background and wait until a process whose command line holds `token` runs."""
    p = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not processes_with(token):
        assert p.poll() is None
        time.sleep(0.1)
    assert processes_with(token), f"no process with {token!r} started"
    return p


def only_run(runs: Path) -> Path:
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_bench_records_run(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang,vllm", "-m", "26B-A4B", "-s", "chat,decode-burst", "--num-prompts", "4",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stdout + r.stderr
    rd = only_run(runs)
    manifest = json.loads((rd / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["weights"] == "dummy" and manifest["model"] == "26B-A4B"
    from harness.runs import source_digest

    assert manifest["harness_tree_sha256"] == source_digest()
    assert set(manifest["engines"]) == {"sglang", "vllm"}
    assert len(manifest["cells"]) == 4 and manifest["scenarios"]["chat"]["input_len"] == 1000
    cells = sorted((rd / "cells").glob("*.json"))
    assert [c.stem for c in cells] == sorted(manifest["cells"])
    for c in cells:
        rec = json.loads(c.read_text())
        assert rec["status"] == "ok" and rec["metrics"]["completed"] == 4 and rec["metrics"]["failed"] == 0
        assert rec["metrics"]["total_output_tokens"] > 0 and rec["metrics"]["tpot_ms"]["median"] is not None
        assert rec["client_command"][1].endswith("fake_bench_client.py") and "--temperature" in rec["client_command"]
        assert "--load-format" not in rec["server_command"]  # the fake profiles define no dummy args
        assert rec["timings"]["load_s"] > 0 and rec["timings"]["harness_overhead_s"] < 2.0
        assert (rd / rec["raw_result"]).is_file()
    stops = manifest["extra"]["server_stops"]
    assert set(stops) == {"sglang__mtp-off", "vllm__mtp-off"} and all(s["leftover_pids"] == [] for s in stops.values())
    # runs list/show see it
    r = harness("runs", "list", "--runs-dir", str(runs), "--json")
    assert json.loads(r.stdout)[0]["cells_ok"] == 4
    r = harness("runs", "show", rd.name, "--runs-dir", str(runs))
    assert r.returncode == 0 and "vllm__chat__mtp-off__r1" in r.stdout


def test_server_crash_mid_run_keeps_partial_and_goes_on(tmp_path):
    # warmup (4 requests) + measured chat (4) fit; the next scenario crashes the sglang server
    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--crash-after-requests", "10"]})
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang,vllm", "-m", "26B-A4B", "-s", "chat,decode-burst,balanced-500", "--num-prompts", "4",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 1
    rd = only_run(runs)
    rec = {p.stem: json.loads(p.read_text()) for p in (rd / "cells").glob("*.json")}
    assert rec["sglang__chat__mtp-off__r1"]["status"] == "ok"
    crashed = rec["sglang__decode-burst__mtp-off__r1"]
    assert crashed["status"] == "failed" and crashed["failure"]["stage"] in ("warmup", "load")
    assert "died" in crashed["failure"]["message"] and crashed["failure"]["log_tail"]
    assert rec["sglang__balanced-500__mtp-off__r1"]["status"] == "failed"
    assert "not run" in rec["sglang__balanced-500__mtp-off__r1"]["failure"]["message"]
    # the rest of the matrix went on
    assert all(rec[f"vllm__{s}__mtp-off__r1"]["status"] == "ok" for s in ("chat", "decode-burst", "balanced-500"))
    assert json.loads((rd / "manifest.json").read_text())["status"] == "partial"
    assert processes_with(str(tmp_path)) == []


def test_server_that_never_starts_is_recorded_failed(tmp_path):
    ov = fake_overrides(tmp_path, engine_flags={"vllm": ["--crash-on-start", "--startup-delay", "0.5"]})
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 1
    rec = json.loads((only_run(runs) / "cells" / "vllm__chat__mtp-off__r1.json").read_text())
    assert rec["status"] == "failed" and rec["failure"]["stage"] == "server-start"
    assert "fake_engine" in rec["failure"]["log_tail"]


def test_ctrl_c_records_interrupted_and_leaves_no_server(tmp_path):
    ov = fake_overrides(tmp_path, engine_flags={"sglang": ["--token-delay", "0.05"]}, served="tok-ctrl-c-server")
    runs = tmp_path / "runs"
    p = start_harness_until("fake_bench_client.py", "bench", "-e", "sglang", "-m", "26B-A4B", "-s", "chat",
                            "--num-prompts", "8", "--overrides", str(ov), "--runs-dir", str(runs))
    assert processes_with("tok-ctrl-c-server"), "server not running"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    rd = only_run(runs)
    rec = json.loads((rd / "cells" / "sglang__chat__mtp-off__r1.json").read_text())
    assert rec["status"] == "failed" and rec["failure"]["stage"] == "interrupted"
    assert rec["timings"]["server_start_s"] > 0  # the server's start-up is kept with the cell that ended it
    assert json.loads((rd / "manifest.json").read_text())["status"] == "interrupted"
    time.sleep(0.5)
    assert processes_with("tok-ctrl-c-server") == []
    assert processes_with("fake_bench_client.py") == []


def test_dry_run_prints_commands_and_runs_nothing(tmp_path):
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "summarization", "--dry-run", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    assert "vllm.entrypoints.cli.main serve" in r.stdout and "bench serve" in r.stdout and "--random-input-len 8000" in r.stdout
    assert not runs.exists()
    # warmup walks the measured phase's shapes: same prompt count, another seed
    warm = next(line for line in r.stdout.splitlines() if line.startswith("# warmup:"))
    assert "--num-prompts 80" in warm and "--seed 1000" in warm and "--save-result" not in warm


def test_unknown_model_is_a_clear_error(tmp_path):
    r = harness("bench", "-e", "vllm", "-m", "gemma-9", "-s", "chat", "--dry-run")
    assert r.returncode == 2 and "unknown model 'gemma-9'" in r.stderr


def test_run_aborted_mid_way_is_recorded_failed(tmp_path):
    """An error after the run directory exists leaves failed records for the cells it never reached."""
    import yaml

    ov = fake_overrides(tmp_path)
    data = yaml.safe_load(ov.read_text())
    data["engines"]["vllm"]["mtp_args"] = []  # vllm cannot do MTP in this profile: its session aborts the run
    data["engines"]["sglang"]["mtp_args"] = []
    ov.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--mtp", "--num-prompts", "2",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 2 and "defines no mtp_args" in r.stderr
    rd = only_run(runs)
    assert json.loads((rd / "manifest.json").read_text())["status"] == "failed"
    rec = json.loads((rd / "cells" / "vllm__chat__mtp-on__r1.json").read_text())
    assert rec["status"] == "failed" and "not run: the run aborted" in rec["failure"]["message"]


def test_runs_export_import_round_trip_and_refusals(tmp_path):
    import tarfile

    ov = fake_overrides(tmp_path)
    src = tmp_path / "gpu-runs"
    assert harness("bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat", "--num-prompts", "2", "--overrides", str(ov),
                   "--runs-dir", str(src)).returncode == 0
    rd = only_run(src)
    archive = tmp_path / "out" / "runs.tgz"
    r = harness("runs", "export", rd.name, "--runs-dir", str(src), "--out", str(archive))
    assert r.returncode == 0, r.stderr
    with tarfile.open(archive) as t:
        names = t.getnames()
    assert f"{rd.name}/manifest.json" in names and not any("/logs" in n for n in names)
    dst = tmp_path / "repo-runs"
    r = harness("runs", "import", str(archive), "--runs-dir", str(dst))
    assert r.returncode == 0 and f"imported {rd.name}" in r.stdout
    assert (dst / rd.name / "cells" / "vllm__chat__mtp-off__r1.json").read_text() == (rd / "cells" / "vllm__chat__mtp-off__r1.json").read_text()
    r = harness("runs", "import", str(archive), "--runs-dir", str(dst))
    assert r.returncode == 2 and "never overwritten" in r.stderr
    bad = tmp_path / "bad.tgz"
    with tarfile.open(bad, "w:gz") as t:
        t.add(rd / "manifest.json", arcname="../escape.json")
    r = harness("runs", "import", str(bad), "--runs-dir", str(dst))
    assert r.returncode == 2 and "refusing member" in r.stderr


def test_serve_keeps_server_up_until_ctrl_c(tmp_path):
    ov = fake_overrides(tmp_path, served="tok-serve-server")
    env = os.environ.copy()
    env["COLUMNS"] = "250"
    p = subprocess.Popen([sys.executable, "-m", "harness", "serve", "-e", "vllm", "-m", "26B-A4B", "--overrides", str(ov),
                          "--log", str(tmp_path / "serve.log")], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        lines.append(line)
        if "healthy after" in line:
            break
    assert any("healthy after" in x for x in lines), lines
    url = next(x for x in lines if "healthy after" in x).split(" at ")[1].split()[0]
    import urllib.request

    assert urllib.request.urlopen(url + "/health", timeout=5).status == 200
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    assert processes_with("tok-serve-server") == []


def test_repeat_skips_warmup_after_an_ok_cell_of_the_same_scenario(tmp_path):
    ov = fake_overrides(tmp_path)
    runs = tmp_path / "runs"
    r = harness("bench", "-e", "sglang", "-m", "26B-A4B", "-s", "chat,decode-burst", "--repeats", "2", "--num-prompts", "3",
                "--overrides", str(ov), "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    rd = only_run(runs)
    rec = {p.stem: json.loads(p.read_text()) for p in (rd / "cells").glob("*.json")}
    assert all(v["status"] == "ok" for v in rec.values()) and len(rec) == 4
    for s in ("chat", "decode-burst"):
        first, second = rec[f"sglang__{s}__mtp-off__r1"]["timings"], rec[f"sglang__{s}__mtp-off__r2"]["timings"]
        assert first["warmup_skipped"] is None and first["warmup_s"] > 0
        assert second["warmup_s"] == 0.0 and second["warmup_skipped"].startswith(f"sglang__{s}__mtp-off__r1 ")
    # the warmup client ran once per scenario: its (unsaved) runs are in the first cells' client logs only
    assert "# harness:" in (rd / "logs" / "sglang__chat__mtp-off__r1.client.log").read_text()
    assert (rd / "logs" / "sglang__chat__mtp-off__r2.client.log").read_text().count("# harness:") == 1
    assert (rd / "logs" / "sglang__chat__mtp-off__r1.client.log").read_text().count("# harness:") == 2
    # the dry run says so
    r = harness("bench", "-e", "sglang", "-m", "26B-A4B", "-s", "chat", "--repeats", "2", "--dry-run", "--overrides", str(ov))
    assert "# warmup: skipped if sglang__chat__mtp-off__r1 runs ok" in r.stdout


def test_sigterm_during_server_start_saves_interrupted_before_the_slow_stop(tmp_path):
    """A supervisor that SIGTERMs the harness while a server starts, and SIGKILLs it if it takes long, must find the
    run already saved as interrupted while the harness is still stopping a slow server (vLLM TP=2 took >40 s)."""
    ov = fake_overrides(tmp_path, engine_flags={"vllm": ["--startup-delay", "60", "--slow-stop", "4"]},
                        served="slow-stop-server")
    runs = tmp_path / "runs"
    p = start_harness_until("slow-stop-server", "bench", "-e", "vllm", "-m", "26B-A4B", "-s", "chat",
                            "--num-prompts", "2", "--overrides", str(ov), "--runs-dir", str(runs))
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # inside the server's 4 s stop
    assert p.poll() is None and processes_with("slow-stop-server"), "the stop was not slow: the test proves nothing"
    assert json.loads((only_run(runs) / "manifest.json").read_text())["status"] == "interrupted"
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    assert json.loads((only_run(runs) / "manifest.json").read_text())["status"] == "interrupted"
    assert processes_with("slow-stop-server") == []
    # the cell that server was started for is kept, saying how far the start had got
    rec = json.loads((only_run(runs) / "cells" / "vllm__chat__mtp-off__r1.json").read_text())
    assert rec["status"] == "failed" and rec["failure"]["stage"] == "interrupted"
    assert "while the vllm__mtp-off server was starting" in rec["failure"]["message"]
    assert "fake_engine: listening" in rec["failure"]["log_tail"]


def test_missing_engine_environment_is_a_clear_error_before_any_run(tmp_path):
    """No environment registered and the default interpreter cannot import the engine: refuse before a run
    directory exists, naming each engine, instead of recording every cell as a server-start failure."""
    env = os.environ.copy()
    env["HARNESS_STATE"] = str(tmp_path / "state")  # nothing registered
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "E2B", "--engines", "sglang,vllm", "-s", "chat", "--runs-dir", str(runs), "--no-report",
                env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "engine environment check failed before the run started" in r.stderr
    assert "engine 'sglang'" in r.stderr and "cannot import 'sglang'" in r.stderr and "env install-bundle" in r.stderr
    assert "engine 'vllm'" in r.stderr
    assert not runs.exists()
