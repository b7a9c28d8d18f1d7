"""Closure resolution: markers, extras, pins, exclusions, host lists, re-fetch, conflicts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from harness.envs.hostpkgs import HostPackages
from harness.envs.pins import load_engine_pins, load_pins_file
from harness.envs.resolve import ResolutionError, Resolver
from harness.envs.target import TargetSpec, marker_applies, platform_tags
from harness.envs.wheels import FetchError, PipFetcher, WheelhouseFetcher
from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "envs"))
from wheelmaker import make_wheel  # noqa: E402

TOY_PINS = Path(__file__).parent / "fixtures" / "envs" / "toy-pins.yaml"
TARGET = TargetSpec("3.12", "manylinux_2_39_x86_64")


def toy_wheelhouse(d: Path) -> Path:
    make_wheel(d, "toyengine", "1.0", requires=[
        "libpin", "libdep>=1.0", "bigkernels==9.9", "fat_thing", "extra-host-lib>=2",
        'winonly; sys_platform == "win32"', 'oldpy; python_version < "3.10"', "helper[fast]", "a-pkg", "b-pkg",
        'devtool; extra == "dev"',
    ], extras=["dev"])  # fmt: skip
    make_wheel(d, "libpin", "1.0")
    make_wheel(d, "libpin", "1.1")
    make_wheel(d, "libdep", "1.0")
    make_wheel(d, "libdep", "2.0", requires=["sub>=1"])
    make_wheel(d, "sub", "1.0")
    make_wheel(d, "helper", "1.0", requires=['speedup>=1; extra == "fast"'], extras=["fast"])
    make_wheel(d, "speedup", "1.0")
    make_wheel(d, "extra-host-lib", "1.0")
    make_wheel(d, "extra-host-lib", "2.5")
    make_wheel(d, "a-pkg", "1.0", requires=["shared>=1"])
    make_wheel(d, "b-pkg", "1.0", requires=["c-pkg"])
    make_wheel(d, "c-pkg", "1.0", requires=["shared<2"])
    make_wheel(d, "shared", "1.0")
    make_wheel(d, "shared", "2.0", requires=["onlyin2"])
    make_wheel(d, "onlyin2", "1.0")
    make_wheel(d, "devtool", "1.0")
    make_wheel(d, "winonly", "1.0")
    return d


def resolve(tmp_path, host_lines=None, roots=None, fetcher=None, engine="toy"):
    wh = toy_wheelhouse(tmp_path / "wh")
    pins = load_engine_pins(engine, TOY_PINS)
    host = None
    if host_lines is not None:
        f = tmp_path / "freeze.txt"
        f.write_text("\n".join(host_lines) + "\n")
        host = HostPackages.from_file(f)
    r = Resolver(TARGET, pins, fetcher or WheelhouseFetcher(wh), host=host)
    return r.resolve(roots or pins.root_requirements())


# ---- markers and tags ---------------------------------------------------------------------
def test_marker_evaluation_for_target_not_this_machine():
    t = TargetSpec("3.12", "manylinux_2_39_x86_64")
    assert marker_applies(Marker('python_version >= "3.12"'), t)
    assert not marker_applies(Marker('python_version < "3.12"'), t)
    assert marker_applies(Marker('sys_platform == "linux" and platform_machine == "x86_64"'), t)
    assert not marker_applies(Marker('platform_machine == "aarch64" or platform_machine == "arm64"'), t)
    assert not marker_applies(Marker('extra == "test"'), t)
    assert marker_applies(Marker('extra == "test"'), t, extras=["test"])
    assert marker_applies(Marker('extra == "cu-13"'), t, extras=["cu_13"])  # extras compare normalized
    arm = TargetSpec("3.11", "manylinux_2_28_aarch64")
    assert marker_applies(Marker('platform_machine == "aarch64"'), arm)
    assert not marker_applies(Marker('python_version > "3.11"'), arm)


def test_platform_tags_go_down_from_the_requested_one():
    tags = platform_tags("manylinux_2_39_x86_64")
    assert tags[0] == "manylinux_2_39_x86_64"
    assert "manylinux_2_34_x86_64" in tags and "manylinux_2_28_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux_2_17_x86_64" in tags and "manylinux1_x86_64" in tags
    assert "manylinux_2_40_x86_64" not in tags
    assert platform_tags("manylinux_2_28_x86_64")[0] == "manylinux_2_28_x86_64"
    assert "manylinux_2_34_x86_64" not in platform_tags("manylinux_2_28_x86_64")
    args = TARGET.pip_args()
    assert args.count("--platform") == len(TARGET.tags) and "any" in args and "cp312" in args
    with pytest.raises(HarnessError, match="not supported"):
        platform_tags("win_amd64")


# ---- the toy closure ----------------------------------------------------------------------
def test_closure_markers_extras_exclusions_and_pins(tmp_path):
    res = resolve(tmp_path)
    got = {n: str(b.wheel.version) for n, b in res.bundled.items()}
    # pin ==1.0 beats the newer 1.1; marker-gated and extra-gated requirements are left out
    assert got["libpin"] == "1.0"
    assert "winonly" not in got and "oldpy" not in got and "devtool" not in got
    # helper[fast] brings speedup
    assert got["speedup"] == "1.0" and res.bundled["helper"].extras == ["fast"]
    # excluded by name and by pattern, with the reason from the pins file
    assert set(res.excluded) == {"bigkernels", "fat-thing"}
    assert res.excluded["fat-thing"].pattern == "fat-*"
    assert "not needed" in res.excluded["bigkernels"].reason
    assert any("toyengine 1.0" in r for r in res.excluded["bigkernels"].required_by)
    # nothing from a host: no host list given
    assert res.from_host == {}
    assert got["libdep"] == "2.0" and got["sub"] == "1.0"


def test_later_specifier_forces_refetch_and_drops_stale_requirements(tmp_path):
    res = resolve(tmp_path)
    # a-pkg asks shared>=1 (2.0 first), c-pkg (one level deeper) asks shared<2: 1.0 wins
    assert str(res.bundled["shared"].wheel.version) == "1.0"
    # shared 2.0's own requirement must not stay in the closure
    assert "onlyin2" not in res.bundled
    assert res.passes >= 2


def test_host_list_satisfies_or_violates(tmp_path):
    res = resolve(tmp_path, host_lines=["libdep==2.0", "extra-host-lib==1.0", "libpin==1.1", "unrelated==0.1"])
    # host has libdep 2.0 which satisfies >=1.0: left out, and its dependencies are the host's business
    assert "libdep" in res.from_host and "libdep" not in res.bundled and "sub" not in res.bundled
    assert res.from_host["libdep"].host_version == "2.0"
    # host's extra-host-lib 1.0 violates toyengine's >=2: bundled, with the reason
    b = res.bundled["extra-host-lib"]
    assert str(b.wheel.version) == "2.5" and b.host_version == "1.0"
    assert any("toyengine 1.0 requires >=2" in v for v in b.host_violates)
    # host's libpin 1.1 violates the pin: the pinned version is bundled
    p = res.bundled["libpin"]
    assert str(p.wheel.version) == "1.0" and any(v.startswith("pin ==1.0") for v in p.host_violates)
    assert "unrelated" not in res.bundled and "unrelated" not in res.from_host


def test_unsatisfiable_conflict_names_the_requirers(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["x-pkg", "y-pkg"])
    make_wheel(wh, "x-pkg", "1.0", requires=["libpin>=1.1"])  # the pin says ==1.0
    make_wheel(wh, "y-pkg", "1.0")
    make_wheel(wh, "libpin", "1.0")
    make_wheel(wh, "libpin", "1.1")
    pins = load_engine_pins("toy", TOY_PINS)
    with pytest.raises(ResolutionError) as ei:
        Resolver(TARGET, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())
    msg = str(ei.value)
    # x-pkg 1.0 was taken back (the only version), then nothing is left: both facts are in the message
    assert "x-pkg 1.0 requires libpin>=1.1, which clashes with libpin==1.0" in msg
    assert "no wheel of x-pkg!=1.0" in msg and "toyengine 1.0" in msg


def test_missing_wheel_is_a_clear_error(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["nowhere>=3"])
    pins = load_engine_pins("toy", TOY_PINS)
    with pytest.raises(ResolutionError, match=r"nowhere>=3 \(required by \(root\)|nowhere>=3 \(required by toyengine"):
        Resolver(TARGET, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())


def test_host_provided_package_is_never_bundled(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "hostedengine", "2.0", requires=["basetorch==3.0", "small"])
    make_wheel(wh, "small", "1.0")
    make_wheel(wh, "basetorch", "3.0", requires=["nvidia-missing==1"])  # would fail to resolve
    pins = load_engine_pins("hosted", TOY_PINS)
    ok = tmp_path / "ok.txt"
    ok.write_text("basetorch==3.0+cu130\n")
    res = Resolver(TARGET, pins, WheelhouseFetcher(wh), host=HostPackages.from_file(ok)).resolve(pins.root_requirements())
    assert "basetorch" in res.from_host and "basetorch" not in res.bundled and set(res.bundled) == {"hostedengine", "small"}
    bad = tmp_path / "bad.txt"
    bad.write_text("basetorch==2.9\n")
    with pytest.raises(ResolutionError, match="must come from the host"):
        Resolver(TARGET, pins, WheelhouseFetcher(wh), host=HostPackages.from_file(bad)).resolve(pins.root_requirements())
    lacking = tmp_path / "lacking.txt"
    lacking.write_text("small==1.0\n")
    with pytest.raises(ResolutionError, match="host list lacks it"):
        Resolver(TARGET, pins, WheelhouseFetcher(wh), host=HostPackages.from_file(lacking)).resolve(pins.root_requirements())


def test_requirement_audit_covers_every_engine_requirement(tmp_path):
    res = resolve(tmp_path, host_lines=["libdep==2.0"])
    rows = {Requirement(r["requirement"]).name: r for r in res.requirement_audit()}
    assert rows["libdep"]["status"].startswith("from host 2.0")
    assert rows["bigkernels"]["status"].startswith("excluded")
    assert rows["libpin"]["status"] == "bundled 1.0"
    assert rows["winonly"]["applies"] is False


# ---- host lists ---------------------------------------------------------------------------
def test_host_list_formats(tmp_path):
    f = tmp_path / "freeze.txt"
    f.write_text("# comment\nTorch==2.11.0+cu130\nfoo_bar==1.2\n-e git+https://x/y#egg=z\nbaz @ file:///tmp/baz.whl\n")
    h = HostPackages.from_file(f)
    assert str(h.get("torch").version) == "2.11.0+cu130" and "foo-bar" in h and h.get("baz").version is None
    j = tmp_path / "list.json"
    j.write_text('[{"name": "Foo.Bar", "version": "1.0"}, {"name": "torch", "version": "2.11.0"}]')
    hj = HostPackages.from_file(j)
    assert str(hj.get("foo-bar").version) == "1.0"
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a freeze line\n")
    with pytest.raises(HarnessError, match="bad.txt:1"):
        HostPackages.from_file(bad)


def test_committed_gpu_host_freeze_violates_the_pins():
    """The lent GPU host's freeze has transformers 5.17.0 / tokenizers 0.23.2: bundles must carry the pins."""
    host = HostPackages.from_file(Path(__file__).parents[1] / "scenarios" / "hosts" / "cuda-image.pip-freeze.txt")
    pf = load_pins_file()
    for engine in ("sglang", "vllm"):
        pins = pf.engines[engine]
        for name in ("transformers", "tokenizers"):
            assert not pins.pin_for(name).specifier.contains(host.get(name).version)
        assert pins.pin_for("torch").specifier.contains(host.get("torch").version)


# ---- pip download fetcher (local wheelhouse: no network) ----------------------------------
def test_pip_fetcher_from_local_wheelhouse_and_cache(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "libpin", "1.0")
    make_wheel(wh, "libpin", "1.1")
    make_wheel(wh, "native", "1.0", tag="cp312-cp312-manylinux_2_34_x86_64")
    make_wheel(wh, "native", "2.0", tag="cp312-cp312-manylinux_2_40_x86_64")  # too new for glibc 2.39
    f = PipFetcher(TARGET, tmp_path / "cache", pip_args=["--no-index", "--find-links", str(wh)])
    info = f.fetch("libpin", SpecifierSet("<1.1"))
    assert str(info.version) == "1.0" and info.path.parent == tmp_path / "cache" / "wheels"
    nat = f.fetch("native", SpecifierSet())
    assert str(nat.version) == "1.0"  # manylinux_2_34 accepted because the tag list goes down from 2_39
    n = f.network_fetches
    again = PipFetcher(TARGET, tmp_path / "cache", pip_args=["--no-index", "--find-links", str(wh)])
    assert str(again.fetch("libpin", SpecifierSet("<1.1")).version) == "1.0" and again.network_fetches == 0
    assert n == 2
    with pytest.raises(FetchError, match="no wheel of libpin>=5"):
        f.fetch("libpin", SpecifierSet(">=5"))


# ---- the real registry ---------------------------------------------------------------------
@pytest.mark.network
def test_real_registry_small_closure(tmp_path):
    """pydantic 2.9.2 for cp312/manylinux_2_28: pydantic-core is a platform wheel, typing-extensions is on the host."""
    pins_file = tmp_path / "pins.yaml"
    pins_file.write_text(
        "engines:\n  small:\n    package: pydantic\n    version: '2.9.2'\n"
        "    pins:\n      annotated-types: {spec: '==0.7.0', reason: test}\n"
        "    exclude:\n      tzdata: {reason: test}\n"
    )
    host = tmp_path / "host.txt"
    host.write_text("typing_extensions==4.12.2\n")
    pins = load_engine_pins("small", pins_file)
    t = TargetSpec("3.12", "manylinux_2_28_x86_64")
    res = Resolver(t, pins, PipFetcher(t, tmp_path / "cache"), host=HostPackages.from_file(host)).resolve(
        pins.root_requirements()
    )
    assert set(res.bundled) == {"pydantic", "pydantic-core", "annotated-types"}
    assert str(res.bundled["pydantic-core"].wheel.version) == "2.23.4"  # pydantic 2.9.2 pins it exactly
    assert "cp312" in res.bundled["pydantic-core"].wheel.filename
    assert str(res.bundled["annotated-types"].wheel.version) == "0.7.0"
    assert "typing-extensions" in res.from_host


def test_backtracks_a_requirer_whose_newest_version_clashes_with_a_pin(tmp_path):
    """Like flash-attn-4's newest beta wanting apache-tvm-ffi>=0.1.11 where the engine pins ==0.1.9."""
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["ffi==0.9", "fa>=4.0b1", "front>=1"])
    make_wheel(wh, "ffi", "0.9")
    make_wheel(wh, "ffi", "0.11")
    for v, ffi in (("4.0b1", "ffi>=0.8"), ("4.0b2", "ffi>=0.9"), ("4.0b3", "ffi>=0.11"), ("4.0b4", "ffi>=0.11")):
        make_wheel(wh, "fa", v, requires=[ffi])
    make_wheel(wh, "front", "1.0", requires=["ffi"])
    make_wheel(wh, "front", "2.0", requires=["ffi>=0.11", "gone-with-2"])
    make_wheel(wh, "gone-with-2", "1.0")
    pins = load_engine_pins("toy", TOY_PINS)
    res = Resolver(TARGET, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())
    got = {n: str(b.wheel.version) for n, b in res.bundled.items()}
    assert got["ffi"] == "0.9" and got["fa"] == "4.0b2" and got["front"] == "1.0"
    assert "gone-with-2" not in got
    assert any("fa 4.0b4" in b for b in res.backtracks) and any("front 2.0" in b for b in res.backtracks)


def test_backtracking_gives_up_with_the_requirers(tmp_path):
    wh = tmp_path / "wh"
    make_wheel(wh, "toyengine", "1.0", requires=["ffi==0.9", "fa"])
    make_wheel(wh, "ffi", "0.9")
    make_wheel(wh, "ffi", "0.11")
    make_wheel(wh, "fa", "1.0", requires=["ffi>=0.11"])
    pins = load_engine_pins("toy", TOY_PINS)
    with pytest.raises(ResolutionError, match=r"fa"):
        Resolver(TARGET, pins, WheelhouseFetcher(wh)).resolve(pins.root_requirements())
