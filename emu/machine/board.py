"""The board: one table of what sits where in physical memory, in the manner
of QEMU's hw/riscv/virt.c (its `virt_memmap[]` and the one function that
instantiates the devices), with QEMU 7.2 virt's addresses and interrupt
sources so that images built for `qemu-system-riscv64 -machine virt` run.

    0x0000_1000  mrom      reset vector + fw_dynamic_info (boot.py; not a Slot)
    0x0010_0000  test      sifive,test finisher (poweroff, reboot)
    0x0200_0000  clint     msip, mtimecmp, mtime (10 MHz)
    0x0400_0000  nic       emu's eNIC, source 64 (QEMU: the platform bus)
    0x0c00_0000  plic      96 sources, context 0 = M, 1 = S
    0x1000_0000  uart      ns16550a, source 10
    0x1000_1000  virtio0..7  virtio-mmio, 0x1000 apart, sources 1..8
    0x8000_0000  RAM

Each Slot names a device, its base and size, its PLIC source (None when it
raises no interrupt), the factory that builds the object serving it, and
how the device tree describes it. The machine maps the slots (`build`),
the boot code places RAM, the kernel and the tree, and `board_spec` is the
tree's description of the board (emu/machine/devicetree.py), so the map
lives here only.

Layer: machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emu.core import twins
from emu.core.clock import Clock
from emu.core.memory import PhysMem
from emu.devices.bus import Device, IrqLine
from emu.devices.clint import TIMEBASE_HZ, Clint
from emu.devices.finisher import Finisher
from emu.devices.nic import Nic
from emu.devices.plic import Plic
from emu.devices.uart import Uart
from emu.devices.virtio import spec as virtio_spec
from emu.machine.devicetree import BoardSpec, ChosenSpec, DeviceSpec, HartSpec

# Physical memory: one RAM region. Its first 2 MiB are the firmware's
# (OpenSBI's fw_dynamic, or emu's built-in SBI); the kernel goes above.
RAM_BASE = 0x8000_0000
DEFAULT_RAM_SIZE = 16 << 20
MIN_RAM_SIZE = 4 << 20
MAX_RAM_SIZE = 2 << 30
KERNEL_BASE = RAM_BASE + 0x20_0000

__all__ = ["TIMEBASE_HZ", "Slot", "SLOTS", "Wiring", "board_spec", "build", "slot"]


class Wiring(Protocol):
    """What a slot's factory may use to build its device."""

    clock: Clock
    mem: PhysMem
    mac: bytes
    mtu: int
    io: str               # MachineConfig.io: which I/O-path twins run

    def irq(self, source: int) -> IrqLine:
        """The PLIC line for `source` (the PLIC is built first)."""

    def now(self) -> int:
        """Current virtual time in ns."""

    def set_line(self, irq: int, level: bool) -> None:
        """Drive the hart's interrupt `irq` (a mip bit: MSIP 3, MTIP 7,
        STIP 5, SEIP 9, MEIP 11)."""

    def console_write(self, data: bytes) -> None:
        """Bytes the guest printed."""

    def end(self, status: int) -> None:
        """The guest ended the run with `status` (the test finisher)."""

    def reset(self) -> None:
        """The guest asked for a machine reset (the test finisher)."""

    def virtio(self, index: int, slot: Slot) -> Device:
        """The virtio-mmio transport of slot `index`, with the device the
        configuration puts there (or none)."""

    def attach(self, slot: Slot, dev: Device) -> None:
        """Map `dev` at `slot` (called by build() as each device is made)."""


@dataclass(frozen=True)
class Slot:
    """One device of the board. `kind` and the rest say how the device tree
    describes it (emu/machine/devicetree.py): `regs`, the size of its
    registers when smaller than the page-multiple it is mapped in, `ndev`
    a PLIC's sources, `node` and `compatible` an "other" device's node."""

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


def _irq(slot: Slot) -> int:
    assert slot.irq is not None, f"{slot.name} has no interrupt line"
    return slot.irq


def _virtio_slot(i: int) -> Slot:
    return Slot(f"virtio{i}", virtio_spec.MMIO_BASE + i * virtio_spec.MMIO_STRIDE,
                virtio_spec.MMIO_STRIDE, virtio_spec.MMIO_IRQ_BASE + i,
                lambda w, s: w.virtio(i, s), kind="virtio_mmio")


# mip bits the CLINT and the PLIC drive (privileged spec, "mip").
_MSIP, _STIP, _MTIP, _SEIP, _MEIP = 3, 5, 7, 9, 11

# QEMU virt's devices, in address order. build() makes the PLIC first: the
# others take their interrupt lines from it.
SLOTS: tuple[Slot, ...] = (
    Slot("test", 0x0010_0000, 0x1000, None, lambda w, s: Finisher(w.end, w.reset),
         kind="test"),
    Slot("clint", 0x0200_0000, 0x1_0000, None,
         lambda w, s: Clint(w.clock, w.now, lambda v: w.set_line(_MSIP, v),
                            lambda v: w.set_line(_MTIP, v), lambda v: w.set_line(_STIP, v)),
         kind="clint"),
    Slot("nic", 0x0400_0000, 0x1000, 64,
         lambda w, s: twins.pick_class("nic", w.io, Nic)(w.mem, w.irq(_irq(s)), w.clock,
                                                         mac=w.mac, mtu=w.mtu),
         node="ethernet", compatible=("emu,enic",)),
    Slot("plic", 0x0C00_0000, 0x60_0000, None,
         lambda w, s: twins.pick_class("plic", w.io, Plic)(meip=lambda v: w.set_line(_MEIP, v),
                                                  seip=lambda v: w.set_line(_SEIP, v)),
         kind="plic", ndev=96),
    Slot("uart", 0x1000_0000, 0x1000, 10,
         lambda w, s: Uart(w.irq(_irq(s)), w.console_write, w.clock, w.now),
         kind="serial", regs=0x100),
    *(_virtio_slot(i) for i in range(virtio_spec.MMIO_SLOTS)),
)


def slot(name: str) -> Slot:
    """The slot called `name`. Raises KeyError."""
    for s in SLOTS:
        if s.name == name:
            return s
    raise KeyError(name)


def build(wiring: Wiring) -> dict[str, Device]:
    """Instantiate every device of the table, the PLIC first and the rest in
    table order, handing each to `wiring.attach` as soon as it exists.
    Returns the devices by slot name."""
    devices: dict[str, Device] = {}
    for s in sorted(SLOTS, key=lambda s: s.kind != "plic"):
        devices[s.name] = dev = s.make(wiring, s)
        wiring.attach(s, dev)
    return devices


def board_spec(ram_base: int, ram_size: int, bootargs: str = "",
               initrd: tuple[int, int] | None = None, rng_seed: bytes = b"") -> BoardSpec:
    """The device tree's description of this board (devicetree.build_dtb)."""
    devices = tuple(DeviceSpec(s.kind, s.base, s.regs or s.size, s.irq, ndev=s.ndev,
                               name=s.node, compatible=s.compatible) for s in SLOTS)
    return BoardSpec(ram_base, ram_size, devices, hart=HartSpec(timebase_hz=TIMEBASE_HZ),
                     chosen=ChosenSpec(bootargs=bootargs, initrd=initrd, rng_seed=rng_seed))
