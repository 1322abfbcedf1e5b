"""Every ```` ```sh test ```` block of the README runs, in order, and does what it says.

The format (kept deliberately small):

- A fenced block whose info string is exactly ``sh test`` is executed; every other block
  (```` ```sh ````, ```` ```yaml ````, ...) is only prose.
- All such blocks of one document run IN ORDER in ONE bash session under
  ``set -euo pipefail``, so a block sees what the blocks before it did (files, applied state).
  Any failing command fails the test, with the document line of the block that failed.
- The session starts in a temporary folder holding a copy of ``manifests/`` and ``schemas/``,
  with the test's virtualenv ``bin/`` first on PATH, ``NO_COLOR=1``, ``HOME`` in the temporary
  folder, no ``CONVCTL_*`` variables (so the embedded state ``.convctl/state.db`` is used), stdin
  from /dev/null and a timeout.
- A block may end with the line ``# expect-exit: N``: the block's last command (the last
  non-blank, non-comment line before it, which must be one complete command on one line) must
  exit with status N; the session then carries on. Without it every command must exit 0.

To check output, write it into the block (``convctl plan | grep -q 'No changes'``).
A document with no ``sh test`` block fails: the README must prove its own commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INFO = "sh test"
TIMEOUT = 120
_OPEN = re.compile(r"^(`{3,}|~{3,})\s*(.*?)\s*$")
_EXPECT = re.compile(r"^#\s*expect-exit:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    body: list[str]
    expect_exit: int | None = None


def extract_blocks(text: str) -> list[Block]:
    """The ``sh test`` blocks of a markdown document, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, start = match.group(1), match.group(2), i
        i += 1
        body: list[str] = []
        while i < len(lines) and not (lines[i].strip().startswith(fence)
                                      and set(lines[i].strip()) == {fence[0]}):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        if info == INFO:
            blocks.append(_with_expectation(start + 1, body))
    return blocks


def _with_expectation(line: int, body: list[str]) -> Block:
    content = [text for text in body if text.strip()]
    match = _EXPECT.match(content[-1].strip()) if content else None
    if match is None:
        return Block(line, body)
    commands = [n for n, text in enumerate(body)
                if text.strip() and not text.lstrip().startswith("#")]
    last = commands[-1] if commands else -1
    continued = last > 0 and body[last - 1].rstrip().endswith("\\")
    if last < 0 or continued or body[last].rstrip().endswith("\\"):
        raise ValueError(f"line {line}: '# expect-exit' needs a one-line command before it")
    return Block(line, body[:last + 1], int(match.group(1)))


def session_script(blocks: list[Block], doc: str) -> str:
    """One bash script running the blocks in order, each announced on stderr."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        where = f"{doc}:{block.line}"
        parts.append(f"echo '>>> block at {where}' >&2")
        if block.expect_exit is None:
            parts.extend(block.body)
            continue
        *before, last = block.body
        parts.extend(before)
        parts += ["__rc=0", "{", last, "} || __rc=$?",
                  f'if [ "$__rc" -ne {block.expect_exit} ]; then',
                  f'  echo "{where}: expected exit {block.expect_exit}, got $__rc" >&2; exit 1',
                  "fi"]
    return "\n".join(parts) + "\n"


def run_session(blocks: list[Block], doc: str, workdir: Path,
                bin_dir: Path = BIN) -> subprocess.CompletedProcess[str]:
    """The blocks as one bash session in ``workdir``, ``convctl`` from ``bin_dir``."""
    for folder in ("manifests", "schemas"):
        shutil.copytree(REPO / folder, workdir / folder)
    (workdir / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVCTL_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1",
               HOME=str(workdir / "home"), TERM="dumb")
    script = workdir / "session.sh"
    script.write_text(session_script(blocks, doc), encoding="utf-8")
    return subprocess.run(["bash", str(script)], cwd=workdir, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-3000:]}\n" \
           f"--- stderr (tail)\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("doc", ["README.md"])
def test_document_commands_run(doc: str, tmp_path: Path) -> None:
    blocks = extract_blocks((REPO / doc).read_text(encoding="utf-8"))
    assert blocks, f"{doc} has no ```{INFO} block: every README command must be run by a test"
    proc = run_session(blocks, doc, tmp_path)
    assert proc.returncode == 0, _failure(proc)
    for shown in plan_comments((REPO / doc).read_text(encoding="utf-8")):
        for part in shown.split(" ... "):  # what a comment says plan prints, it prints
            assert part in proc.stdout, (part, proc.stdout[-3000:])


def plan_comments(text: str) -> list[str]:
    """The comments of walkthrough commands that quote plan's output (``# ~ ...``)."""
    return re.findall(r"^convctl plan[^#\n]*#\s*(~ .+?)\s*$", text, re.MULTILINE)


def test_the_value_change_comment_is_checked() -> None:
    [comment] = plan_comments((REPO / "README.md").read_text(encoding="utf-8"))
    assert "value.amount: 40.0 -> 55.0" in comment


def test_extract_blocks_reads_only_marked_blocks_and_expectations() -> None:
    text = "\n".join([
        "```sh", "echo prose-only", "```",
        "````sh test", "echo one", "```", "still inside", "````",
        "```sh test", "false   # a comment", "", "# expect-exit: 1", "```",
        "```sh test  ", "echo spaces around the info string are fine", "```",
    ])
    blocks = extract_blocks(text)
    assert [b.line for b in blocks] == [4, 9, 14]
    assert blocks[0].body == ["echo one", "```", "still inside"]
    assert (blocks[1].body, blocks[1].expect_exit) == (["false   # a comment"], 1)
    assert blocks[2].expect_exit is None


def test_expect_exit_needs_a_one_line_command() -> None:
    with pytest.raises(ValueError, match="one-line command"):
        extract_blocks("```sh test\nconvctl plan \\\n  --detailed-exitcode\n# expect-exit: 2\n```")


@pytest.mark.parametrize(("body", "ok"), [
    ("true\nfalse  # trailing comment\n# expect-exit: 1", True),   # the expected failure
    ("true\n# expect-exit: 1", False),                              # exit 0, 1 expected
    ("false\ntrue", False),                                         # set -e stops the session
    ("echo hi | false | cat", False),                               # pipefail
    ("(exit 3)\n# expect-exit: 3", True),                           # any status
])
def test_harness_catches_failures(body: str, ok: bool, tmp_path: Path) -> None:
    blocks = extract_blocks(f"```sh test\n{body}\n```\n```sh test\necho after\n```")
    proc = run_session(blocks, "doc.md", tmp_path)
    assert (proc.returncode == 0) is ok, _failure(proc)
    if ok:
        assert "after" in proc.stdout


# --- the command reference and the performance figures ------------------------------------------

def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command path of the CLI (``("plan",)``, ``("events", "list")``) -> its options."""
    import importlib

    import click

    from reconciler.cli.main import COMMANDS

    def options(command: click.Command) -> set[str]:
        return {name for param in command.params if isinstance(param, click.Option)
                for name in param.opts if name.startswith("--") and name != "--help"}

    found: dict[tuple[str, ...], set[str]] = {}
    for name, (module, _) in COMMANDS.items():
        command = importlib.import_module(module).command
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                found[(name, sub)] = options(subcommand)
        else:
            found[(name,)] = options(command)
    return found


def _documented() -> dict[tuple[str, ...], tuple[set[str], str, str]]:
    """Command path -> (options shown, the whole row's first cell, exit codes) from the README's
    command table."""
    section = _section((REPO / "README.md").read_text(encoding="utf-8"), "Commands and exit codes")
    rows = [_cells(line) for line in section.splitlines() if line.startswith("| `convctl")]
    documented: dict[tuple[str, ...], tuple[set[str], str, str]] = {}
    for cells in rows:
        assert len(cells) == 3, cells
        for usage in re.findall(r"`(convctl [^`]*)`", cells[0]):
            words = usage.split()
            path = tuple(w for w in words[1:3] if re.fullmatch(r"[a-z][a-z-]*", w))
            documented[path] = (set(re.findall(r"--[a-z][a-z-]*", usage)), cells[0], cells[2])
    return documented


def test_readme_reference_lists_every_command_option_and_exit_code() -> None:
    cli, documented = _cli_commands(), _documented()
    shared = cli[("agent", "run")] - {"--once", "--state", "--store", "--dry-run"}
    for path, options in cli.items():
        name = " ".join(path)
        assert path in documented, f"README command table has no row for `convctl {name}`"
        shown, row, codes = documented[path]
        if "`agent run` options" in row:
            shown = shown | shared
        assert options <= shown, f"`convctl {name}`: README omits {sorted(options - shown)}"
        assert re.match(r"0\b", codes), f"`convctl {name}`: exit codes missing: {codes!r}"
    for path, (shown, _, _) in documented.items():
        if not path:  # `convctl --version`, `convctl [COMMAND] --help`
            continue
        name = " ".join(path)
        assert path in cli, f"README documents `convctl {name}`, which is no command"
        assert shown <= cli[path], f"`convctl {name}`: no option {sorted(shown - cli[path])}"


def test_readme_has_the_performance_figures() -> None:
    """Issue 6: the figures themselves in the README (a table), not only a pointer."""
    section = _section((REPO / "README.md").read_text(encoding="utf-8"), "Performance")
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table) >= 6, "README's Performance section needs a table of the headline figures"
    for needle in ("convctl validate", "requests/s", "plan", "agent", "bench/RESULTS.md"):
        assert needle in section, f"README's Performance section does not mention {needle!r}"
