"""`harness env warm-jit`: the engine's jit_warmup generators run in its environment (a stand-in FlashInfer
package here: the real build needs nvcc and a GPU host)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, fake_overrides, processes_with
from harness.definitions import load_definitions
from harness.envs.jit_warm import generators_for
from harness.errors import HarnessError

FAKE_FI = '''
import os
from pathlib import Path

OUT = Path(os.environ["FAKE_FI_DIR"])


class Spec:
    def __init__(self, name, aot=False, fail=None):
        self.name, self._aot, self._fail = name, aot, fail

    @property
    def is_aot(self):
        return self._aot

    @property
    def aot_path(self):
        return OUT / "aot" / (self.name + ".so")

    @property
    def jit_library_path(self):
        return OUT / "cached_ops" / self.name / (self.name + ".so")

    def build(self, verbose):
        with open(OUT / "builds.log", "a") as fh:
            fh.write(self.name + "\\n")
        if self._fail:
            raise RuntimeError(self._fail)
        self.jit_library_path.parent.mkdir(parents=True, exist_ok=True)
        self.jit_library_path.write_bytes(b"so")


def gen_comm():
    return Spec("fake_comm")


def gen_broken():
    return Spec("fake_broken", fail="nvcc fatal: cannot find CUDA")


def gen_shipped():
    return Spec("fake_shipped", aot=True)


def gen_silent():
    return Spec("fake_silent", fail=None)


class SlowSpec(Spec):
    def build(self, verbose):
        import time
        time.sleep(float(os.environ.get("FAKE_FI_SLEEP", "0")))
        Spec.build(self, verbose)


def gen_slow():
    return SlowSpec("fake_slow")
'''


def harness(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture()
def setup(tmp_path):
    site = tmp_path / "site"
    (site / "fakefi").mkdir(parents=True)
    (site / "fakefi" / "__init__.py").write_text(FAKE_FI)
    out = tmp_path / "fi-cache"
    out.mkdir()
    ov = tmp_path / "overrides.yaml"
    ov.write_text(yaml.safe_dump({"engines": {"vllm": {
        "python": sys.executable, "pythonpath": [str(site)], "env_vars": {"FAKE_FI_DIR": str(out)},
        "jit_warmup": [{"generator": "fakefi:gen_comm", "min_tp": 2}],
    }}}))
    return ov, out


def builds(out: Path) -> list[str]:
    log = out / "builds.log"
    return log.read_text().split() if log.exists() else []


def test_builds_the_engines_modules_in_its_environment_then_finds_them_up_to_date(setup):
    ov, out = setup
    r = harness("env", "warm-jit", "-e", "vllm", "--tp", "2", "--json", "--overrides", str(ov))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["vllm"]
    assert [(x["module"], x["status"]) for x in res] == [("fake_comm", "built")]
    assert res[0]["library"] == str(out / "cached_ops" / "fake_comm" / "fake_comm.so")  # the engine's env_vars reached it
    r = harness("env", "warm-jit", "-e", "vllm", "--tp", "2", "--json", "--overrides", str(ov))
    assert r.returncode == 0, r.stderr
    assert [x["status"] for x in json.loads(r.stdout)["vllm"]] == ["up-to-date"]
    assert builds(out) == ["fake_comm", "fake_comm"]  # FlashInfer's build (ninja) decides whether anything is stale


def test_below_min_tp_nothing_is_built(setup):
    ov, out = setup
    r = harness("env", "warm-jit", "-e", "vllm", "--tp", "1", "--json", "--overrides", str(ov))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"vllm": []}
    assert "nothing to build at TP=1" in r.stderr and builds(out) == []


def test_a_failed_build_exits_1_naming_the_error_and_the_others_still_run(setup):
    ov, out = setup
    r = harness("env", "warm-jit", "-e", "vllm", "--generator", "fakefi:gen_broken", "--generator", "fakefi:gen_shipped",
                "--generator", "nosuch.module:gen", "--json", "--overrides", str(ov))
    assert r.returncode == 1
    res = {x["generator"]: x for x in json.loads(r.stdout)["vllm"]}
    assert res["fakefi:gen_broken"]["status"] == "failed"
    assert "nvcc fatal: cannot find CUDA" in res["fakefi:gen_broken"]["error"]
    assert "nvcc fatal: cannot find CUDA" in r.stderr
    assert res["fakefi:gen_shipped"]["status"] == "aot"  # shipped ahead of time: not built
    assert res["nosuch.module:gen"]["status"] == "failed" and "ModuleNotFoundError" in res["nosuch.module:gen"]["error"]
    assert builds(out) == ["fake_broken"]


def test_a_build_that_writes_no_library_is_a_failure(setup, tmp_path):
    ov, out = setup
    (tmp_path / "site" / "fakefi" / "__init__.py").write_text(
        FAKE_FI.replace("        self.jit_library_path.parent.mkdir", "        return\n        self.jit_library_path.parent.mkdir"))
    r = harness("env", "warm-jit", "-e", "vllm", "--generator", "fakefi:gen_silent", "--json", "--overrides", str(ov))
    assert r.returncode == 1
    assert "without writing" in json.loads(r.stdout)["vllm"][0]["error"]


def test_missing_interpreter_is_a_clear_error(setup, tmp_path):
    ov, _ = setup
    data = yaml.safe_load(ov.read_text())
    data["engines"]["vllm"]["python"] = str(tmp_path / "no-such-python")
    ov.write_text(yaml.safe_dump(data))
    r = harness("env", "warm-jit", "-e", "vllm", "--tp", "2", "--overrides", str(ov))
    assert r.returncode != 0
    assert "no-such-python" in r.stderr and "not found" in r.stderr


def test_shipped_definitions_warm_the_fusion_module_only_where_the_fusion_runs():
    defs = load_definitions()
    comm = "flashinfer.jit.comm:gen_trtllm_comm_module"
    assert generators_for(defs.engine("vllm"), 2) == [comm]
    assert generators_for(defs.engine("sglang-patched"), 2) == [comm]
    assert generators_for(defs.engine("sglang-patched-no-custom-ar"), 2) == [comm]  # inherited: fusion still on
    assert generators_for(defs.engine("sglang-patched-no-ar-fusion"), 2) == []
    assert generators_for(defs.engine("sglang"), 2) == []  # 0.5.12 unpatched: no fusion for Gemma-4
    assert generators_for(defs.engine("vllm"), 1) == []


def test_generator_must_name_module_and_function(tmp_path):
    ov = tmp_path / "ov.yaml"
    ov.write_text(yaml.safe_dump({"engines": {"vllm": {"jit_warmup": [{"generator": "flashinfer.jit.comm"}]}}}))
    with pytest.raises(HarnessError, match="package.module:function"):
        load_definitions(overrides=ov)


# --------------------------------------------------------------------------------------------- compare --warm-jit


def warm_overrides(tmp_path: Path, generator: str, sleep: float = 0.0, **kw) -> tuple[Path, Path]:
    """The fake engines (conftest), with sglang-patched and vllm declaring a stand-in FlashInfer module to build."""
    site = tmp_path / "site"
    (site / "fakefi").mkdir(parents=True)
    (site / "fakefi" / "__init__.py").write_text(FAKE_FI)
    out = tmp_path / "fi-cache"
    out.mkdir()
    ov = fake_overrides(tmp_path, **kw)
    data = yaml.safe_load(ov.read_text())
    for name in ("sglang-patched", "vllm"):
        e = data["engines"][name]
        e["pythonpath"] = [str(site)]
        e["env_vars"].update({"FAKE_FI_DIR": str(out), "FAKE_FI_SLEEP": str(sleep)})
        e["jit_warmup"] = [{"generator": generator}]
    ov.write_text(yaml.safe_dump(data))
    return ov, out


def only_run(runs: Path) -> Path:
    (d,) = [p for p in runs.iterdir() if p.is_dir()]
    return d


def test_compare_warm_jit_builds_each_environment_once_and_says_so(tmp_path):
    ov, out = warm_overrides(tmp_path, "fakefi:gen_comm")
    runs = tmp_path / "runs"
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched,vllm", "-s", "chat", "--num-prompts", "2",
                "--warm-jit", "--no-report", "--overrides", str(ov), "--runs-dir", str(runs), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads((only_run(runs) / "manifest.json").read_text())
    jobs = m["extra"]["jit_warmup"]
    assert [(j["engine"], j["env"], j["status"]) for j in jobs] == [("sglang-patched", "sglang", "ok"), ("vllm", "vllm", "ok")]
    assert [mod["status"] for j in jobs for mod in j["modules"]] == ["built", "up-to-date"]  # one cache here
    assert builds(out) == ["fake_comm", "fake_comm"]
    assert any(n.startswith("FlashInfer JIT warm-up (compare --warm-jit) for vllm (vllm environment)") for n in m["notes"])
    # without the flag nothing is built
    r = harness("compare", "-m", "26B-A4B", "--engines", "vllm", "-s", "chat", "--num-prompts", "2", "--no-report",
                "--overrides", str(ov), "--runs-dir", str(tmp_path / "runs2"), timeout=240)
    assert r.returncode == 0 and builds(out) == ["fake_comm", "fake_comm"]
    assert "jit_warmup" not in json.loads((only_run(tmp_path / "runs2") / "manifest.json").read_text())["extra"]


def test_compare_warm_jit_dry_run_lists_the_builds(tmp_path):
    ov, out = warm_overrides(tmp_path, "fakefi:gen_comm")
    r = harness("compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched,vllm", "-s", "chat", "--warm-jit",
                "--dry-run", "--overrides", str(ov))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("# warm-jit")]
    assert len(lines) == 2 and "-e sglang-patched --tp 1): fakefi:gen_comm" in lines[0] and "-e vllm" in lines[1]
    assert builds(out) == []


def test_ctrl_c_stops_a_background_build(tmp_path):
    from test_bench_cli import start_harness_until
    import signal
    import time

    ov, out = warm_overrides(tmp_path, "fakefi:gen_slow", sleep=120,
                             engine_flags={"sglang": ["--startup-delay", "60"]}, served="warm-jit-interrupt")
    runs = tmp_path / "runs"
    p = start_harness_until("fakefi:gen_slow", "compare", "-m", "26B-A4B", "--engines", "sglang,sglang-patched",
                            "-s", "chat", "--num-prompts", "2", "--warm-jit", "--no-report", "--overrides", str(ov),
                            "--runs-dir", str(runs))
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=90)
    assert p.returncode == 130
    assert processes_with("fakefi:gen_slow") == [] and processes_with("warm-jit-interrupt") == []
    m = json.loads((only_run(runs) / "manifest.json").read_text())
    (job,) = m["extra"]["jit_warmup"]
    assert job["engine"] == "sglang-patched" and job["status"] == "stopped"
    assert builds(out) == []  # killed inside its sleep, before it wrote anything
