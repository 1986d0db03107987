"""The `emu` command: argparse subcommands with QEMU-style flags.

Every user error (bad flag, bad image, bad value) is one line on stderr and
exit status 2 - never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emu import __version__, fastpath
from emu.config import ConfigError, MachineConfig, parse_size
from emu.debug.main import GdbFlagError
from emu.loader import LoadError

EXIT_USAGE = 2
EXIT_INTERNAL = 70


class UsageError(Exception):
    """A bad command line; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def add_machine_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags shared by `emu run` and `emu debug`."""
    p.add_argument("-kernel", metavar="ELF", help="kernel image (default: the built guest)")
    p.add_argument("-m", metavar="SIZE", default="16M", help="RAM size, e.g. 16M (default 16M)")
    p.add_argument("-append", metavar="STR", default=None, help="kernel command line")
    p.add_argument("--mmu", choices=("python", "fast", "auto"), default="auto",
                   help="Sv39 walker: pure-Python reference or the compiled twin")
    p.add_argument("-d", metavar="TOPICS", default="",
                   help="log topics, comma separated: int,mmu,sbi")
    p.add_argument("-D", metavar="FILE", help="write the -d log to FILE (default stderr)")
    p.add_argument("--seed", type=_int, default=0, help="seed for every random choice")
    p.add_argument("--max-insns", type=_int, metavar="N",
                   help="stop after N instructions (exit status 124)")
    p.add_argument("--insn-ns", type=_int, default=1, metavar="NS",
                   help="virtual nanoseconds per instruction (default 1)")
    p.add_argument("--stats-json", metavar="FILE", help="write the run's figures as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw page faults, swap rates and retransmits over virtual time")
    p.add_argument("--deadlock", metavar="SPAN", default="2s",
                   help="stop with status 3 and a diagnosis after SPAN of virtual time with "
                   "no user progress and no swap I/O while work is pending (e.g. 500ms, "
                   "2s; off disables)")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="live status line (auto: when stdout is a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="no report at exit")
    from emu.net.options import add_net_flags
    add_net_flags(p)
    p.add_argument("--stdin", choices=("auto", "on", "off"), default="auto",
                   help="feed host stdin to the UART (auto: when stdin is a terminal); "
                   "makes the run depend on input timing")


def config_from_args(args: argparse.Namespace) -> MachineConfig:
    """Build and validate a MachineConfig (network included). Raises ConfigError."""
    from emu.net.options import net_config_from_args

    topics = tuple(t for t in args.d.split(",") if t) if args.d else ()
    cfg = MachineConfig(
        kernel=args.kernel, ram_size=parse_size(args.m), append=args.append or "", mmu=args.mmu,
        seed=args.seed, max_insns=args.max_insns, ns_per_insn=args.insn_ns, debug=topics,
        debug_file=args.D, stats_json=args.stats_json)
    cfg.validate()
    cfg.net = net_config_from_args(args, seed=cfg.seed, mtu=cfg.mtu)
    return cfg


# `emu run` with no kernel and no -append is the demo: memhog's 64 MiB working
# set on 16 MiB of RAM, swapping over the embedded AoE target through a lossy
# link (docs/swap.md). Flags given explicitly always win.
DEMO_APPEND = "init=swapdemo"
DEMO_NET = "loss 1% delay 50us 20us"
DEMO_TARGET = "mem:128M"
DEMO_TARGET_SERVICE = "20us"


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
    from emu import report
    from emu.machine import Machine
    from emu.timeline import Timeline

    apply_demo_defaults(args)
    cfg = config_from_args(args)
    from emu.debug.main import cmd_run_gdb, gdb_address
    if gdb_address(args) is not None:      # -s / -gdb: run under the GDB stub
        return cmd_run_gdb(args, cfg)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ConfigError(f"--plot {args.plot!r}: the plot is a PNG file (FILE.png)")
    machine = Machine(cfg, console=sys.stdout.buffer)
    if args.stdin == "on" or (args.stdin == "auto" and sys.stdin.isatty()):
        machine.stdin_fd = sys.stdin.fileno()
    watch = None
    if args.deadlock != "off":
        from emu.deadlock import DeadlockWatch
        from emu.net.network import parse_time_ns
        try:
            span = parse_time_ns(args.deadlock)
        except ConfigError as exc:
            raise ConfigError(f"--deadlock: {exc}") from None
        watch = DeadlockWatch(machine, span)
        machine.after_slice.append(watch)
    show_progress = args.progress == "on" or (args.progress == "auto" and sys.stdout.isatty())
    timeline = None
    if args.plot or show_progress:
        timeline = Timeline(machine)
        machine.after_slice.append(timeline)
    progress = None
    if show_progress:
        from emu.progress import ProgressLine
        progress = ProgressLine(machine, timeline, sys.stdout)
        machine.console_out = _Writer(progress.console_write)
        machine.after_slice.append(progress)
        progress.__enter__()
    try:
        status = machine.run()
    except KeyboardInterrupt:
        machine.stop_reason = "interrupted"
        status = 130
        machine.exit_status = status
    finally:
        if progress is not None:
            progress.__exit__(None, None, None)
    sys.stdout.flush()
    if timeline is not None:
        timeline.sample()
    if args.plot:
        from emu.plot import plot_timeline
        plot_timeline(timeline, args.plot, title="emu " + " ".join(sys.argv[1:]))
    stats = report.collect(machine)
    stats["deadlock"] = watch.diagnosis if watch is not None else None
    if watch is not None and watch.diagnosis:
        print(watch.diagnosis, file=sys.stderr)
    if cfg.stats_json:
        report.write_json(stats, cfg.stats_json)
    if not args.quiet:
        report.print_report(stats, sys.stderr)
    return status


class _Writer:
    """A file-like console sink that hands bytes to a callable."""

    def __init__(self, fn) -> None:
        self.write = fn


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand."""
    p = _Parser(prog="emu", description="An emulated RISC-V machine for studying "
                "virtual memory, swap over a lossy network and memory reserves.")
    p.add_argument("--version", action="store_true", help="print version and active twins")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="boot a kernel and run it to the end")
    add_machine_flags(run)
    run.set_defaults(func=cmd_run)
    from emu.debug.main import add_gdb_flags, cmd_debug
    add_gdb_flags(run)
    debug = sub.add_parser("debug", help="step-debug page faults: the fault debugger "
                           "(same flags as run, plus -s/-S/-gdb)")
    add_machine_flags(debug)
    add_gdb_flags(debug)
    debug.set_defaults(func=cmd_debug)
    from emu.net.options import add_aoe_target_command
    add_aoe_target_command(sub)
    from emu.reserves import add_commands
    add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `emu` command. Returns the process exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            print(f"emu {__version__} ({fastpath.describe()})")
            return 0
        if not getattr(args, "func", None):
            raise UsageError("emu: missing command (try `emu run` or `emu --help`)")
        return args.func(args)
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
        from emu.machine import MachineError
        kind = "machine error" if isinstance(exc, MachineError) else "internal error"
        print(f"emu: {kind}: {exc!r}", file=sys.stderr)
        return EXIT_INTERNAL
