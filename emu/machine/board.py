"""The board: one table of what sits where in physical memory, in the manner
of QEMU's hw/riscv/virt.c (its `virt_memmap[]` and the one function that
instantiates the devices).

Each Slot names a device, its base and size, its PLIC source (None when it
raises no interrupt) and the factory that builds the object serving it.
Everything that needs the address map reads it here: the machine maps the
slots (`build`), the boot code places RAM and the kernel, and
guest/kernel/memlayout.h mirrors it (emu/machine/memlayout.py lists the
constants, tests/test_platform.py compares). The layout follows QEMU's `virt` so that what students
know from xv6 carries over.

Layer: machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.devices.bus import Device, IrqLine
from emu.devices.nic import Nic
from emu.devices.plic import Plic
from emu.devices.timer import Timer
from emu.devices.uart import Uart
from emu.machine.devicetree import BoardSpec, ChosenSpec, DeviceSpec

# Physical memory: one RAM region. Its first 2 MiB play the firmware's part
# (OpenSBI's region on real boards); the kernel is linked just above.
RAM_BASE = 0x8000_0000
DEFAULT_RAM_SIZE = 16 << 20
MIN_RAM_SIZE = 4 << 20
MAX_RAM_SIZE = 2 << 30
KERNEL_BASE = RAM_BASE + 0x20_0000

# Virtual time: mtime counts nanoseconds of virtual time.
TIMEBASE_HZ = 1_000_000_000


class Wiring(Protocol):
    """What a slot's factory may use to build its device."""

    clock: Clock
    mem: PhysMem
    mac: bytes
    mtu: int

    def irq(self, source: int) -> IrqLine:
        """The PLIC line for `source` (the PLIC is built first)."""

    def now(self) -> int:
        """Current virtual time in ns."""

    def set_stip(self, level: bool) -> None:
        """Drive the hart's supervisor timer interrupt."""

    def set_seip(self, level: bool) -> None:
        """Drive the hart's supervisor external interrupt."""

    def console_write(self, data: bytes) -> None:
        """Bytes the guest printed."""

    def attach(self, slot: Slot, dev: Device) -> None:
        """Map `dev` at `slot` (called by build() as each device is made)."""


@dataclass(frozen=True)
class Slot:
    """One device of the board. `name` is also its prefix in memlayout.h
    (NAME_BASE, NAME_SIZE, IRQ_NAME). `kind` and the rest say how the device
    tree describes it (emu/machine/devicetree.py): `regs`, the size of its
    registers when smaller than the page-multiple it is mapped in, `ndev`
    a PLIC's sources, `compatible` an "other" device's strings."""

    name: str
    base: int
    size: int                     # a page multiple, as unicorn's mmio_map requires
    irq: int | None
    make: Callable[[Wiring, Slot], Device]
    kind: str = "other"
    regs: int = 0
    ndev: int = 0
    node: str = ""
    compatible: tuple[str, ...] = ()


# The emu board, after QEMU virt's memmap (hw/riscv/virt.c): a CLINT-like
# timer, the PLIC, the ns16550a UART on source 10, and our NIC in virtio
# slot 0's window on source 1. The PLIC comes first: the others take lines
# from it.
SLOTS: tuple[Slot, ...] = (
    Slot("plic", 0x0C00_0000, 0x40_0000, None, lambda w, s: Plic(seip=w.set_seip),
         kind="plic", ndev=32),
    Slot("timer", 0x0200_0000, 0x1_0000, None,
         lambda w, s: Timer(w.clock, w.now, w.set_stip), kind="clint"),
    Slot("uart", 0x1000_0000, 0x1000, 10,
         lambda w, s: Uart(w.irq(_irq(s)), w.console_write, w.clock, w.now),
         kind="serial", regs=0x100),
    Slot("nic", 0x1000_1000, 0x1000, 1,
         lambda w, s: Nic(w.mem, w.irq(_irq(s)), w.clock, mac=w.mac, mtu=w.mtu),
         node="ethernet", compatible=("emu,enic",)),
)


def _irq(slot: Slot) -> int:
    assert slot.irq is not None, f"{slot.name} has no interrupt line"
    return slot.irq


def slot(name: str) -> Slot:
    """The slot called `name`. Raises KeyError."""
    for s in SLOTS:
        if s.name == name:
            return s
    raise KeyError(name)


def build(wiring: Wiring) -> dict[str, Device]:
    """Instantiate every device of the table in table order, handing each
    to `wiring.attach` as soon as it exists (so later factories can take
    interrupt lines from the PLIC). Returns the devices by slot name."""
    devices: dict[str, Device] = {}
    for s in SLOTS:
        devices[s.name] = dev = s.make(wiring, s)
        wiring.attach(s, dev)
    return devices


def board_spec(ram_base: int, ram_size: int, bootargs: str = "") -> BoardSpec:
    """The device tree's description of this board (devicetree.build_dtb)."""
    devices = tuple(DeviceSpec(s.kind, s.base, s.regs or s.size, s.irq, ndev=s.ndev,
                               name=s.node, compatible=s.compatible) for s in SLOTS)
    return BoardSpec(ram_base, ram_size, devices, chosen=ChosenSpec(bootargs=bootargs))
