"""The environment registry, the pins file, and `env check` on mismatching environments."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from harness.envs import registry
from harness.envs.check import check_environment, evaluate
from harness.envs.pins import load_engine_pins, load_pins_file
from harness.envs.registry import EnvRecord
from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "envs"))
from wheelmaker import make_wheel  # noqa: E402

TOY_PINS = Path(__file__).parent / "fixtures" / "envs" / "toy-pins.yaml"


# ---- registry -------------------------------------------------------------------------------
def test_registry_round_trip_and_patched_fallback(isolated_state):
    assert registry.lookup("sglang") is None and registry.lookup("sglang-patched") is None
    rec = registry.register(EnvRecord(engine="sglang", python="/opt/py/bin/python3", pythonpath=["/tmp/site-sglang"],
                                      kind="target", source="bundle x"))  # fmt: skip
    assert rec.created  # stamped on register
    assert registry.registry_path() == isolated_state / "envs.json"
    raw = json.loads(registry.registry_path().read_text())
    assert raw["envs"]["sglang"]["pythonpath"] == ["/tmp/site-sglang"]
    got = registry.lookup("sglang")
    assert got == rec and isinstance(got.pythonpath, list) and got.kind == "target"
    # the patched profile runs on the sglang environment unless it has its own record
    assert registry.lookup("sglang-patched") == rec
    own = registry.register(EnvRecord(engine="sglang-patched", python="/venv/bin/python", kind="venv"))
    assert registry.lookup("sglang-patched") == own and registry.lookup("sglang") == rec
    registry.register(EnvRecord(engine="vllm", python="/v/bin/python"))
    assert set(registry.all_records()) == {"sglang", "sglang-patched", "vllm"}
    assert registry.unregister("vllm") and registry.lookup("vllm") is None and not registry.unregister("vllm")
    # no temporary files left behind by the atomic writes (envs.lock serialises writers and stays)
    assert sorted(p.name for p in isolated_state.iterdir()) == ["envs.json", "envs.lock"]


def test_subprocess_env_puts_the_target_first(tmp_path):
    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    rec = EnvRecord(engine="vllm", python="/usr/bin/python3", pythonpath=[str(site)], kind="target")
    env = rec.subprocess_env({"PYTHONPATH": "/harness-site", "PATH": "/usr/bin"})
    # exactly the environment's entries: the caller's PYTHONPATH does not leak into the engine
    assert env["PYTHONPATH"] == str(site) and env["PATH"] == f"{site / 'bin'}:/usr/bin"
    assert env["PYTHONNOUSERSITE"] == "1"
    venv = EnvRecord(engine="vllm", python=str(tmp_path / "venv" / "bin" / "python"), kind="venv")
    assert "PYTHONPATH" not in venv.subprocess_env({"PATH": "/usr/bin", "PYTHONPATH": "/harness-site"})


def test_registry_rejects_bad_kind_and_unreadable_file(isolated_state):
    with pytest.raises(HarnessError, match="allowed: venv, target"):
        EnvRecord(engine="x", python="p", kind="conda")
    registry.registry_path().parent.mkdir(parents=True, exist_ok=True)
    registry.registry_path().write_text("{not json")
    with pytest.raises(HarnessError, match="unreadable"):
        registry.lookup("sglang")


# ---- pins file ------------------------------------------------------------------------------
def test_engine_pins_file_has_reasons_and_the_documented_pins():
    pf = load_pins_file()
    sg, vl = pf.engines["sglang"], pf.engines["vllm"]
    assert (sg.package, sg.version) == ("sglang", "0.5.12") and (vl.package, vl.version) == ("vllm", "0.22.0")
    assert sg.pin_for("flashinfer_python").spec == "==0.6.11.post1"
    assert vl.pin_for("flashinfer-python").spec == "==0.6.11.post2"
    for eng in (sg, vl):
        assert eng.pin_for("transformers").spec == "==5.6.0" and eng.pin_for("tokenizers").spec == "==0.22.2"
        assert eng.pin_for("xgrammar").spec == "==0.2.0" and eng.pin_for("torch").spec == "==2.11.0"
        for name in ("flashinfer-cubin", "nvidia-cutlass-dsl", "tilelang", "tokenspeed-mla", "tokenspeed_foo"):
            assert eng.exclusion_for(name) is not None, (eng.name, name)
        assert eng.host_reason("torch")
        for pin in eng.pins.values():
            assert len(pin.reason) > 20
        for excl in eng.exclude.values():
            assert len(excl.reason) > 20
    assert sg.pin_for("sglang-kernel").spec == "==0.4.2.post2"
    assert sg.exclusion_for("kernels")[1].if_installed == "<0.15"
    assert sg.exclusion_for("transformers") is None
    h = pf.engines["harness"]
    roots = {Requirement(str(r)).name for r in h.root_requirements()}
    assert {"typer", "pydantic", "openai", "pyyaml", "datasets"} <= roots


def test_pins_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("engines:\n  x:\n    package: x\n    version: '1'\n    pins:\n      foo: {spec: '=>1', reason: r}\n")
    with pytest.raises(HarnessError, match=r"engines\.x\.pins\.foo\.spec"):
        load_pins_file(bad)
    with pytest.raises(HarnessError, match="allowed: toy"):
        bad.write_text("engines:\n  toy:\n    package: t\n    version: '1'\n")
        load_engine_pins("vllm", bad)


# ---- env check evaluation -------------------------------------------------------------------
def _probe(**packages):
    return {
        "packages": {k.replace("_", "-"): ({"version": v, "location": "/x"} if v else None) for k, v in packages.items()},
        "torch": {"version": "2.11.0+cu130", "cuda": "13.0", "cuda_available": True, "device_count": 1, "device_name": "NVIDIA H100"},
        "imports": {"sglang": {"ok": True}, "sglang.srt.entrypoints.http_server": {"ok": True}},
    }


GOOD_SGLANG = dict(sglang="0.5.12", torch="2.11.0+cu130", sglang_kernel="0.4.2.post2", flashinfer_python="0.6.11.post1",
                   transformers="5.6.0", tokenizers="0.22.2", xgrammar="0.2.0", kernels=None)  # fmt: skip


def test_check_accepts_the_pinned_sglang_environment():
    pins = load_engine_pins("sglang")
    rec = EnvRecord(engine="sglang", python="/p", pythonpath=["/t"], kind="target")
    res = evaluate(pins, rec, _probe(**GOOD_SGLANG))
    assert res.ok, res.problems
    assert res.gpu.startswith("yes: NVIDIA H100")
    assert res.versions["transformers"] == "5.6.0" and res.versions["kernels"] is None


@pytest.mark.parametrize(
    "change, expect",
    [
        ({"transformers": "5.17.0"}, "transformers is 5.17.0, pin ==5.6.0"),
        ({"tokenizers": "0.23.2"}, "tokenizers is 0.23.2, pin ==0.22.2"),
        ({"flashinfer_python": "0.6.11.post2"}, "flashinfer-python is 0.6.11.post2, pin ==0.6.11.post1"),
        ({"kernels": "0.17.2"}, "kernels 0.17.2 is installed; it must be absent or <0.15"),
        ({"sglang": "0.5.10"}, "sglang is 0.5.10, want 0.5.12"),
        ({"xgrammar": None}, "xgrammar is not installed"),
    ],
)
def test_check_names_each_mismatch(change, expect):
    pins = load_engine_pins("sglang")
    rec = EnvRecord(engine="sglang", python="/p", kind="venv")
    res = evaluate(pins, rec, _probe(**{**GOOD_SGLANG, **change}))
    assert not res.ok and any(expect in p for p in res.problems), res.problems


def test_check_reports_failed_imports_and_missing_gpu():
    pins = load_engine_pins("sglang")
    probe = _probe(**GOOD_SGLANG)
    probe["imports"]["sglang.srt.entrypoints.http_server"] = {"ok": False, "error": "ModuleNotFoundError: No module named 'orjson'"}
    probe["torch"].update(cuda_available=False, device_count=0)
    rec = EnvRecord(engine="sglang", python="/p", kind="venv")
    res = evaluate(pins, rec, probe, require_gpu=True)
    assert any("No module named 'orjson'" in p for p in res.problems)
    assert any("no GPU visible" in p for p in res.problems) and res.gpu == "no"
    assert evaluate(pins, rec, _probe(**GOOD_SGLANG) | {"torch": {"cuda_available": False}}).gpu == "no"


def test_check_runs_the_probe_in_the_environment(tmp_path):
    """A real subprocess: the target dir shadows nothing else, versions come from its dist-info."""
    import zipfile

    site = tmp_path / "site"
    for name, version in (("toyengine", "1.0"), ("libpin", "1.1"), ("badlib", "0.9")):
        with zipfile.ZipFile(make_wheel(tmp_path / "wh", name, version)) as zf:
            zf.extractall(site)
    rec = EnvRecord(engine="toy", python=sys.executable, pythonpath=[str(site)], kind="target")
    res = check_environment(load_engine_pins("toy", TOY_PINS), rec)
    assert res.versions == {"toyengine": "1.0", "torch": res.versions["torch"], "transformers": res.versions["transformers"],
                            "tokenizers": res.versions["tokenizers"], "flashinfer-python": None, "xgrammar": None,
                            "triton": res.versions["triton"], "kernels": None, "libpin": "1.1", "bigkernels": None,
                            "badlib": "0.9"}  # fmt: skip
    assert any("libpin is 1.1, pin ==1.0" in p for p in res.problems)
    assert any("badlib 0.9 is installed; it must be absent or <0.5" in p for p in res.problems)
    assert res.probe["imports"]["toyengine"]["ok"] and "torch" not in res.probe  # the toy engine pins no torch
