"""``convctl completion bash|zsh|fish``: print the shell completion script (click's machinery)."""

from __future__ import annotations

import click

from reconciler.cli.app import App

COMPLETE_VAR = "_CONVCTL_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL; load it from your shell's startup file.

    Completes command names, options and choices (--format text|json|markdown, ...).

    \b
    Examples:
      eval "$(convctl completion bash)"                   # in ~/.bashrc (bash >= 4.4)
      eval "$(convctl completion zsh)"                    # in ~/.zshrc
      convctl completion fish > ~/.config/fish/completions/convctl.fish
    """
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    if completion_class is None:  # click knows all three choices; guard for older releases
        raise click.UsageError(f"no completion support for {shell}")
    root = ctx.find_root()
    completion = completion_class(root.command, {}, "convctl", COMPLETE_VAR)
    App().out(completion.source().rstrip("\n"))
