"""`harness env ...` end to end on a toy engine: bundle -> install-bundle -> check; create -> check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.envs import registry
from harness.envs.create import create_env
from harness.envs.pins import load_engine_pins
from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "envs"))
from wheelmaker import make_wheel  # noqa: E402

TOY_PINS = Path(__file__).parent / "fixtures" / "envs" / "toy-pins.yaml"
REPO = Path(__file__).resolve().parents[1]
HERE_PY = ".".join(map(str, sys.version_info[:2]))
runner = CliRunner()


def wheelhouse(d: Path) -> Path:
    make_wheel(d, "toyengine", "1.0", requires=["libpin", "bigkernels", 'winonly; sys_platform == "win32"'],
               module_body="import libpin\n__version__ = '1.0'\n", pad_bytes=20_000)  # fmt: skip
    make_wheel(d, "libpin", "1.0", pad_bytes=20_000)
    make_wheel(d, "libpin", "1.1")
    return d


def harness(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "1000", **(env or {})}, timeout=300)  # fmt: skip


def test_bundle_install_check_via_cli(tmp_path, isolated_state):
    wh = wheelhouse(tmp_path / "wh")
    out = tmp_path / "bundle"
    r = runner.invoke(app, [
        "env", "bundle", "--engine", "toy", "--pins", str(TOY_PINS), "--python", HERE_PY,
        "--platform", "manylinux_2_28_x86_64", "--no-index", "--find-links", str(wh), "--cache-dir", str(tmp_path / "cache"),
        "--split-mb", "0.015", "--out", str(out),
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "toy bundle in" in r.output and "excluded bigkernels" in r.output
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["parts"]) >= 3 and all(p["size"] <= 15_000 for p in m["parts"])
    assert m["timings"]["resolve_and_download_s"] >= 0 and "package_s" in m["timings"]

    target = tmp_path / "site-toy"
    r = runner.invoke(app, ["env", "install-bundle", str(out), "--target", str(target), "--python", sys.executable,
                            "--pins", str(TOY_PINS)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "installed and registered toy" in r.output and "import toyengine: ok" in r.output

    r = runner.invoke(app, ["env", "list", "--json"])
    assert json.loads(r.output)["toy"]["pythonpath"] == [str(target.resolve())]

    r = runner.invoke(app, ["env", "check", "--engine", "toy", "--json", "--pins", str(TOY_PINS)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)["environments"][0]
    assert data["ok"] and data["versions"]["libpin"] == "1.0" and data["imports"]["toyengine"]["ok"]

    # break the environment: libpin 1.1 in the target dir -> the check fails, naming the pin, exit 2
    for p in list(target.glob("libpin*")):
        subprocess.run(["rm", "-rf", str(p)], check=True)
    with zipfile.ZipFile(wh / "libpin-1.1-py3-none-any.whl") as zf:
        zf.extractall(target)
    proc = harness("env", "check", "--engine", "toy", "--pins", str(TOY_PINS), env={"HARNESS_STATE": str(isolated_state)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "libpin is 1.1, pin ==1.0" in proc.stderr and "environment check failed" in proc.stderr


def test_check_without_registered_env_is_an_error(isolated_state):
    proc = harness("env", "check", env={"HARNESS_STATE": str(isolated_state)})
    assert proc.returncode == 2 and "no environment registered" in proc.stderr
    r = runner.invoke(app, ["env", "check", "--engine", "vllm", "--json"])
    assert isinstance(r.exception, HarnessError) and "vllm: no environment registered" in str(r.exception)


def test_compressed_bundle_via_cli_and_compress_without_parts_refused(tmp_path, isolated_state):
    wh = wheelhouse(tmp_path / "wh")
    common = ["env", "bundle", "--engine", "toy", "--pins", str(TOY_PINS), "--python", HERE_PY, "--platform",
              "manylinux_2_28_x86_64", "--no-index", "--find-links", str(wh), "--cache-dir", str(tmp_path / "cache")]
    r = runner.invoke(app, [*common, "--compress", "--out", str(tmp_path / "b0")])
    assert r.exit_code == 2 and "--compress needs --split-mb" in r.output and not (tmp_path / "b0").exists()
    out = tmp_path / "bundle"
    r = runner.invoke(app, [*common, "--split-mb", "0.015", "--compress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["split"]["compression"] == "xz" and f"({m['split']['archive']['size'] / 1e6:.1f} MB after xz)" in r.output
    r = runner.invoke(app, ["env", "install-bundle", str(out), "--target", str(tmp_path / "site"), "--python",
                            sys.executable, "--pins", str(TOY_PINS)])  # fmt: skip
    assert r.exit_code == 0 and "import toyengine: ok" in r.output, r.output


def test_install_bundle_names_a_corrupted_part_via_cli(tmp_path, isolated_state):
    wh = wheelhouse(tmp_path / "wh")
    out = tmp_path / "bundle"
    r = runner.invoke(app, ["env", "bundle", "--engine", "toy", "--pins", str(TOY_PINS), "--python", HERE_PY,
                            "--no-index", "--find-links", str(wh), "--cache-dir", str(tmp_path / "cache"),
                            "--split-mb", "0.015", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    part = sorted(out.glob("toy-bundle.tar.part*"))[1]
    part.write_bytes(b"x" + part.read_bytes()[1:])
    proc = harness("env", "install-bundle", str(out), "--target", str(tmp_path / "t"), "--python", sys.executable,
                   env={"HARNESS_STATE": str(isolated_state)})  # fmt: skip
    assert proc.returncode == 2 and f"part {part.name} is corrupted" in proc.stderr
    assert registry.lookup("toy") is None


def test_create_venv_from_local_wheelhouse(tmp_path, isolated_state):
    wh = wheelhouse(tmp_path / "wh")
    pins = load_engine_pins("toy", TOY_PINS)
    venv = tmp_path / "venv-toy"
    rec, res = create_env(pins, sys.executable, path=venv, host_packages=False,
                          pip_args=["--no-index", "--find-links", str(wh)], cache_dir=tmp_path / "cache")  # fmt: skip
    assert rec.kind == "venv" and rec.pythonpath == [] and rec.python == str(venv.resolve() / "bin" / "python")
    assert registry.lookup("toy") == rec
    assert set(res.bundled) == {"toyengine", "libpin"} and "bigkernels" in res.excluded
    code = "import toyengine, libpin, importlib.util as u; print(libpin.__version__, u.find_spec('bigkernels') is None)"
    out = subprocess.run([rec.python, "-c", code], capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.stdout.split() == ["1.0", "True"], out.stderr
    info = json.loads((venv / "harness-env.json").read_text())
    assert info["excluded"]["bigkernels"] and "libpin-1.0-py3-none-any.whl" in info["wheels"]
    r = runner.invoke(app, ["env", "check", "--engine", "toy", "--pins", str(TOY_PINS)])
    assert r.exit_code == 0, r.output
    # an existing venv is not replaced without --force
    with pytest.raises(HarnessError, match="--force"):
        create_env(pins, sys.executable, path=venv, host_packages=False, pip_args=["--no-index", "--find-links", str(wh)],
                   cache_dir=tmp_path / "cache")  # fmt: skip


def test_create_with_host_packages_reuses_the_base_interpreter(tmp_path, isolated_state):
    """The base interpreter's packages stay visible (torch on the GPU host) and are not installed again."""
    wh = tmp_path / "wh"
    make_wheel(wh, "hostedengine", "2.0", requires=["pyyaml>=5", "small"])
    make_wheel(wh, "small", "1.0")
    pins_file = tmp_path / "pins.yaml"
    pins_file.write_text("engines:\n  hosted:\n    package: hostedengine\n    version: '2.0'\n    import_checks: [hostedengine, yaml]\n")
    pins = load_engine_pins("hosted", pins_file)
    rec, res = create_env(pins, sys.executable, path=tmp_path / "v", host_packages=True,
                          pip_args=["--no-index", "--find-links", str(wh)], cache_dir=tmp_path / "cache")  # fmt: skip
    assert "pyyaml" in res.from_host and set(res.bundled) == {"hostedengine", "small"}
    r = runner.invoke(app, ["env", "check", "--engine", "hosted", "--pins", str(pins_file), "--json"])
    assert r.exit_code == 0, r.output
    imports = json.loads(r.output)["environments"][0]["imports"]
    assert imports["yaml"]["ok"] and imports["hostedengine"]["file"].startswith(str((tmp_path / "v").resolve()))
