"""``convctl``: the click group. Commands are imported only when run, so ``--help`` is instant."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

from reconciler import __version__

# name -> (module, one-line help). Keep the help here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("reconciler.cli.validate", "Check manifests offline: schema, references, rules."),
    "schema": ("reconciler.cli.schema", "Write or check the JSON Schema files in schemas/."),
    "plan": ("reconciler.cli.plan", "Show what apply would change in the live state."),
    "apply": ("reconciler.cli.apply", "Make the live state match the manifests (or a saved plan)."),
    "unlock": ("reconciler.cli.unlock", "Release a state lock left by a dead apply."),
    "events": ("reconciler.cli.events", "List, show, enable, disable or delete live events (R19)."),
    "fmt": ("reconciler.cli.fmt", "Format manifests canonically, keeping comments."),
    "completion": ("reconciler.cli.completion", "Print a completion script for bash, zsh or fish."),
    "agent": ("reconciler.cli.agent", "Send CRM events to Meta: ingest, run, status, retry-dead."),
    "import": ("reconciler.cli.import_", "Write manifests for live accounts and events."),
    "serve": ("reconciler.cli.serve", "Run the control plane: the live state over HTTP."),
    "show": ("reconciler.cli.show", "Render a saved plan file exactly as plan printed it."),
    "token": ("reconciler.cli.token", "Create, list or revoke control-plane bearer tokens."),
    "explain": ("reconciler.cli.explain", "Explain a diagnostic code (E313) or a rule (R9)."),
    "state": ("reconciler.cli.state", "Show, migrate or copy the live-state store itself."),
    "history": ("reconciler.cli.history", "Show the audit log: applies and their steps, changes."),
}


class Failure(click.ClickException):
    """A ``ConvctlError`` on its way out: one line on stderr, exit 1, no traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from reconciler.errors import ConvctlError

        try:
            return super().invoke(ctx)
        except ConvctlError as exc:
            raise Failure(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = importlib.import_module(entry[0]).command
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from COMMANDS (no command module imported on each TAB), then options."""
        from click.shell_completion import CompletionItem

        names = [CompletionItem(name, help=COMMANDS[name][1])
                 for name in self.list_commands(ctx) if name.startswith(incomplete)]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convctl")
def cli() -> None:
    """Manage ad conversion events (CRM -> Meta Conversions API) the GitOps way.

    Declare events in manifests/, review `convctl plan` on a pull request, `convctl apply` on
    merge. Exit codes: 0 success / no changes, 1 error, 2 changes (plan --detailed-exitcode).
    """


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point. Usage errors exit 1, not click's 2: 2 means "changes" for plan."""
    from reconciler.cli import lifetime

    lifetime.enable()
    try:
        code = cli.main(args=argv, prog_name="convctl", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1 if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except (click.exceptions.Abort, EOFError) as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click wraps a Ctrl-C in Abort
            _interrupted()
        click.echo("Aborted.", err=True)  # a prompt answered with Ctrl-C or end of input
        sys.exit(1)
    lifetime.exit(code if isinstance(code, int) else 0)


def _interrupted() -> NoReturn:
    click.echo("Interrupted.", err=True)
    sys.exit(130)


if __name__ == "__main__":
    main()
