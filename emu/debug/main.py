"""The debugger's two ways in: `emu debug` (the fault debugger's command
loop, with a GDB stub when asked) and `emu run -s/-gdb` (a run served to
gdb). The face parses the flags (emu/tools/flags.py) and calls these.

Layer: debug.
"""

from __future__ import annotations

import sys

from emu.machine.config import MachineConfig
from emu.tools.flags import GdbFlagError
from emu.tools.session import EXIT_INTERRUPTED, end_of_run, figures


def _stub(ctl, addr: tuple[str, int]):
    from emu.debug.gdbstub import GdbStub
    try:
        return GdbStub(ctl, addr[0], addr[1])
    except OSError as exc:
        raise GdbFlagError(f"cannot listen on {addr[0]}:{addr[1]}: "
                           f"{exc.strerror or exc}") from None


def run_with_gdb(cfg: MachineConfig, addr: tuple[str, int], *, wait: bool = False,
                 quiet: bool = False) -> int:
    """`emu run` with a GDB stub on `addr` (`wait`: hold the CPU at reset for
    gdb). Returns the exit status (the guest's; 137 after gdb's `kill`)."""
    from emu.debug.control import Controller
    from emu.debug.gdbstub import run_with_stub

    ctl = Controller(cfg, console=sys.stdout.buffer)
    stub = _stub(ctl, addr)
    try:
        status = run_with_stub(ctl, stub, wait=wait)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
        ctl.machine.exit_status = status
        ctl.machine.stop_reason = "interrupted"
    finally:
        stub.close()
    sys.stdout.flush()
    end_of_run(ctl.machine, stats_json=cfg.stats_json, quiet=quiet)
    return status


def run_debugger(cfg: MachineConfig, addr: tuple[str, int] | None, *,
                 wait: bool = False) -> int:
    """`emu debug`: the fault debugger's command loop, with a GDB stub on
    `addr` when given; --stats-json is written when the session ends.
    Returns the exit status."""
    from emu.debug.control import Controller
    from emu.debug.repl import ConsoleWriter, Repl

    console = ConsoleWriter(sys.stdout)
    ctl = Controller(cfg, console=console)   # type: ignore[arg-type]
    stub = _stub(ctl, addr) if addr else None
    repl = Repl(ctl, console, gdb=stub)
    try:
        if stub is not None:
            stub.say(f"listening on {stub.address[0]}:{stub.address[1]}")
            if wait:
                stub.say("waiting for gdb at reset")
                if stub.serve_one() == "kill":
                    ctl.restart()
        status = repl.run()
    finally:
        if stub is not None:
            stub.close()
    if cfg.stats_json:      # the figures of the machine as the session left it
        from emu.tools import report
        report.write_json(figures(ctl.machine), cfg.stats_json)
    return status
