"""`emu run` and `emu debug`: the machine's flags parsed into a
MachineConfig, then a RunSession, the gdb-served run, or the debugger.

Layer: face.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emu.tools import flags

# `emu run` with no kernel and no -append is the demo: memhog's 64 MiB working
# set on 16 MiB of RAM, swapping over the embedded AoE target through a lossy
# link (docs/swap.md). Flags given explicitly always win.
DEMO_APPEND = "init=swapdemo"
DEMO_NET = "loss 1% delay 50us 20us"
DEMO_TARGET = "mem:128M"
DEMO_TARGET_SERVICE = "20us"


def add_commands(sub: Any) -> None:
    """Add `emu run` and `emu debug` to the subparsers `sub`."""
    run = sub.add_parser("run", help="boot a kernel and run it to the end")
    flags.add_machine_flags(run)
    flags.add_gdb_flags(run)
    run.set_defaults(func=cmd_run)
    debug = sub.add_parser("debug", help="step-debug page faults: the fault debugger "
                           "(same flags as run, plus -s/-S/-gdb)")
    flags.add_machine_flags(debug)
    flags.add_gdb_flags(debug)
    debug.set_defaults(func=cmd_debug)


def apply_demo_defaults(args: argparse.Namespace) -> bool:
    """Fill in the demo's flags when `emu run` got neither -kernel nor
    -append. Returns True if it did."""
    if args.kernel is not None or args.append is not None:
        return False
    args.append = DEMO_APPEND
    if args.net is None:
        args.net = DEMO_NET
    if args.target is None:
        args.target = [DEMO_TARGET]
    if args.target_service is None:
        args.target_service = DEMO_TARGET_SERVICE
    return True


def cmd_run(args: argparse.Namespace) -> int:
    """Boot the kernel, run to the end, print the report. Returns the exit status."""
    from emu.tools.session import RunSession

    apply_demo_defaults(args)
    cfg = flags.config_from_args(args)
    addr = flags.gdb_address(args)
    if addr is not None:      # -s / -gdb: run under the GDB stub
        from emu.debug.main import run_with_gdb
        return run_with_gdb(cfg, addr, wait=args.gdb_wait, quiet=args.quiet)
    plot = flags.plot_path(args.plot)
    deadlock_ns = flags.deadlock_span(args.deadlock)
    show_progress = args.progress == "on" or (args.progress == "auto" and sys.stdout.isatty())
    session = RunSession(
        cfg, console=sys.stdout.buffer, deadlock_ns=deadlock_ns,
        sample_ns=1_000_000 if plot else None,
        progress=sys.stdout if show_progress else None,
        stdin=args.stdin == "on" or (args.stdin == "auto" and sys.stdin.isatty()))
    status = session.run(interruptible=True)
    sys.stdout.flush()
    session.finish(stats_json=cfg.stats_json, quiet=args.quiet, plot=plot,
                   plot_title="emu " + " ".join(sys.argv[1:]))
    return status


def cmd_debug(args: argparse.Namespace) -> int:
    """`emu debug`: the fault debugger's command loop (with a GDB stub when
    asked). Returns the exit status."""
    from emu.debug.main import run_debugger

    cfg = flags.config_from_args(args)
    return run_debugger(cfg, flags.gdb_address(args), wait=args.gdb_wait)
