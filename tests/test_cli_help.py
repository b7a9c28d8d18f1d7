"""Every command's --help renders (help texts are user documentation; rich markup in them must not crash)."""

import pytest
import typer
from typer.testing import CliRunner

from harness.cli.app import app


def all_command_paths():
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        out.append(path)
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, path + [name])

    walk(root, [])
    return out


PATHS = all_command_paths()


def test_expected_commands_exist():
    names = {" ".join(p) for p in PATHS}
    for expected in ("bench", "serve", "compare", "report", "runs list", "runs show", "model synth", "patches apply",
                     "patches check", "patches list", "patches test", "env create", "env check", "env bundle",
                     "env install-bundle", "mmlu", "parity", "gate", "kernels run", "profile summarize", "profile layers"):
        assert expected in names, expected


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "root" for p in PATHS])
def test_help_renders(path):
    r = CliRunner().invoke(app, path + ["--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "Usage" in r.output
