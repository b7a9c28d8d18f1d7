"""Running git for the patch stack, isolated from the user's and the system's git configuration.

Global/system config (hooks, signing, autocrlf, am.threeWay, ...) could change what a tree
looks like, so every call runs with ``GIT_CONFIG_NOSYSTEM=1`` and ``GIT_CONFIG_GLOBAL=/dev/null``
and a fixed identity. Commits get fixed names, emails and dates so the base commit, and with
``--committer-date-is-author-date`` every applied commit, is reproducible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import HarnessError

IDENTITY_NAME = "gemma4-harness"
IDENTITY_EMAIL = "patchstack@gemma4-harness.invalid"
BASE_DATE = "2000-01-01T00:00:00+0000"
BASE_TAG = "base"

_DROP_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


def git_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV and not k.startswith("GIT_CONFIG_KEY_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=IDENTITY_NAME,
        GIT_AUTHOR_EMAIL=IDENTITY_EMAIL,
        GIT_COMMITTER_NAME=IDENTITY_NAME,
        GIT_COMMITTER_EMAIL=IDENTITY_EMAIL,
        LC_ALL="C",
        LANG="C",
    )
    env.update(extra)
    return env


def git_exe() -> str:
    exe = shutil.which("git")
    if not exe:
        raise HarnessError("git is not on PATH; the patch stack is applied with git am (install git)")
    return exe


def git(
    cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``git -C cwd args...``; raise HarnessError with git's output when ``check`` and it fails."""
    cmd = [git_exe(), "-C", str(cwd), "-c", "core.hooksPath=" + os.devnull, *args]
    proc = subprocess.run(
        cmd,
        env=env or git_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    if check and proc.returncode != 0:
        shown = " ".join(args[:3])
        raise HarnessError(f"git {shown} failed in {cwd} (exit {proc.returncode}): {proc.stdout.strip()[-2000:]}")
    return proc


def init_repo(tree: Path) -> None:
    git(tree, "init", "-q")
    for key, value in (
        ("core.autocrlf", "false"),
        ("core.safecrlf", "false"),
        ("core.fileMode", "true"),
        ("commit.gpgSign", "false"),
        ("am.threeWay", "false"),
        ("am.keepcr", "true"),
        ("apply.whitespace", "nowarn"),
        ("gc.auto", "0"),
    ):
        git(tree, "config", key, value)


def commit_base(tree: Path, message: str) -> str:
    """Commit everything in ``tree`` as the reproducible base commit, tag it ``base``, return its id."""
    git(tree, "add", "--all", "--force", ".")
    env = git_env(GIT_AUTHOR_DATE=BASE_DATE, GIT_COMMITTER_DATE=BASE_DATE)
    git(tree, "commit", "-q", "--no-verify", "--allow-empty", "-m", message, env=env)
    git(tree, "tag", BASE_TAG)
    return head(tree)


def head(tree: Path) -> str:
    return git(tree, "rev-parse", "HEAD").stdout.strip()


def am(tree: Path, patch: Path) -> subprocess.CompletedProcess[str]:
    """``git am`` one format-patch file; on failure the am session is left for inspection."""
    return git(
        tree,
        "am",
        "--keep-cr",
        "--committer-date-is-author-date",
        "--no-3way",
        str(patch),
        check=False,
    )


def status_porcelain(tree: Path) -> str:
    return git(tree, "status", "--porcelain", "--untracked-files=all").stdout
