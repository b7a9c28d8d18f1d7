"""``harness patches``: apply, check, list and test the SGLang patch stack (patches/series)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.cli.app import app
from harness.errors import HarnessError

patches_app = typer.Typer(
    help="The SGLang patch stack (patches/series on the sglang pinned in patches/pin.yaml): apply, check, list, test.",
    no_args_is_help=True,
)
app.add_typer(patches_app, name="patches")

err = Console(stderr=True, highlight=False, soft_wrap=True)

SOURCE_HELP = (
    "Where the pristine sglang comes from: 'pypi' (the pinned wheel, cached under the harness state dir), "
    "'git' (pin.yaml git url/commit), or a PATH (a .whl, an upstream checkout with python/sglang, or a dir "
    "holding an unpacked sglang/ package). Env: HARNESS_SGLANG_SOURCE."
)


def _log(msg: str) -> None:
    err.print(f"[dim]{escape(msg)}[/]")


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}")
    raise typer.Exit(code)


@patches_app.command("apply")
def apply_cmd(
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for the patched tree (a git repo; tag 'base' is pristine). Default: the state-dir tree the sglang-patched engine profile uses for the current series."),
    source: str = typer.Option("pypi", "--source", envvar="HARNESS_SGLANG_SOURCE", help=SOURCE_HELP),
    force: bool = typer.Option(False, "--force", help="Replace the contents of an existing non-empty --out."),
) -> None:
    """Build a patched sglang tree: pristine python/sglang, base commit, `git am` of the series.

    On success DIR/.harness-patchstack.json records pin, stack hash and applied patches. On a failing patch the tree is left in DIR (git am still in progress) and the patch, file and hunk are named."""
    from harness.patchstack.apply import PatchApplyError, apply_stack

    if out is None:
        from harness.engines import patched_tree_default

        out = patched_tree_default()
    try:
        result = apply_stack(out, source, force=force, log=_log)
    except PatchApplyError as exc:
        for line in exc.details:
            err.print(escape(line))
        raise
    err.print(
        f"applied {len(result.patches)} patches to {result.package} {result.version} in {result.tree} "
        f"(HEAD {result.head_commit[:12]}, stack {result.stack_hash[:16]})"
    )
    typer.echo(str(result.tree))


@patches_app.command("check")
def check_cmd(
    source: str = typer.Option("pypi", "--source", envvar="HARNESS_SGLANG_SOURCE", help=SOURCE_HELP),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary patched tree even when the check passes."),
) -> None:
    """Check that the whole series applies cleanly to a fresh pristine tree and compiles.

    Applies the series in a temp dir, byte-compiles every Python file it touches, and checks that series and *.patch files agree. Exit 0 only if all holds; the last line is then `N patches apply cleanly to sglang <version>`. A failing tree is kept and its path printed."""
    from harness.patchstack.check import check_stack

    result = check_stack(source, log=_log, keep=keep)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    for p in result.problems:
        err.print(f"[red]problem:[/] {escape(p)}")
    if result.apply_error is not None:
        for line in result.apply_error.details:
            err.print(f"[red]{escape(line)}[/]")
    if result.compiled:
        err.print(f"[dim]byte-compiled {len(result.compiled)} touched Python files[/]")
    if result.tree is not None:
        err.print(f"tree kept at {result.tree}")
    if not result.ok:
        n = len(result.problems) + (1 if result.apply_error else 0)
        _fail(f"patch stack check failed ({n} problem{'s' if n != 1 else ''}) for {result.label}")
    typer.echo(result.summary)


@patches_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON: stack hash, code hash, patches (number, subject, files, tests)."),
) -> None:
    """List the series: number, subject, files touched, tests added (from the patch files alone). The stack hash
    (what runs record) covers every patch file's bytes; the code hash only their diffs, so a commit message edited
    after a lease keeps it (the report counts runs of a stack with this code as this checkout's)."""
    from harness.patchstack.series import (
        default_patches_dir,
        is_gpu_test,
        load_series,
        series_problems,
        stack_code_hash,
        stack_hash,
    )

    pdir = default_patches_dir()
    problems = series_problems(pdir)
    patches = load_series(pdir)
    if as_json:
        doc = {
            "patches_dir": str(pdir),
            "stack_hash": stack_hash(pdir),
            "code_hash": stack_code_hash(pdir),
            "patch_count": len(patches),
            "patches": [dict(p.to_dict(), index=i) for i, p in enumerate(patches, start=1)],
            "problems": problems,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table(title=f"patch series ({len(patches)} patches, stack {stack_hash(pdir)[:16]}, "
                        f"code {stack_code_hash(pdir)[:16]})")
    table.add_column("#", justify="right")
    table.add_column("patch / subject", overflow="fold")
    table.add_column("files touched", overflow="fold")
    table.add_column("tests added", overflow="fold")
    for p in patches:
        tests = [f"{t} [magenta](gpu)[/]" if is_gpu_test(t) else t for t in map(escape, p.tests)]
        table.add_row(
            f"{p.number:04d}" if p.number is not None else "-",
            f"[bold]{escape(p.name)}[/]\n{escape(p.subject)}",
            "\n".join(escape(fc.path) for fc in p.files),
            "\n".join(tests) or "-",
        )
    Console(highlight=False).print(table)
    for pr in problems:
        err.print(f"[yellow]warning:[/] {escape(pr)}")


@patches_app.command("test")
def test_cmd(
    gpu: bool = typer.Option(False, "--gpu", help="Also run GPU-only test files (names containing '_gpu')."),
    python: Optional[str] = typer.Option(
        None, "--python", help="Python of the SGLang environment (default: the registered 'sglang' env, else python3)."
    ),
    tree: Optional[Path] = typer.Option(
        None, "--tree", help="A patched tree from `harness patches apply` (default: build one in a temp dir)."
    ),
    source: str = typer.Option("pypi", "--source", envvar="HARNESS_SGLANG_SOURCE", help=SOURCE_HELP),
    only: Optional[list[str]] = typer.Option(
        None, "--only", help="Run only test files whose path contains this text, or that a patch whose file name "
        "contains it adds or modifies (repeatable), e.g. --only 0001 --only yoco."
    ),
) -> None:
    """Run the test files the patches add (test/**/test_*.py) with pytest in an SGLang environment.

    The patched tree's python/ goes first on PYTHONPATH. Files whose name contains '_gpu' are GPU-only and run only with --gpu. Prints a per-file summary; exit 1 on failure."""
    import tempfile

    from harness.patchstack.apply import apply_stack, read_marker
    from harness.patchstack.series import default_patches_dir, load_series, stack_hash
    from harness.patchstack.testrun import probe, resolve_python, run_tests, select_tests

    pdir = default_patches_dir()
    patches = load_series(pdir)
    tmp: Path | None = None
    if tree is not None:
        tree = tree.expanduser().resolve()
        marker = read_marker(tree)
        if marker is None:
            raise HarnessError(
                f"--tree {tree} is not a complete patched tree (no .harness-patchstack.json); "
                "build one with `harness patches apply --out DIR`"
            )
        if marker.get("stack_hash") != stack_hash(pdir):
            raise HarnessError(
                f"--tree {tree} was built from stack {str(marker.get('stack_hash'))[:16]}, the series now is "
                f"{stack_hash(pdir)[:16]}; rebuild it with `harness patches apply --out {tree} --force`"
            )
    def selected(at: Path | None):
        s = select_tests(patches, at, gpu=gpu)
        if only:
            s.run = [t for t in s.run if s.matches(t, only)]
            s.skipped_gpu = [t for t in s.skipped_gpu if s.matches(t, only)]
        return s

    sel = selected(tree)
    if not sel.run:
        extra = f" ({len(sel.skipped_gpu)} GPU-only files need --gpu)" if sel.skipped_gpu else ""
        err.print(f"no test files to run{extra}")
        typer.echo("0 test files run")
        return
    if tree is None:
        tmp = Path(tempfile.mkdtemp(prefix="harness-patches-test-"))
        tree = apply_stack(tmp / "sglang", source, log=_log).tree
        sel = selected(tree)  # the same --only filter on the freshly built tree
    py = resolve_python(python, log=_log)
    info = probe(tree, py)
    err.print(f"python {py.python} ({py.origin}, Python {info['version']}), sglang from {info['sglang']}")
    results = run_tests(tree, sel.run, py, log=_log)

    table = Table(title="patch tests")
    for col in ("test file", "patch", "result", "passed", "failed", "errors", "skipped"):
        table.add_column(col, overflow="fold")
    for r in results:
        color = "green" if r.ok else "red"
        table.add_row(
            escape(r.path), escape(sel.owners.get(r.path, "")), f"[{color}]{r.status}[/]",
            str(r.passed), str(r.failed), str(r.errors), str(r.skipped),
        )  # fmt: skip
    err.print(table)
    if sel.skipped_gpu:
        err.print(f"{len(sel.skipped_gpu)} GPU-only test files not run (pass --gpu): " + ", ".join(sel.skipped_gpu))
    bad = [r for r in results if not r.ok]
    if tmp is not None:
        if bad:
            err.print(f"tree kept at {tree}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = f"{len(results) - len(bad)}/{len(results)} test files passed"
    if bad:
        _fail(f"{summary}; failed: {', '.join(r.path for r in bad)}")
    typer.echo(summary)
