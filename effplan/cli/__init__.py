"""The command line: parse, call the library, render. Exit 0 ok, 1 budget violated or nothing fits,
2 bad input, 70 internal error. One module per command group."""
from __future__ import annotations

import shutil
import sys

import click

from ..base.errors import EffplanError, one_line
from ..base.version import __version__
from . import design, gate, hardware, memory, onnx, report, train
from .options import guard_output



HELP_WIDTH = max(40, shutil.get_terminal_size((80, 24)).columns)  # COLUMNS, else the terminal's, else 80


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH,
                               "terminal_width": HELP_WIDTH})
@click.version_option(__version__, prog_name="effplan")
def cli():
    """Static FLOPs, parameter and memory planner for compound-scaled CNNs."""
    import gc

    # What is imported lives until the process ends, so the cyclic collector need not rescan it: without
    # the freeze, the full collection that building a few graphs triggers rescans every module object.
    # main() unfreezes when a caller goes on.
    gc.freeze()


def summary(command: click.Command) -> str:
    """A command's first paragraph, whole: the command list shows it wrapped, never cut with '...'."""
    first = (command.help or "").split("\n\n")[0]
    return " ".join(first.split())


for _group in (design, onnx, memory, hardware, gate, report, train):
    for _command in vars(_group).values():
        if isinstance(_command, click.Command):
            guard_output(_command)
            _command.short_help = _command.short_help or summary(_command)
            cli.add_command(_command)


def main(argv=None) -> None:
    """Entry point: every user error is one line on stderr and exit code 2, never a traceback."""
    from ..base.files import watch_reads
    from .options import NOTES

    NOTES.clear()
    watch_reads(True)
    try:
        cli.main(args=argv, prog_name="effplan", standalone_mode=False)
        for note in NOTES:  # said once the command succeeded: an error stays the one line on stderr
            click.echo(f"effplan: {note}", err=True)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"effplan: error: {one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except EffplanError as exc:
        click.echo(f"effplan: error: {one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("effplan: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `effplan layers ... | head`
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:  # a bug, not bad input: still one line, unless asked for the traceback
        import os
        if os.environ.get("EFFPLAN_DEBUG"):
            raise
        click.echo(f"effplan: internal error: {type(exc).__name__}: {one_line(str(exc), 300)}"
                   f" (EFFPLAN_DEBUG=1 shows the traceback; please report it)", err=True)
        sys.exit(70)
    finally:
        import gc
        watch_reads(False)
        if argv is None:  # the process ends with the command: spare its exit a collection of every object
            gc.freeze()  # (0.03-0.07 s of `effplan table --phi 0..7`; refcounting still frees them)
        else:  # a caller that goes on (the tests, a notebook) gets its collector back whole
            gc.unfreeze()
