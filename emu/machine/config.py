"""MachineConfig: every knob of a run, with its default, in one dataclass.

The CLI parses flags into a MachineConfig; tests build one directly. Parsing
helpers raise ConfigError with a one-line message for bad values.

Layer: machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emu.core.units import ConfigError
from emu.devices.virtio import spec as virtio_spec
from emu.machine import board
from emu.machine.peers import CLOCK_MODES
from emu.machine.tracelog import TOPICS
from emu.net.netem import parse_netem
from emu.net.network import NetConfig

DEBUG_TOPICS = tuple(TOPICS)


@dataclass(frozen=True)
class DiskSpec:
    """One virtio-blk disk (QEMU's `-drive file=F,format=raw,if=none,id=X`
    plus `-device virtio-blk-device,drive=X[,bus=virtio-mmio-bus.N]`):
    the raw image `file`, the virtio-mmio `slot` it sits in (None: the
    last free one, as QEMU places a device without bus=), whether writes
    go to a throw-away overlay (`snapshot`), a read-only image, and the
    serial GET_ID returns."""

    file: str
    slot: int | None = None
    snapshot: bool = False
    read_only: bool = False
    serial: str = ""


QEMU_MAC_BASE = 0x5254_0012_3456     # QEMU's first NIC: 52:54:00:12:34:56 (net/net.c)


def qemu_mac(index: int) -> bytes:
    """QEMU's default MAC for NIC `index` (0 is emu's eNIC, virtio-net
    devices count on from 1), as qemu_macaddr_default_if_unset numbers them."""
    return (QEMU_MAC_BASE + index).to_bytes(6, "big")


@dataclass(frozen=True)
class NicSpec:
    """One virtio-net device on emu's segment (QEMU's `-netdev segment,id=ID`
    plus `-device virtio-net-device,netdev=ID[,mac=M][,host_mtu=N]
    [,csum=off][,host_tso4=off][,host_tso6=off][,bus=virtio-mmio-bus.N]`):
    `netdev`, its port's name on the segment; its `mac`; the MTU it offers
    (None: VIRTIO_NET_F_MTU not offered, the driver uses 1500); the
    transmit offloads it offers; its virtio-mmio `slot` (None: as
    place_virtio says); `netem`, the impairments of its link in --net's
    spelling (None: --net's)."""

    netdev: str
    mac: bytes = qemu_mac(1)
    mtu: int | None = None
    slot: int | None = None
    netem: str | None = None
    csum: bool = True
    host_tso4: bool = True
    host_tso6: bool = True


VirtioSpec = DiskSpec | NicSpec
RESERVED_PORTS = ("guest", "noise")   # the eNIC's and the noise generator's segment ports


def _what(d: VirtioSpec) -> str:
    return d.file if isinstance(d, DiskSpec) else f"netdev {d.netdev}"


def place_virtio(devices: tuple[VirtioSpec, ...]) -> list[VirtioSpec | None]:
    """The device in each virtio-mmio slot, as QEMU places them: a device
    with a slot there, the others in the highest free slots in the order
    given (the command line's). Raises ConfigError for two devices on one
    slot, a slot out of range, or more devices than slots."""
    n = virtio_spec.MMIO_SLOTS
    slots: list[VirtioSpec | None] = [None] * n
    for d in devices:
        if d.slot is None:
            continue
        if not 0 <= d.slot < n:
            raise ConfigError(f"bus=virtio-mmio-bus.{d.slot}: there are {n} virtio-mmio "
                              f"buses (0..{n - 1})")
        if slots[d.slot] is not None:
            raise ConfigError(f"bus=virtio-mmio-bus.{d.slot} already holds a device")
        slots[d.slot] = d
    for d in devices:
        if d.slot is not None:
            continue
        free = [i for i in range(n) if slots[i] is None]
        if not free:
            raise ConfigError(f"no free virtio-mmio bus for {_what(d)} (all {n} in use)")
        slots[free[-1]] = d
    return slots


def check_nics(nics: tuple[NicSpec, ...]) -> None:
    """Raise ConfigError for a duplicate or reserved netdev name, a MAC that
    is not unicast, two NICs with one MAC, an MTU outside 68..9000 or a bad
    netem spec."""
    seen: set[str] = set()
    macs: set[bytes] = set()
    for nic in nics:
        where = f"netdev {nic.netdev!r}"
        if not nic.netdev or nic.netdev in seen or nic.netdev in RESERVED_PORTS \
                or re.fullmatch(r"e\d+\.\d+|bridge-.*", nic.netdev):
            raise ConfigError(f"{where}: the name is empty, used twice or one the segment "
                              f"uses ({', '.join(RESERVED_PORTS)}, eS.N, bridge-IFACE)")
        seen.add(nic.netdev)
        if len(nic.mac) != 6 or nic.mac[0] & 1:
            raise ConfigError(f"{where}: mac {nic.mac.hex(':')} is not a unicast address")
        if nic.mac in macs:
            raise ConfigError(f"{where}: mac {nic.mac.hex(':')} is used by another NIC")
        macs.add(nic.mac)
        if nic.mtu is not None and not 68 <= nic.mtu <= 9000:
            raise ConfigError(f"{where}: host_mtu={nic.mtu} out of range (68..9000)")
        if nic.netem is not None:
            try:
                parse_netem(nic.netem)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None


@dataclass
class MachineConfig:
    """Everything that defines a run. Same config + same image = same run."""

    kernel: str | None = None          # ELF or raw image; None = the built default guest
    bios: str = "default"              # "default" (built-in SBI), "none" or a firmware file
    ram_size: int = board.DEFAULT_RAM_SIZE
    append: str = ""                   # kernel command line (-append)
    mmu: str = "auto"                  # "python" | "fast" | "auto"
    budget: str = "auto"               # block-budget twin: "python" | "fast" | "auto"
    traps: str = "auto"                # trap-path twin: "python" | "fast" | "auto"
    io: str = "auto"                   # I/O-path twins (emu/core/twins.py): python/fast/auto
    seed: int = 0
    max_insns: int | None = None       # stop with status 124 when exhausted
    ns_per_insn: int = 1               # virtual time per retired instruction
    slice_insns: int = 1_000_000       # longest slice between event checks
    debug: tuple[str, ...] = ()        # -d topics
    debug_file: str | None = None      # -D file (stderr when None)
    stats_json: str | None = None
    mac: bytes = qemu_mac(0)           # the eNIC's MAC: QEMU's first NIC
    mtu: int = 9000                    # NIC MTU: 9000 carries a 4 KiB page per AoE frame
    net: NetConfig | None = None       # None = defaults (a perfect link, mem:64M)
    clock: str = "auto"                # virtual | wall | auto (emu/machine/peers.py)
    initrd: str | None = None          # -initrd FILE, placed as QEMU 7.2 places it
    dtb: str | None = None             # -dtb FILE instead of the generated tree
    disks: tuple[DiskSpec, ...] = ()   # virtio-blk devices
    nics: tuple[NicSpec, ...] = ()     # virtio-net devices on the segment
    virtio_legacy: bool = True         # QEMU 7.2's virtio-mmio.force-legacy default
    console_send: tuple[str, ...] = ()  # lines typed after each console prompt (--send)
    console_prompt: str = "$ "         # what the guest prints when it waits for a line
    console_until: str | None = None   # end the run (status 0) once the guest prints this

    def validate(self) -> None:
        """Raise ConfigError if a knob is out of range."""
        if not board.MIN_RAM_SIZE <= self.ram_size <= board.MAX_RAM_SIZE:
            raise ConfigError(
                f"memory size {self.ram_size >> 20}M out of range "
                f"({board.MIN_RAM_SIZE >> 20}M..{board.MAX_RAM_SIZE >> 20}M)")
        if self.ram_size % 4096:
            raise ConfigError("memory size must be a multiple of 4 KiB")
        if self.clock not in CLOCK_MODES:
            raise ConfigError(f"bad --clock {self.clock!r} ({', '.join(CLOCK_MODES)})")
        if self.mmu not in ("python", "fast", "auto"):
            raise ConfigError(f"bad --mmu {self.mmu!r} (python, fast or auto)")
        if self.budget not in ("python", "fast", "auto"):
            raise ConfigError(f"bad budget implementation {self.budget!r}")
        if self.traps not in ("python", "fast", "auto"):
            raise ConfigError(f"bad trap-path implementation {self.traps!r}")
        if self.io not in ("python", "fast", "auto"):
            raise ConfigError(f"bad I/O-path implementation {self.io!r}")
        if self.max_insns is not None and self.max_insns <= 0:
            raise ConfigError("--max-insns must be positive")
        if self.ns_per_insn <= 0:
            raise ConfigError("instruction time must be positive")
        place_virtio(self.disks + self.nics)
        check_nics(self.nics)
        if self.console_send and not self.console_prompt:
            raise ConfigError("--send needs a non-empty --prompt")
        if self.console_until == "":
            raise ConfigError("--until needs a text to wait for")
        if not 68 <= self.mtu <= 9000:
            raise ConfigError(f"MTU {self.mtu} out of range (68..9000)")
        if len(self.mac) != 6:
            raise ConfigError("a MAC address has 6 bytes")
        for t in self.debug:
            if t not in DEBUG_TOPICS:
                raise ConfigError(f"unknown -d topic {t!r} (known: {', '.join(DEBUG_TOPICS)}; "
                                  "-d help explains them)")
