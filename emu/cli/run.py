"""`emu run`, `emu demo` and `emu debug`: the machine's flags parsed into a
MachineConfig, then a RunSession, the gdb-served run, or the debugger.

`emu demo` is `emu run` with the swap demo's settings as its defaults:
memhog's 64 MiB working set on 16 MiB of RAM, swapping over the embedded
AoE target through a lossy link (docs/swap.md). `make run` runs it.

Layer: face.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emu.tools import flags

DEMO_DEFAULTS = {"m": "16M", "append": "init=swapdemo", "net": "loss 1% delay 50us 20us",
                 "target": ["mem:128M"], "target_service": "20us"}


def add_commands(sub: Any) -> None:
    """Add `emu run`, `emu demo` and `emu debug` to the subparsers `sub`."""
    run = sub.add_parser("run", help="boot a kernel and run it to the end")
    flags.add_machine_flags(run)
    flags.add_gdb_flags(run)
    run.set_defaults(func=cmd_run)
    demo = sub.add_parser("demo", help="the swap demo: 64 MiB of memhog on 16 MiB of RAM, "
                          "swapping over AoE through a lossy link (emu run with the demo's "
                          "defaults)")
    flags.add_machine_flags(demo)
    flags.add_gdb_flags(demo)
    demo.set_defaults(func=cmd_run, **DEMO_DEFAULTS)
    debug = sub.add_parser("debug", help="step-debug page faults: the fault debugger "
                           "(the flags of run, plus -s/-S/-gdb)")
    flags.add_machine_flags(debug, debugger=True)
    flags.add_gdb_flags(debug)
    debug.set_defaults(func=cmd_debug)


def cmd_run(args: argparse.Namespace) -> int:
    """Boot the kernel, run to the end, print the report. Returns the exit status."""
    from emu.tools.progress import live_terminal
    from emu.tools.session import EXIT_PIPE, RunSession

    if flags.wants_log_help(args):
        return 0
    cfg = flags.config_from_args(args)
    dump = flags.dumpdtb_path(args)
    if dump:
        return dump_dtb(cfg, dump)
    addr = flags.gdb_address(args)
    if addr is not None:      # -s / -gdb: run under the GDB stub
        from emu.debug.main import run_with_gdb
        return run_with_gdb(cfg, addr, wait=args.gdb_wait, quiet=args.quiet)
    plot = flags.plot_path(args.plot)
    deadlock_ns = flags.deadlock_span(args.deadlock)
    show_progress = args.progress == "on" or (args.progress == "auto"
                                              and live_terminal(sys.stderr))
    session = RunSession(
        cfg, console=sys.stdout.buffer, deadlock_ns=deadlock_ns,
        sample_ns=1_000_000 if plot else None,
        progress=sys.stderr if show_progress else None,
        stdin=args.stdin == "on" or (args.stdin == "auto" and sys.stdin.isatty()
                                     and not (args.send or args.until)))
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        try:
            status = profiler.runcall(session.run, interruptible=True)
        finally:
            profiler.dump_stats(args.profile)
    else:
        status = session.run(interruptible=True)
    if status != EXIT_PIPE:
        sys.stdout.flush()
    # A closed console pipe ends the run as SIGPIPE ends a Unix tool: quietly
    # (no report), but with --stats-json and the capture still written whole.
    session.finish(stats_json=cfg.stats_json, quiet=args.quiet or status == EXIT_PIPE,
                   plot=plot, plot_title="emu " + " ".join(sys.argv[1:]))
    return status


def cmd_debug(args: argparse.Namespace) -> int:
    """`emu debug`: the fault debugger's command loop (with a GDB stub when
    asked). Returns the exit status."""
    from emu.debug.main import run_debugger

    if flags.wants_log_help(args):
        return 0
    cfg = flags.config_from_args(args)
    dump = flags.dumpdtb_path(args)
    if dump:
        return dump_dtb(cfg, dump)
    return run_debugger(cfg, flags.gdb_address(args), wait=args.gdb_wait)


def dump_dtb(cfg: Any, path: str) -> int:
    """-machine virt,dumpdtb=FILE: build the machine, write the device tree
    it would hand the guest, exit 0 without running (as QEMU does)."""
    from emu.core.units import ConfigError
    from emu.machine.machine import Machine

    dtb = Machine(cfg).dtb
    try:
        with open(path, "wb") as f:
            f.write(dtb)
    except OSError as exc:
        raise ConfigError(f"dumpdtb={path}: {exc.strerror}") from None
    return 0
