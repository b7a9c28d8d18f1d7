"""The ``harness`` command line: one module per command group, registered here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from harness import __version__
from harness.errors import HarnessError

app = typer.Typer(
    name="harness",
    help="Benchmark and regression harness for Gemma-4 on a patched SGLang 0.5.12 and vLLM 0.22.0.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Apply the Gemma-4 patch stack, run benchmarks and quality checks, and render COMPARISON.md."""


def _register() -> None:
    """Import each command module; each adds its commands or sub-app to ``app``."""
    import importlib

    for mod in (
        "harness.cli.bench",
        "harness.cli.runs",
        "harness.cli.model",
        "harness.cli.patches",
        "harness.cli.env",
        "harness.cli.evals",
        "harness.cli.compare",
        "harness.cli.kernels",
        "harness.cli.report",
        "harness.cli.profile",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a command group not written yet
            if exc.name != mod:
                raise


_register()


def main() -> None:
    try:
        app()
    except HarnessError as exc:
        # one unwrapped line (grep-able); the message is escaped so brackets in it are not taken as markup
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
