"""``convctl completion bash|zsh|fish`` and ``convctl --version``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli.main import COMMANDS, cli

CONVCTL = str(Path(sys.executable).parent / "convctl")


def _complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_CONVCTL_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    proc = subprocess.run([CONVCTL], env=env, capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize(("shell", "needle"), [
    ("bash", "complete -o nosort -F _convctl_completion convctl"),
    ("zsh", "#compdef convctl"),
    ("fish", "complete --no-files --command convctl"),
])
def test_completion_prints_the_script(shell: str, needle: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert needle in result.stdout
    assert "_CONVCTL_COMPLETE" in result.stdout
    assert result.stderr == ""


def test_completion_rejects_an_unknown_shell() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def test_completion_is_registered() -> None:
    assert COMMANDS["completion"][0] == "reconciler.cli.completion"


def test_the_installed_script_completes_commands_and_choices() -> None:
    assert _complete("convctl pl", 1) == ["plain,plan"]
    assert _complete("convctl comp", 1) == ["plain,completion"]
    assert _complete("convctl plan --format ", 3) == ["plain,text", "plain,json", "plain,markdown"]
    assert "plain,--version" in _complete("convctl --", 1)


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"convctl, version {__version__}\n")
    proc = subprocess.run([CONVCTL, "--version"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert (proc.returncode, proc.stdout) == (0, f"convctl, version {__version__}\n")
