"""QEMU's command-line spelling for the `virt` board: the options a guest's
own Makefile passes to qemu-system-riscv64 (xv6's, OpenSBI's, Linux's),
parsed into what MachineConfig holds.

Accepted, with QEMU 7.2's meaning:
  -machine virt[,dumpdtb=FILE]    -M the same; dumpdtb writes the device tree and exits
  -smp 1                          emu has one hart; more is refused
  -nographic, -display none       emu has no display: the console is stdio
  -serial mon:stdio | stdio       the UART on stdio (the only place it can be)
  -monitor none | stdio           no monitor (stdio: the console is still stdio)
  -global virtio-mmio.force-legacy=on|off|true|false
  -drive file=F,if=none,format=raw,id=ID[,snapshot=on][,readonly=on]
  -device virtio-blk-device,drive=ID[,bus=virtio-mmio-bus.N][,serial=S]
  -drive file=F,format=raw,if=virtio   the short form: a virtio-blk disk in the
                                  highest free virtio-mmio slot. (QEMU 7.2 puts
                                  it on virt's PCI bus, which emu does not have;
                                  xv6 and Linux find it on virtio-mmio.)
  -netdev segment,id=ID[,netem=SPEC]   a port on emu's segment (the --net/--target
                                  network); SPEC (--net's spelling) impairs this
                                  NIC's link alone, else --net's apply
  -device virtio-net-device,netdev=ID[,mac=M][,host_mtu=N][,csum=on|off]
          [,host_tso4=on|off][,host_tso6=on|off][,bus=virtio-mmio-bus.N]
                                  a virtio-net NIC on it (QEMU's MAC numbering:
                                  the eNIC is NIC 0, so the first is ...:57)
  -snapshot                       every drive as snapshot=on
  -no-reboot                      a guest reset ends the run (emu always does)
  -icount [shift=]N[,sleep=on|off][,align=off]
                                  one instruction every 2^N virtual ns (N 0..10,
                                  emu's --insn-ns); sleep=off: an idle hart's time
                                  jumps to the next event (--clock virtual),
                                  sleep=on (QEMU's default): idle time follows the
                                  host clock (--clock wall). emu's clock always
                                  counts instructions: shift=auto, align=on and
                                  rr= are refused

Option strings follow QemuOpts: comma-separated key=value pairs, ",," is a
literal comma, and a first item without "=" is the implied key (the machine
type, the device driver). Anything else is a one-line ConfigError - never a
silently different machine.

Layer: tools.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace

from emu.core.units import ConfigError
from emu.machine.config import DiskSpec, NicSpec, VirtioSpec, place_virtio, qemu_mac

_BOOL = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
DRIVE_KEYS = {"file", "if", "format", "id", "snapshot", "readonly", "media", "cache"}
BLK_KEYS = {"drive", "bus", "serial"}
NET_KEYS = {"netdev", "bus", "mac", "host_mtu", "csum", "host_tso4", "host_tso6"}
NETDEV_KEYS = {"id", "netem"}


def parse_opts(text: str, implied: str | None = None) -> dict[str, str]:
    """QemuOpts: "a=1,b=x,,y" -> {"a": "1", "b": "x,y"}; a first item
    without "=" is stored under `implied`. Raises ConfigError."""
    items: list[str] = []
    cur = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == ",":
            if text[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            items.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    items.append(cur)
    out: dict[str, str] = {}
    for n, item in enumerate(items):
        key, eq, value = item.partition("=")
        if not eq:
            if n == 0 and implied is not None and item:
                out[implied] = item
                continue
            raise ConfigError(f"{text!r}: expected key=value, got {item!r}")
        out[key] = value
    return out


def _flag(opts: dict[str, str], key: str, where: str, default: bool = False) -> bool:
    """The on/off option `key` (QEMU's spellings), `default` when absent.
    Raises ConfigError for another value."""
    value = opts.get(key, "on" if default else "off")
    if value not in _BOOL:
        raise ConfigError(f"{where}: {key}={value!r} is not on/off")
    return _BOOL[value]


def machine_option(text: str | None) -> str | None:
    """-machine virt[,dumpdtb=FILE]: returns the dumpdtb file or None.
    Raises ConfigError for another board or option."""
    if text is None:
        return None
    opts = parse_opts(text, implied="type")
    kind = opts.pop("type", "virt")
    if kind != "virt":
        raise ConfigError(f"-machine {kind}: emu is QEMU's virt board (-machine virt)")
    dumpdtb = opts.pop("dumpdtb", None)
    if opts:
        raise ConfigError(f"-machine: unsupported option {sorted(opts)[0]!r} (emu knows "
                          "virt and dumpdtb=FILE)")
    return dumpdtb


def smp_option(text: str | None) -> None:
    """-smp N: emu has one hart. Raises ConfigError for more."""
    if text is None:
        return
    opts = parse_opts(text, implied="cpus")
    cpus = opts.pop("cpus", "1")
    if cpus != "1" or any(v != "1" for v in opts.values()):
        raise ConfigError(f"-smp {text}: emu has one hart (-smp 1)")


def serial_option(text: str | None) -> None:
    """-serial: the UART can only be on stdio. Raises ConfigError."""
    if text not in (None, "stdio", "mon:stdio"):
        raise ConfigError(f"-serial {text}: emu's UART is on stdio (-serial mon:stdio)")


def monitor_option(text: str | None) -> None:
    """-monitor: emu has no monitor; none (and stdio, shared with the console) accepted."""
    if text not in (None, "none", "stdio"):
        raise ConfigError(f"-monitor {text}: emu has no QEMU monitor (-monitor none)")


def display_option(text: str | None) -> None:
    """-display: emu has no display."""
    if text not in (None, "none"):
        raise ConfigError(f"-display {text}: emu has no display (-display none)")


MAX_ICOUNT_SHIFT = 10      # QEMU 7.2 refuses a larger shift ("Invalid shift value")


def icount_option(text: str | None) -> tuple[int, str] | None:
    """-icount [shift=]N[,sleep=on|off][,align=off]: (ns per instruction,
    clock mode), or None when not given. QEMU's sleep=on (its default) lets
    virtual time follow the host clock while the hart is idle, as emu's
    --clock wall does; sleep=off jumps to the next timer deadline, as
    --clock virtual does (QEMU's docs before 2025 had the two swapped; its
    code and emu agree). Raises ConfigError for what emu cannot do: a clock
    that adapts to the host (shift=auto, align=on) or record/replay."""
    if text is None:
        return None
    opts = parse_opts(text, implied="shift")
    shift = opts.pop("shift", "")
    sleep = _flag(opts, "sleep", "-icount", default=True)
    opts.pop("sleep", None)
    if _flag(opts, "align", "-icount"):
        raise ConfigError("-icount align=on: emu's virtual clock counts instructions and is "
                          "never paced by the host (leave align off)")
    opts.pop("align", None)
    if opts:
        raise ConfigError(f"-icount: unsupported option {sorted(opts)[0]!r} (emu knows "
                          "shift=N, sleep=on|off and align=off)")
    if not shift:
        raise ConfigError(f"-icount {text}: needs shift=N (one instruction every 2^N ns, "
                          f"N 0..{MAX_ICOUNT_SHIFT}; QEMU without it keeps the host clock, "
                          "which emu does not have)")
    if shift == "auto":
        raise ConfigError("-icount shift=auto: emu's virtual clock runs at a fixed rate "
                          "(shift=N, N 0..10), it does not adapt to the host")
    try:
        n = int(shift, 0)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_ICOUNT_SHIFT:
        raise ConfigError(f"-icount shift={shift}: an integer 0..{MAX_ICOUNT_SHIFT} "
                          "(one instruction every 2^N ns), as QEMU")
    return 1 << n, "wall" if sleep else "virtual"


def global_options(items: list[str]) -> bool | None:
    """-global DRIVER.PROP=VALUE: only virtio-mmio.force-legacy. Returns its
    value or None when not given. Raises ConfigError."""
    legacy: bool | None = None
    for item in items:
        prop, eq, value = item.partition("=")
        if not eq or prop != "virtio-mmio.force-legacy":
            raise ConfigError(f"-global {item}: emu knows only virtio-mmio.force-legacy=on|off")
        if value not in _BOOL:
            raise ConfigError(f"-global {item}: {value!r} is not on/off")
        legacy = _BOOL[value]
    return legacy


def netdevs_from(netdevs: list[str]) -> dict[str, str | None]:
    """-netdev segment,id=ID[,netem=SPEC] lines -> {id: netem or None}.
    emu's one backend is its segment (the switch, links, targets and pcap
    of --net/--target/--pcap); SPEC is --net's spelling for this NIC's link
    alone. Raises ConfigError (another backend, unknown keys, no or a
    duplicate id)."""
    out: dict[str, str | None] = {}
    for text in netdevs:
        opts = parse_opts(text, implied="type")
        kind = opts.pop("type", "")
        if kind != "segment":
            raise ConfigError(f"-netdev {text}: emu's one backend is its emulated segment "
                              "(-netdev segment,id=ID[,netem=SPEC]); a real interface "
                              "joins it with --target iface:NAME")
        unknown = set(opts) - NETDEV_KEYS
        if unknown:
            raise ConfigError(f"-netdev {text}: unsupported option {sorted(unknown)[0]!r}")
        ident = opts.get("id", "")
        if not ident:
            raise ConfigError(f"-netdev {text}: needs id=ID for -device to name it")
        if ident in out:
            raise ConfigError(f"-netdev {text}: duplicate id {ident!r}")
        out[ident] = opts.get("netem")
    return out


def _bus(opts: dict[str, str], text: str) -> int | None:
    bus = opts.get("bus")
    if bus is None:
        return None
    prefix = "virtio-mmio-bus."
    if not bus.startswith(prefix) or not bus[len(prefix):].isdigit():
        raise ConfigError(f"-device {text}: bus={bus!r} is not virtio-mmio-bus.N")
    return int(bus[len(prefix):])


def _mac(text: str, where: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ConfigError(f"{where}: mac={text!r} is not six hex bytes (52:54:00:12:34:56)")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ConfigError(f"{where}: mac={text!r} is not six hex bytes") from None


def _backend(opts: dict[str, str], text: str, keys: set[str], key: str, known: Container[str],
             used: set[str]) -> str:
    """The -drive or -netdev a -device line names with `key` (checked
    against `known`, and marked in `used`: one device each). Raises
    ConfigError for options outside `keys`, an unknown or a used id."""
    unknown = set(opts) - keys
    if unknown:
        raise ConfigError(f"-device {text}: unsupported option {sorted(unknown)[0]!r}")
    ident = opts.get(key, "")
    if ident not in known:
        raise ConfigError(f"-device {text}: no -{key} with id={ident!r}")
    if ident in used:
        raise ConfigError(f"-device {text}: {key} {ident!r} is already in use")
    used.add(ident)
    return ident


def _net_device(opts: dict[str, str], text: str, netdevs: dict[str, str | None],
                used: set[str]) -> NicSpec:
    """One -device virtio-net-device: the NIC on its netdev. The n-th NIC
    gets QEMU's default MAC for NIC n + 1 (the eNIC is the first)."""
    mac = qemu_mac(len(used) + 1)
    ident = _backend(opts, text, NET_KEYS, "netdev", netdevs, used)
    spec_mac = _mac(opts["mac"], f"-device {text}") if "mac" in opts else mac
    mtu = opts.get("host_mtu")
    if mtu is not None and not mtu.isdigit():
        raise ConfigError(f"-device {text}: host_mtu={mtu!r} is not a number")
    on = {k: _flag(opts, k, f"-device {text}", default=True)
          for k in ("csum", "host_tso4", "host_tso6")}
    return NicSpec(netdev=ident, mac=spec_mac, mtu=int(mtu) if mtu is not None else None,
                   slot=_bus(opts, text), netem=netdevs[ident], **on)


def devices_from(drives: list[str], devices: list[str], netdevs: list[str],
                 snapshot: bool) -> tuple[tuple[DiskSpec, ...], tuple[NicSpec, ...]]:
    """-drive, -netdev and -device lines -> the disks and the NICs, each
    with the virtio-mmio slot QEMU gives it: -device lines in command-line
    order, then the if=virtio drives (config.place_virtio). A drive or
    netdev no device uses stays unattached, as in QEMU. Raises ConfigError
    (unknown keys, formats, ids, drivers; a drive or netdev used twice;
    slots)."""
    by_id: dict[str, dict[str, str]] = {}
    short: list[DiskSpec] = []
    for text in drives:
        opts = parse_opts(text, implied="file")
        unknown = set(opts) - DRIVE_KEYS
        if unknown:
            raise ConfigError(f"-drive {text}: unsupported option {sorted(unknown)[0]!r}")
        if "file" not in opts or not opts["file"]:
            raise ConfigError(f"-drive {text}: needs file=IMAGE")
        if opts.get("format", "raw") != "raw":
            raise ConfigError(f"-drive {text}: emu reads raw images only (format=raw)")
        iface = opts.get("if", "none")
        if iface not in ("none", "virtio"):
            raise ConfigError(f"-drive {text}: if={iface} needs a bus emu does not have; use "
                              "if=virtio, or if=none,id=ID with -device "
                              "virtio-blk-device,drive=ID")
        if opts.get("media", "disk") != "disk":
            raise ConfigError(f"-drive {text}: emu has disks only (media=disk)")
        where = f"-drive {text}"
        if iface == "virtio":
            short.append(DiskSpec(file=opts["file"], snapshot=snapshot or
                                  _flag(opts, "snapshot", where),
                                  read_only=_flag(opts, "readonly", where)))
            continue
        ident = opts.get("id")
        if not ident:
            raise ConfigError(f"-drive {text}: if=none needs id=ID for -device to name it")
        if ident in by_id:
            raise ConfigError(f"-drive {text}: duplicate id {ident!r}")
        by_id[ident] = opts
    nets = netdevs_from(netdevs)
    used: set[str] = set()
    used_nets: set[str] = set()
    ordered: list[VirtioSpec] = []
    for text in devices:
        opts = parse_opts(text, implied="driver")
        driver = opts.pop("driver", "")
        if driver == "virtio-net-device":
            ordered.append(_net_device(opts, text, nets, used_nets))
            continue
        if driver != "virtio-blk-device":
            raise ConfigError(f"-device {driver or text}: emu has virtio-blk-device and "
                              "virtio-net-device (on the virtio-mmio bus)")
        ident = _backend(opts, text, BLK_KEYS, "drive", by_id, used)
        drive = by_id[ident]
        where = f"-drive id={ident}"
        ordered.append(DiskSpec(file=drive["file"], slot=_bus(opts, text),
                                snapshot=snapshot or _flag(drive, "snapshot", where),
                                read_only=_flag(drive, "readonly", where),
                                serial=opts.get("serial", "")))
    ordered += short
    placed = place_virtio(tuple(ordered))
    slot_of = {id(d): i for i, d in enumerate(placed) if d is not None}
    fixed = [replace(d, slot=slot_of[id(d)]) for d in ordered]
    return (tuple(d for d in fixed if isinstance(d, DiskSpec)),
            tuple(d for d in fixed if isinstance(d, NicSpec)))
