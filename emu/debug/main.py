"""Command-line entry points of the debugger: `emu debug` and the GDB flags
(`-s`, `-S`, `-gdb tcp::PORT`) shared by `emu run` and `emu debug`.

emu/cli.py registers these; the QEMU meanings are kept: -s is `-gdb
tcp::1234`, -S holds the CPU at reset until gdb says so. Bad values raise
UsageError-style ValueErrors with one line (the CLI exits 2).
"""

from __future__ import annotations

import argparse
import sys


class GdbFlagError(ValueError):
    """A bad -s/-S/-gdb combination or address (one line)."""


def add_gdb_flags(p: argparse.ArgumentParser) -> None:
    """Add -s, -S and -gdb to a subcommand parser."""
    g = p.add_argument_group("gdb")
    g.add_argument("-s", dest="gdb_s", action="store_true",
                   help="GDB stub on tcp::1234 (shorthand for -gdb tcp::1234)")
    g.add_argument("-S", dest="gdb_wait", action="store_true",
                   help="do not start the CPU: wait at reset for gdb")
    g.add_argument("-gdb", dest="gdb", metavar="DEV",
                   help="GDB stub on DEV: tcp::PORT (localhost) or tcp:HOST:PORT")


def gdb_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """Return (host, port) for the stub, or None without -s/-gdb.
    Raises GdbFlagError for a bad address or -S without a stub."""
    from emu.debug.gdbstub import parse_gdb_addr

    spec = getattr(args, "gdb", None) or ("tcp::1234" if getattr(args, "gdb_s", False) else None)
    if spec is None:
        if getattr(args, "gdb_wait", False):
            raise GdbFlagError("-S waits for gdb: it needs -s or -gdb tcp::PORT")
        return None
    try:
        return parse_gdb_addr(spec)
    except ValueError as exc:
        raise GdbFlagError(str(exc)) from None


def _stub(ctl, addr: tuple[str, int]):
    from emu.debug.gdbstub import GdbStub
    try:
        return GdbStub(ctl, addr[0], addr[1])
    except OSError as exc:
        raise GdbFlagError(f"cannot listen on {addr[0]}:{addr[1]}: "
                           f"{exc.strerror or exc}") from None


def cmd_run_gdb(args: argparse.Namespace, cfg) -> int:
    """`emu run` with a GDB stub. Returns the exit status (the guest's; 137
    after gdb's `kill`)."""
    from emu import report
    from emu.debug.control import Controller
    from emu.debug.gdbstub import run_with_stub

    addr = gdb_address(args)
    assert addr is not None
    ctl = Controller(cfg, console=sys.stdout.buffer)
    stub = _stub(ctl, addr)
    try:
        status = run_with_stub(ctl, stub, wait=args.gdb_wait)
    except KeyboardInterrupt:
        status = 130
        ctl.machine.exit_status = status
        ctl.machine.stop_reason = "interrupted"
    finally:
        stub.close()
    sys.stdout.flush()
    stats = report.collect(ctl.machine)
    if cfg.stats_json:
        report.write_json(stats, cfg.stats_json)
    if not args.quiet:
        report.print_report(stats, sys.stderr)
    return status


def cmd_debug(args: argparse.Namespace) -> int:
    """`emu debug`: the fault debugger's command loop (with a GDB stub when
    asked). Returns the exit status."""
    from emu.cli import config_from_args
    from emu.debug.control import Controller
    from emu.debug.repl import ConsoleWriter, Repl

    cfg = config_from_args(args)
    addr = gdb_address(args)
    console = ConsoleWriter(sys.stdout)
    ctl = Controller(cfg, console=console)   # type: ignore[arg-type]
    stub = _stub(ctl, addr) if addr else None
    repl = Repl(ctl, console, gdb=stub)
    try:
        if stub is not None:
            stub.say(f"listening on {stub.address[0]}:{stub.address[1]}")
            if args.gdb_wait:
                stub.say("waiting for gdb at reset")
                if stub.serve_one() == "kill":
                    ctl.restart()
        return repl.run()
    finally:
        if stub is not None:
            stub.close()
