"""``convctl``: the click group. Commands are imported only when run, so ``--help`` is instant."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from reconciler import __version__

# name -> (module, one-line help). Keep the help here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("reconciler.cli.validate", "Check manifests offline: schema, references, rules."),
    "schema": ("reconciler.cli.schema", "Write or check the JSON Schema files in schemas/."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = importlib.import_module(entry[0]).command
        return command

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


def main(argv: list[str] | None = None) -> Any:
    """Entry point: known errors become one line on stderr and exit 1, never a traceback."""
    from reconciler.errors import ConvctlError

    try:
        return cli.main(args=argv, prog_name="convctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ConvctlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
