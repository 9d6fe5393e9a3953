"""The root command group: `compress-export MODEL ...` dispatched to `export`, commands that live above the command
line imported only when named, and the one error boundary that turns every exception into one line and a documented
exit code."""

from __future__ import annotations

import errno
import sys
import traceback

import click

from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, CompressExportError

# Where writing a bundle, a report or ranges fails for the user's reasons, not ours.
FILE_SYSTEM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                      errno.ENAMETOOLONG}

# Commands that live above the command line (they drive it): imported when named, so `--help` stays instant.
LAZY_COMMANDS = {"sweep": "compress_export.fleet.command:sweep_command"}


class ModelFirstGroup(click.Group):
    """`compress-export MODEL --to ...` runs `export`; known words run their subcommand.
    One error boundary turns our exceptions into one line and a documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        known = (*self.commands, *LAZY_COMMANDS, "--help", "-h", "--version")
        if args and args[0] not in known:
            args = ["export", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str):
        if name in LAZY_COMMANDS and name not in self.commands:
            from ..util.lazy import resolve

            self.add_command(resolve(LAZY_COMMANDS[name]), name)
        return super().get_command(ctx, name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.Exit as stop:
            code = stop.exit_code
        except click.ClickException as error:
            error.show()
            code = error.exit_code
        except Terminated:
            click.echo("terminated: nothing was written in place of the previous bundle", err=True)
            code = EXIT_TERMINATED
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("interrupted: nothing was written in place of the previous bundle", err=True)
            code = EXIT_INTERRUPTED
        except CompressExportError as error:
            click.echo(f"error: {error}", err=True)
            code = error.exit_code
        except OSError as error:
            if error.errno not in FILE_SYSTEM_ERRORS:
                raise
            where = error.filename or "a file"
            click.echo(f"error: cannot write {where}: {error.strerror or error} (nothing partial was left)", err=True)
            code = EXIT_USAGE
        except Exception:
            traceback.print_exc()
            click.echo("internal error: this is a bug in compress-export; please report it with the trace above",
                       err=True)
            code = EXIT_INTERNAL
        if standalone_mode:
            sys.exit(code)
        return code


class Terminated(BaseException):
    """SIGTERM (what CI runners and container stops send), unwound like Ctrl-C so that temporary
    folders are removed and the previous bundle stays."""


def terminate(signum, frame) -> None:
    raise Terminated()
