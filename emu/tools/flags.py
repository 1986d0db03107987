"""The flags `emu run` and `emu debug` share - machine, network and gdb -
and their parsing into typed values (MachineConfig, NetConfig, a gdb
address). The face (emu/cli) and the debugger both import this, downwards.

Bad values raise ConfigError (or GdbFlagError) with one line; the face
turns them into exit status 2.

Layer: tools.
"""

from __future__ import annotations

import argparse
from typing import Any

from emu.core.units import ConfigError, parse_size, parse_time_ns
from emu.machine.config import MachineConfig
from emu.machine.peers import CLOCK_MODES
from emu.machine.tracelog import help_text
from emu.net.network import NetConfig
from emu.net.pcap import DEFAULT_SNAPLEN
from emu.tools import qemuflags
from emu.tools.progress import PLAIN_PERIOD_S


class GdbFlagError(ValueError):
    """A bad -s/-S/-gdb combination or address (one line)."""


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


class _AppendOverDefault(argparse._AppendAction):
    """A repeatable option whose default list is replaced, not extended, by
    the first value given (so that `--target X` means only X)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is self.default:
            setattr(namespace, self.dest, [])
        super().__call__(parser, namespace, values, option_string)


def add_machine_flags(p: argparse.ArgumentParser, *, debugger: bool = False) -> None:
    """Add the flags shared by `emu run`, `emu demo` and `emu debug`. Every
    stated default is the real one (`%(default)s`). With `debugger`, leave
    out what only a plain run has (--plot, --progress, --deadlock, -q)."""
    p.add_argument("-kernel", metavar="ELF",
                   help="kernel image (default: $EMU_KERNEL, else the built guest: "
                   "guest/build/kernel.elf in a checkout, the packaged one when installed)")
    p.add_argument("-bios", metavar="FILE", default="default",
                   help="M-mode firmware, as QEMU's -bios: default (emu's built-in SBI, "
                   "the kernel entered in S-mode), none (the kernel entered in M-mode "
                   "at 0x80000000, as xv6 wants), or an ELF/raw image such as OpenSBI's "
                   "fw_dynamic (default: %(default)s)")
    p.add_argument("-m", metavar="SIZE", default="16M",
                   help="RAM size, e.g. 16M; a bare number is MiB, as QEMU's "
                   "(default: %(default)s)")
    p.add_argument("-append", metavar="STR", default="",
                   help="kernel command line (default: %(default)r; without init=, our "
                   "kernel runs its process and paging demo)")
    p.add_argument("-initrd", metavar="FILE",
                   help="initial ramdisk, placed in RAM as QEMU 7.2 places it and named in "
                   "the device tree's /chosen")
    p.add_argument("-dtb", metavar="FILE",
                   help="device tree blob to hand the guest instead of the generated one "
                   "(its /chosen gets -append, -initrd and the rng seed)")
    add_qemu_flags(p)
    p.add_argument("--mmu", choices=("python", "fast", "auto"), default="auto",
                   help="Sv39 walker: pure-Python reference, the compiled twin, or the "
                   "compiled one when built (default: %(default)s)")
    p.add_argument("-d", metavar="TOPICS", default="",
                   help="log topics, comma separated (as QEMU's -d; `-d help` lists them)")
    p.add_argument("-D", metavar="FILE", help="write the -d log to FILE (default: stderr)")
    p.add_argument("--seed", type=_int, default=0,
                   help="seed for every random choice (default: %(default)s)")
    p.add_argument("--max-insns", type=_int, metavar="N",
                   help="stop after N instructions (exit status 124; default: no limit)")
    p.add_argument("--insn-ns", type=_int, default=None, metavar="NS",
                   help="virtual nanoseconds per instruction (default: 1; QEMU's "
                   "-icount shift=N is 2^N)")
    p.add_argument("--stats-json", metavar="FILE", help="write the run's figures as JSON")
    if not debugger:
        p.add_argument("--plot", metavar="FILE.png",
                       help="draw page faults, swap rates and retransmits over virtual time")
        p.add_argument("--deadlock", metavar="SPAN", default="2s",
                       help="stop with status 3 and a diagnosis after SPAN of virtual time "
                       "with no user progress and no swap I/O while work is pending (e.g. "
                       "500ms; off disables; default: %(default)s)")
        p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                       help="progress on stderr: a live status bar on a terminal, a plain "
                       f"line every {PLAIN_PERIOD_S:g} wall seconds elsewhere (auto: only when "
                       "stderr is a terminal; default: %(default)s)")
        p.add_argument("-q", "--quiet", action="store_true", help="no report at exit")
        p.add_argument("--profile", metavar="FILE",
                       help="write a cProfile profile of the run to FILE (read it with "
                       "`python -m pstats FILE`, snakeviz, gprof2dot)")
    add_net_flags(p)
    p.add_argument("--clock", choices=CLOCK_MODES, default=None,
                   help="virtual: time jumps to the next event while the guest waits "
                   "(deterministic); wall: waits follow the wall clock, as QEMU without "
                   "-icount; auto: wall once a real peer (a bridged interface, stdin, "
                   "gdb) is attached, else virtual (default: auto; -icount sets it from sleep=)")
    g = p.add_argument_group("console script (deterministic input, as expect)")
    g.add_argument("--send", metavar="LINE", action="append", default=[],
                   help="type LINE (and a newline) once the guest prints the prompt; "
                   "repeatable, in order")
    g.add_argument("--prompt", metavar="TEXT", default="$ ",
                   help="what the guest prints when it waits for a line (default: %(default)r)")
    g.add_argument("--until", metavar="TEXT",
                   help="end the run with status 0 once the guest prints TEXT after the last "
                   "--send line (e.g. 'ALL TESTS PASSED')")
    p.add_argument("--stdin", choices=("auto", "on", "off"), default="auto",
                   help="feed host stdin to the UART (auto: when stdin is a terminal and no "
                   "--send/--until script is given; default: %(default)s); makes the run "
                   "depend on input timing")


def add_qemu_flags(p: argparse.ArgumentParser) -> None:
    """The rest of QEMU's virt command line, with QEMU's meanings
    (emu/tools/qemuflags.py), so that a guest's own qemu line runs as is."""
    g = p.add_argument_group("QEMU compatibility (qemu-system-riscv64 -machine virt)")
    g.add_argument("-machine", "-M", dest="machine", metavar="virt[,dumpdtb=FILE]",
                   help="the board: virt only; dumpdtb=FILE writes the device tree and exits")
    g.add_argument("-smp", metavar="1", help="number of harts: emu has one")
    g.add_argument("-nographic", action="store_true",
                   help="accepted: emu has no display, the console is stdio")
    g.add_argument("-display", metavar="none", help="accepted as none: emu has no display")
    g.add_argument("-serial", metavar="mon:stdio", help="the UART's backend: stdio only")
    g.add_argument("-monitor", metavar="none", help="accepted as none: emu has no monitor")
    g.add_argument("-global", dest="qemu_global", action="append", default=[],
                   metavar="virtio-mmio.force-legacy=on|off",
                   help="virtio-mmio transport version: legacy (1, as QEMU 7.2 without it) or "
                   "modern (2, as xv6 wants)")
    g.add_argument("-drive", action="append", default=[],
                   metavar="file=IMG,if=none,format=raw,id=ID[,snapshot=on][,readonly=on]",
                   help="a raw disk image, attached by -device virtio-blk-device,drive=ID")
    g.add_argument("-netdev", action="append", default=[],
                   metavar="segment,id=ID[,netem=SPEC]",
                   help="a port on emu's segment for -device virtio-net-device,netdev=ID; "
                   "netem=SPEC impairs its link alone (--net's spelling), else --net applies")
    g.add_argument("-device", action="append", default=[],
                   metavar="virtio-blk-device,drive=ID|virtio-net-device,netdev=ID[,...]",
                   help="a virtio-blk disk (drive=ID[,serial=S]) or a virtio-net NIC "
                   "(netdev=ID[,mac=M][,host_mtu=N]) on a virtio-mmio slot (bus=virtio-mmio-"
                   "bus.N; without it: the highest free slot, as QEMU)")
    g.add_argument("-snapshot", action="store_true",
                   help="writes to every disk go to a throw-away overlay")
    g.add_argument("-no-reboot", dest="no_reboot", action="store_true",
                   help="accepted: a guest reset always ends emu's run")
    g.add_argument("-icount", metavar="[shift=]N[,sleep=on|off]",
                   help="one instruction every 2^N virtual ns (N 0..10), as QEMU's; "
                   "sleep=off: idle time jumps to the next event (deterministic), sleep=on "
                   "(QEMU's default): idle time follows the host clock")


def add_net_flags(p: argparse.ArgumentParser) -> None:
    """Add the network flags of `emu run` / `emu debug`."""
    g = p.add_argument_group("network")
    g.add_argument("--net", metavar="SPEC", default="",
                   help='netem impairments of the guest\'s link, both directions, e.g. '
                   '"loss 5%% delay 200us 50us duplicate 1%% reorder 10%% corrupt 0.1%%" '
                   "(reproducible with --seed; default: %(default)r, a perfect link)")
    g.add_argument("--noise", metavar="RATE[,SIZE]",
                   help="send junk frames to the guest: RATE frames/s (2000, 20kpps) or a "
                   "bit rate (5mbit); SIZE bytes, 60 when not given (default: none)")
    g.add_argument("--pcap", metavar="FILE", help="capture the segment (classic pcap, "
                   "virtual-time stamps)")
    g.add_argument("--pcap-port", metavar="PORT",
                   help="capture where the segment port PORT meets its device - guest (the "
                   "eNIC), a -netdev id, e0.0 - instead of at the switch: what that end "
                   "sends and receives, its link's delay included (default: the switch)")
    g.add_argument("--pcap-snaplen", metavar="BYTES", type=_int, default=DEFAULT_SNAPLEN,
                   help="bytes kept of each captured frame, as tcpdump's -s: the default "
                   "keeps every header tshark dissects and no sector data; 0 keeps whole "
                   "frames (default: %(default)s)")
    g.add_argument("--target", metavar="SPEC", action=_AppendOverDefault, default=["mem:64M"],
                   help="AoE target: mem:SIZE[@S.N], file:PATH[@S.N] (embedded; add "
                   ",disk=ram|flash|hdd for a disk that takes time: hdd seeks and turns) or "
                   "iface:NAME (bridge to a real interface, not deterministic); repeatable "
                   "(default: %(default)s)")
    g.add_argument("--target-service", metavar="TIME", default="0us",
                   help="embedded targets' service time per request, e.g. 20us "
                   "(default: %(default)s)")


def add_gdb_flags(p: argparse.ArgumentParser) -> None:
    """Add -s, -S and -gdb to a subcommand parser (QEMU's meanings: -s is
    `-gdb tcp::1234`, -S holds the CPU at reset until gdb says so)."""
    g = p.add_argument_group("gdb")
    g.add_argument("-s", dest="gdb_s", action="store_true",
                   help="GDB stub on tcp::1234 (shorthand for -gdb tcp::1234)")
    g.add_argument("-S", dest="gdb_wait", action="store_true",
                   help="do not start the CPU: wait at reset for gdb")
    g.add_argument("-gdb", dest="gdb", metavar="DEV",
                   help="GDB stub on DEV: tcp::PORT (localhost) or tcp:HOST:PORT")


def net_config_from_args(args: argparse.Namespace, *, seed: int, mtu: int) -> NetConfig:
    """Build and validate a NetConfig from the flags. Raises ConfigError (one line)."""
    cfg = NetConfig(net=args.net, noise=args.noise, pcap=args.pcap,
                    pcap_snaplen=args.pcap_snaplen, pcap_port=args.pcap_port,
                    targets=tuple(args.target), target_service=args.target_service,
                    seed=seed, mtu=mtu)
    cfg.validate()
    return cfg


def config_from_args(args: argparse.Namespace) -> MachineConfig:
    """Build and validate a MachineConfig (network included). Raises ConfigError."""
    topics = tuple(t for t in args.d.split(",") if t) if args.d else ()
    qemuflags.machine_option(args.machine)
    qemuflags.smp_option(args.smp)
    qemuflags.serial_option(args.serial)
    qemuflags.monitor_option(args.monitor)
    qemuflags.display_option(args.display)
    legacy = qemuflags.global_options(args.qemu_global)
    disks, nics = qemuflags.devices_from(args.drive, args.device, args.netdev, args.snapshot)
    ns_per_insn, clock = _clock_flags(args)
    cfg = MachineConfig(
        kernel=args.kernel, bios=args.bios, ram_size=parse_size(args.m), append=args.append,
        mmu=args.mmu,
        seed=args.seed, max_insns=args.max_insns, ns_per_insn=ns_per_insn, debug=topics,
        debug_file=args.D, stats_json=args.stats_json, clock=clock,
        initrd=args.initrd, dtb=args.dtb, console_send=tuple(args.send),
        console_prompt=args.prompt, console_until=args.until,
        disks=disks, nics=nics)
    if legacy is not None:
        cfg.virtio_legacy = legacy
    cfg.validate()
    cfg.net = net_config_from_args(args, seed=cfg.seed, mtu=cfg.mtu)
    return cfg


def _clock_flags(args: argparse.Namespace) -> tuple[int, str]:
    """(ns per instruction, clock mode) from --insn-ns/--clock or QEMU's
    -icount, which says both; a contradiction is a ConfigError."""
    icount = qemuflags.icount_option(args.icount)
    if icount is None:
        return (1 if args.insn_ns is None else args.insn_ns), args.clock or "auto"
    ns, clock = icount
    if args.insn_ns is not None and args.insn_ns != ns:
        raise ConfigError(f"-icount {args.icount} means --insn-ns {ns}, not {args.insn_ns}")
    if args.clock is not None and args.clock != clock:
        raise ConfigError(f"-icount {args.icount} means --clock {clock}, not --clock "
                          f"{args.clock} (sleep=off is virtual, sleep=on wall)")
    return ns, clock


def dumpdtb_path(args: argparse.Namespace) -> str | None:
    """-machine virt,dumpdtb=FILE: where to write the device tree, or None."""
    return qemuflags.machine_option(args.machine)


def wants_log_help(args: argparse.Namespace) -> bool:
    """`-d help`: print the log topics (as QEMU does) and return True."""
    if "help" not in (args.d or "").split(","):
        return False
    print(help_text(), end="")
    return True


def deadlock_span(text: str) -> int | None:
    """--deadlock SPAN in ns, or None for "off". Raises ConfigError."""
    if text == "off":
        return None
    try:
        return parse_time_ns(text)
    except ConfigError as exc:
        raise ConfigError(f"--deadlock: {exc}") from None


def plot_path(path: str | None) -> str | None:
    """--plot FILE.png, checked. Raises ConfigError for another extension."""
    if path and not path.lower().endswith(".png"):
        raise ConfigError(f"--plot {path!r}: the plot is a PNG file (FILE.png)")
    return path


def parse_gdb_addr(spec: str) -> tuple[str, int]:
    """Parse QEMU's `-gdb tcp::PORT` / `tcp:HOST:PORT` (or a bare PORT).

    Returns (host, port); an empty host means localhost (127.0.0.1) - the
    stub is a debugging back door and does not listen on other interfaces
    unless asked. Raises ValueError with a one-line message.
    """
    s = spec.strip()
    if s.isdigit():
        s = "tcp::" + s
    host, _, port_s = s[4:].rpartition(":") if s.startswith("tcp:") else ("", "", "")
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"bad -gdb address {spec!r} (expected tcp::PORT or tcp:HOST:PORT)")
    return (host or "127.0.0.1"), int(port_s)


def gdb_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """Return (host, port) for the stub, or None without -s/-gdb.
    Raises GdbFlagError for a bad address or -S without a stub."""
    spec = getattr(args, "gdb", None) or ("tcp::1234" if getattr(args, "gdb_s", False) else None)
    if spec is None:
        if getattr(args, "gdb_wait", False):
            raise GdbFlagError("-S waits for gdb: it needs -s or -gdb tcp::PORT")
        return None
    try:
        return parse_gdb_addr(spec)
    except ValueError as exc:
        raise GdbFlagError(str(exc)) from None
