"""The `emu` command: the top-level parser, one subcommand per module of
this package, and the one place errors become exit statuses.

Every user error (bad flag, bad image, bad value) is one line on stderr and
exit status 2 - never a traceback.

Layer: face.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from emu import __version__
from emu.cli import aoe_target, experiments, profile, run
from emu.core import twins
from emu.core.units import ConfigError
from emu.machine.loader import LoadError
from emu.tools.flags import GdbFlagError

EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_PIPE = 128 + signal.SIGPIPE


class UsageError(Exception):
    """A bad command line; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit status 2, and which
    reads single-dash options as QEMU does: whole words, never abbreviated
    or bundled (argparse would take `-sd` as `-s -d` and `-no` as
    `-nographic`; QEMU rejects both)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def _get_option_tuples(self, option_string: str) -> list:  # type: ignore[override]
        if not option_string.startswith("--"):
            return []
        return super()._get_option_tuples(option_string)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does
    not complain about a pipe whose reader has gone."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand."""
    p = _Parser(prog="emu", description="An emulated RISC-V machine for studying "
                "virtual memory, swap over a lossy network and memory reserves.")
    p.add_argument("--version", action="store_true", help="print version and active twins")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    run.add_commands(sub)
    aoe_target.add_command(sub)
    experiments.add_commands(sub)
    profile.add_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `emu` command. Returns the process exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            print(f"emu {__version__} ({twins.describe()})")
            return 0
        if not getattr(args, "func", None):
            raise UsageError("emu: missing command (try `emu run` or `emu --help`)")
        status = args.func(args)
        if status == EXIT_PIPE:
            _silence_stdout()
        return status
    except BrokenPipeError:      # `emu ... | head`: the reader left; end quietly
        _silence_stdout()
        return EXIT_PIPE
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, LoadError, GdbFlagError) as exc:
        print(f"emu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"emu: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:   # bad values found while building devices/network
        print(f"emu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks
        from emu.machine.exits import MachineError
        kind = "machine error" if isinstance(exc, MachineError) else "internal error"
        print(f"emu: {kind}: {exc!r}", file=sys.stderr)
        return EXIT_INTERNAL
