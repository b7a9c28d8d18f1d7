"""Bundles: manifest, split parts, integrity (corrupted/missing parts named), install.sh, install-bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.envs import registry
from harness.envs.bundle import (
    BundleError,
    build_bundle,
    load_manifest,
    verify_and_extract,
)
from harness.envs.check import check_environment
from harness.envs.install import MARKER, install_bundle
from harness.envs.pins import load_engine_pins
from harness.envs.resolve import Resolver
from harness.envs.target import TargetSpec
from harness.envs.wheels import WheelhouseFetcher, sha256_file
from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "envs"))
from wheelmaker import make_wheel  # noqa: E402

TOY_PINS = Path(__file__).parent / "fixtures" / "envs" / "toy-pins.yaml"
HERE_PY = ".".join(map(str, sys.version_info[:2]))
# the bundle is built for this interpreter so that it can be installed in the test
TARGET = TargetSpec(HERE_PY, "manylinux_2_28_x86_64")


def toy_bundle(tmp_path: Path, split_mb: float | None = 0.05, pad: int = 30_000, compress: bool = False,
               deflate_libpin: bool = False):
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["libpin", "bigkernels"], pad_bytes=pad,
               module_body="import libpin\n__version__ = '1.0'\n")  # fmt: skip
    make_wheel(wh, "libpin", "1.0", pad_bytes=pad,
               compression=zipfile.ZIP_DEFLATED if deflate_libpin else zipfile.ZIP_STORED)  # fmt: skip
    make_wheel(wh, "libpin", "1.1")
    pins = load_engine_pins("toy", TOY_PINS)
    res = Resolver(TARGET, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())
    out = tmp_path / "bundle"
    result = build_bundle(pins, res, out, split_mb=split_mb, compress=compress)
    return result, out


def test_manifest_lists_wheels_hashes_exclusions(tmp_path):
    result, out = toy_bundle(tmp_path)
    m = load_manifest(out)
    assert m["engine"] == "toy" and m["engine_version"] == "1.0"
    assert m["target"]["python_version"] == HERE_PY and "manylinux2014_x86_64" in m["target"]["platform_tags"]
    names = {w["name"]: w for w in m["wheels"]}
    assert set(names) == {"toyengine", "libpin"} and names["libpin"]["version"] == "1.0"
    for w in m["wheels"]:
        assert len(w["sha256"]) == 64 and w["size"] > 30_000
    assert [e["name"] for e in m["excluded"]] == ["bigkernels"] and "not needed" in m["excluded"][0]["why"]
    assert m["pins"]["libpin"]["spec"] == "==1.0"
    assert os.access(out / "install.sh", os.X_OK)


def test_parts_respect_the_size_limit_and_reassemble(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)  # 20 kB parts
    m = result.manifest
    assert len(m["parts"]) >= 3 and not (out / "wheels").exists()
    for p in m["parts"]:
        f = out / p["file"]
        assert f.stat().st_size == p["size"] <= 20_000 and sha256_file(f) == p["sha256"]
    wheels = verify_and_extract(out, tmp_path / "work")
    assert sorted(w.name for w in wheels) == sorted(w["filename"] for w in m["wheels"])
    for w, entry in zip(sorted(wheels), sorted(m["wheels"], key=lambda e: e["filename"])):
        assert sha256_file(w) == entry["sha256"]


def test_corrupted_part_is_detected_and_named(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    victim = out / result.manifest["parts"][1]["file"]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"part {victim.name} is corrupted"):
        verify_and_extract(out, tmp_path / "work")


def test_missing_and_truncated_parts_are_named(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    parts = result.manifest["parts"]
    (out / parts[0]["file"]).unlink()
    last = out / parts[-1]["file"]
    last.write_bytes(last.read_bytes()[:-10])
    with pytest.raises(BundleError) as ei:
        verify_and_extract(out, tmp_path / "work")
    assert f"part {parts[0]['file']} is missing" in str(ei.value)
    assert f"part {last.name} has" in str(ei.value) and "truncated" in str(ei.value)


def test_unsplit_bundle_detects_a_corrupted_wheel(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=None)
    assert (out / "wheels").is_dir() and result.manifest["parts"] == []
    assert len(verify_and_extract(out, tmp_path / "work")) == 2
    w = next((out / "wheels").glob("libpin*.whl"))
    w.write_bytes(w.read_bytes()[:-1] + b"X")
    with pytest.raises(BundleError, match=rf"wheel {w.name} is corrupted"):
        verify_and_extract(out, tmp_path / "work")


def _members(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        return {i.filename: (z.read(i), i.external_attr, i.date_time) for i in z.infolist()}


def test_compressed_bundle_carries_xz_of_stored_wheels_with_the_same_members(tmp_path):
    # libpin deflated as index wheels are; toyengine stored
    plain, plain_out = toy_bundle(tmp_path / "plain", split_mb=0.02, deflate_libpin=True)
    result, out = toy_bundle(tmp_path / "xz", split_mb=0.02, compress=True, deflate_libpin=True)
    m = result.manifest
    assert m["split"]["compression"] == "xz" and plain.manifest["split"]["compression"] is None
    # the parts hold wheels/<wheel>.xz, and nothing is left of the packing
    assert not any(p.name.startswith(".packing") for p in out.iterdir())
    # the index's sha256 stays; the re-packed wheel's is what the host verifies (wheels.sha256 too)
    assert [w["sha256"] for w in m["wheels"]] == [w["sha256"] for w in plain.manifest["wheels"]]
    sums = dict(line.split()[::-1] for line in (out / "wheels.sha256").read_text().splitlines())
    for w in m["wheels"]:
        assert sums[w["filename"]] == w["repacked"]["sha256"]
    repacked = {w["name"]: w["repacked"]["sha256"] != w["sha256"] for w in m["wheels"]}
    assert repacked == {"libpin": True, "toyengine": False}  # a stored wheel re-packs to the same bytes
    wheels = verify_and_extract(out, tmp_path / "work")
    originals = verify_and_extract(plain_out, tmp_path / "work-plain")
    for got, orig in zip(sorted(wheels), sorted(originals)):
        assert got.name == orig.name and _members(got) == _members(orig)  # same files, modes and dates
        with zipfile.ZipFile(got) as z:
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    # a compressed bundle installs like any other, through the harness and through install.sh
    target = tmp_path / "site-xz"
    install_bundle(out, python=sys.executable, target=target)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ok = subprocess.run([sys.executable, "-c", "import toyengine, libpin; print(toyengine.__version__, libpin.__version__)"],
                        capture_output=True, text=True, env={**env, "PYTHONPATH": str(target)})  # fmt: skip
    assert ok.stdout.split() == ["1.0", "1.0"], ok.stderr
    if shutil.which("sha256sum") and shutil.which("bash"):
        sh_target = tmp_path / "site-sh"
        proc = subprocess.run(["bash", str(out / "install.sh"), "--target", str(sh_target), "--python", sys.executable],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (sh_target / "toyengine" / "__init__.py").is_file() and (sh_target / "libpin" / "_pad.bin").is_file()


def test_compressed_bundle_names_a_wheel_that_fails_its_check(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02, compress=True)
    m = result.manifest
    # a manifest whose re-packed hash does not match what the parts carry: the wheel is named
    m["wheels"][0]["repacked"]["sha256"] = "0" * 64
    with pytest.raises(BundleError, match=rf"wheel {m['wheels'][0]['filename']} is corrupted"):
        verify_and_extract(out, tmp_path / "work", m)
    m["split"]["compression"] = "zstd"
    with pytest.raises(BundleError, match="unknown compression 'zstd'"):
        verify_and_extract(out, tmp_path / "work2", m)


def test_compress_needs_split_parts(tmp_path):
    with pytest.raises(HarnessError, match="compress needs split parts"):
        toy_bundle(tmp_path, split_mb=None, compress=True)


def test_output_dir_must_be_empty_unless_force(tmp_path):
    toy_bundle(tmp_path)
    with pytest.raises(HarnessError, match="not empty"):
        toy_bundle(tmp_path)


def test_install_bundle_into_target_registers_and_checks(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    target = tmp_path / "site-toy"
    rec = install_bundle(out, python=sys.executable, target=target)
    assert (target / "toyengine" / "__init__.py").is_file() and (target / "libpin").is_dir()
    assert json.loads((target / MARKER).read_text())["bundle_id"] == result.manifest["bundle_id"]
    # registered as a target install of the host python
    got = registry.lookup("toy")
    assert got == rec and got.kind == "target" and got.pythonpath == [str(target.resolve())]
    assert Path(got.python).resolve() == Path(sys.executable).resolve()
    # the same checks as `env check`: engine imports from the target dir, the pin holds
    res = check_environment(load_engine_pins("toy", TOY_PINS), got)
    assert res.ok, res.problems
    assert res.versions["toyengine"] == "1.0" and res.versions["libpin"] == "1.0"
    assert res.probe["imports"]["toyengine"]["file"].startswith(str(target.resolve()))
    # the same bundle again: nothing is reinstalled, the environment is registered again
    (target / "toyengine" / "extra.txt").write_text("kept")
    assert install_bundle(out, python=sys.executable, target=target).pythonpath == [str(target.resolve())]
    assert (target / "toyengine" / "extra.txt").is_file()
    # --force reinstalls from scratch
    install_bundle(out, python=sys.executable, target=target, force=True)
    assert not (target / "toyengine" / "extra.txt").exists() and (target / "toyengine" / "__init__.py").is_file()
    # another bundle into a used directory needs --force
    (target / MARKER).write_text('{"bundle_id": "something-else"}')
    with pytest.raises(HarnessError, match="not empty"):
        install_bundle(out, python=sys.executable, target=target)
    # a non-empty directory that no bundle install made is never cleared
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    with pytest.raises(HarnessError, match="refusing to clear"):
        install_bundle(out, python=sys.executable, target=foreign, force=True)
    assert (foreign / "mine.txt").is_file()


def test_install_bundle_refuses_a_corrupted_bundle_before_touching_the_target(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    victim = out / result.manifest["parts"][0]["file"]
    victim.write_bytes(b"\0" * victim.stat().st_size)
    target = tmp_path / "site-toy"
    with pytest.raises(BundleError, match=victim.name):
        install_bundle(out, python=sys.executable, target=target)
    assert not (target / "toyengine").exists() and registry.lookup("toy") is None


def test_install_bundle_refuses_the_wrong_python(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["libpin"])
    make_wheel(wh, "libpin", "1.0")
    pins = load_engine_pins("toy", TOY_PINS)
    other = TargetSpec("3.9" if HERE_PY != "3.9" else "3.10", "manylinux_2_28_x86_64")
    res = Resolver(other, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())
    build_bundle(pins, res, tmp_path / "b")
    with pytest.raises(HarnessError, match=r"is for Python 3\.(9|10)"):
        install_bundle(tmp_path / "b", python=sys.executable, target=tmp_path / "t")


@pytest.mark.skipif(shutil.which("sha256sum") is None or shutil.which("bash") is None, reason="needs bash + sha256sum")
def test_install_sh_works_without_the_harness_and_rejects_corruption(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    target = tmp_path / "site-sh"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["bash", str(out / "install.sh"), str(target), "--python", sys.executable],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "toyengine" / "__init__.py").is_file() and (target / MARKER).is_file()
    ok = subprocess.run([sys.executable, "-c", "import toyengine, libpin; print(toyengine.__version__, libpin.__version__)"],
                        capture_output=True, text=True, env={**env, "PYTHONPATH": str(target)})  # fmt: skip
    assert ok.stdout.split() == ["1.0", "1.0"]
    victim = out / result.manifest["parts"][2]["file"]
    victim.write_bytes(victim.read_bytes()[:-1] + b"Z")
    bad = subprocess.run(["bash", str(out / "install.sh"), "--target", str(tmp_path / "t2"), "--python", sys.executable],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert bad.returncode != 0 and victim.name in bad.stdout + bad.stderr
    assert not (tmp_path / "t2" / "toyengine").exists()


def test_install_bundle_into_a_venv_that_still_sees_the_host_packages(tmp_path):
    result, out = toy_bundle(tmp_path, split_mb=0.02)
    venv = tmp_path / "venv-toy"
    rec = install_bundle(out, python=sys.executable, venv=venv)
    assert rec.kind == "venv" and rec.pythonpath == [] and Path(rec.python) == venv.resolve() / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import toyengine, yaml; print(toyengine.__file__.startswith(%r), yaml.__name__)" % str(venv.resolve())
    proc = subprocess.run([rec.python, "-c", code], capture_output=True, text=True, env=env)
    # the bundle's packages come from the venv, the base interpreter's (pyyaml here, torch on the GPU host) stay visible
    assert proc.stdout.split() == ["True", "yaml"], proc.stderr
    assert check_environment(load_engine_pins("toy", TOY_PINS), rec).ok
