"""The flattened device tree (DTB) emu hands a guest in a1 at entry, made
from a plain description of the board (BoardSpec) the way QEMU 7.2's
hw/riscv/virt.c makes the tree of its `virt` machine.

What it holds, as QEMU 7.2 writes it for the same devices (node names, unit
addresses, property values and even their order, so that
`dtc -I dtb -O dts` of both trees can be diffed): the root (2 address and 2
size cells), /chosen (`bootargs` when -append is not empty, `stdout-path`
of the first serial device, `linux,initrd-start`/`-end` as QEMU 7.2's single
cells, `rng-seed` when one is given), /poweroff and /reboot (syscon nodes on
the test finisher), /memory@BASE, /cpus with its timebase, one cpu whose
interrupt controller (riscv,cpu-intc) the CLINT and the PLIC point at with
`interrupts-extended` (M and S contexts), /cpus/cpu-map, and /soc
(simple-bus) with one node per device. Phandles are allocated as QEMU does:
cpu 1, its interrupt controller 2, the PLIC 3, the test finisher next.

Where emu's tree differs from QEMU 7.2's (docs/guests.md):
- QEMU's devices that emu does not have are left out: pmu, fw-cfg, flash,
  pci, rtc, platform-bus. A device of kind "other" (emu's eNIC, compatible
  "emu,enic") gets a node of a virtio node's shape under /soc.
- root `model` is "riscv-virtio,emu" (QEMU: "riscv-virtio,qemu"); the root
  `compatible` stays "riscv-virtio": emu is that board, so software that
  keys on it treats emu as it treats QEMU's virt, and `model` says who made
  the tree.
- `mmu-type` is "riscv,sv39" (QEMU: sv48): emu's page walker is Sv39.
- `riscv,isa` advertises what unicorn 2.1.4 (the pinned CPU, QEMU 5.0
  based) executes, not what QEMU 7.2's default cpu has. misa reads
  RV64 ACDFIMSU, and probing one instruction of each extension in M-mode
  (tests/test_devicetree.py repeats it) gives:
  i m a f d c execute (mul, amoadd.d, lr.d, fadd.s, fadd.d, fld, c.addi);
  zicsr and zifencei execute (csrrs, fence.i), so "_zicsr_zifencei" is
  written out as QEMU 7.2 does; q, v, h, zba, zbb, zbc, zbs, zfh, zicbom,
  zicboz, svinval, sstc (stimecmp) all raise illegal instruction. `pause`
  runs (it is a FENCE hint every RV64I core executes), but QEMU 5.0 does
  not know zihintpause, so it is not claimed; a guest loses nothing by
  that. rdtime traps in unicorn (emu answers it), and QEMU 7.2 does not
  name zicntr either. s and u are privilege modes, which riscv,isa does
  not list. Svpbmt is the page walker's to grant, and emu's Sv39 walker
  treats those PTE bits as reserved. Hence "rv64imafdc_zicsr_zifencei".
- the cpu's interrupt controller carries `#address-cells = <0>`, which
  QEMU 7.2's lacks: dtc warns (interrupt_provider) on QEMU's tree, not on
  emu's. A cpu-intc has no children, so 0 is the only meaning it can have
  and no guest reads it.

The blob is packed (no free space, as QEMU's riscv_load_fdt packs it):
firmware such as OpenSBI grows it in place, into the room that
`fdt_address` leaves up to the end of RAM.

The library: `fdt` (PyPI, pure Python, Apache-2.0) builds the tree and
writes the DTB (v17, last compatible version 16, the header and block
layout dtc and libfdt write). The candidates: `pylibfdt` is libfdt itself,
maintained with dtc, but PyPI has only its source, so installing it needs
a C compiler, the Python headers and SWIG: emu must install where its own
compiled twins cannot be built (they fall back to Python), so a hard
dependency on a C build is out. `devicetree` (Zephyr's dtlib/edtlib) reads
DTS source and writes no DTB. `pyfdt` was last released in 2015. `fdt`
installs as a wheel with no system package and has no dependencies; its
last release is 0.3.3 (2022), so it is pinned to 0.3.x, and
tests/test_devicetree.py checks its output with dtc.

Layer: machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

import fdt as fdtlib
from fdt import FDT, Node, PropBytes, Property, PropWords

from emu.core.units import ConfigError
from emu.devices.clint import TIMEBASE_HZ

RISCV_ISA = "rv64imafdc_zicsr_zifencei"
MMU_TYPE = "riscv,sv39"
ROOT_COMPATIBLE = "riscv-virtio"
ROOT_MODEL = "riscv-virtio,emu"

KINDS = ("clint", "plic", "serial", "virtio_mmio", "test", "other")
_SINGLE = ("clint", "plic", "test")      # at most one of each on the board
_NEED_IRQ = ("serial", "virtio_mmio")    # a PLIC source is required
_NO_IRQ = ("clint", "plic", "test")      # a PLIC source is refused

# Hart-local interrupt numbers (mip bits) the CLINT and the PLIC drive.
IRQ_M_SOFT, IRQ_M_TIMER, IRQ_S_EXT, IRQ_M_EXT = 3, 7, 9, 11
UART_CLOCK_HZ = 3_686_400                # QEMU virt's ns16550a clock (0x384000)
FINISHER_PASS, FINISHER_RESET = 0x5555, 0x7777   # sifive_test values

FDT_MAX_SIZE = 1 << 20                   # QEMU virt's FDT_MAX_SIZE
FDT_ALIGN = 2 << 20                      # hw/riscv/boot.c: 2 MiB aligned
FDT_32BIT_LIMIT = 3072 << 20             # ... and below 3 GiB when RAM starts there

_NODE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9,._+-]{0,30}$")
_ISA = re.compile(r"^rv64[a-z]+(_[a-z][a-z0-9]*)*$")


@dataclass(frozen=True)
class HartSpec:
    """The one hart: its `riscv,isa`, `mmu-type`, the /cpus timebase in Hz
    and its hart id (the cpu node's unit address and `reg`)."""

    isa: str = RISCV_ISA
    mmu_type: str = MMU_TYPE
    timebase_hz: int = TIMEBASE_HZ
    hart_id: int = 0


@dataclass(frozen=True)
class ChosenSpec:
    """/chosen: the -append string (no property when empty, as QEMU), the
    initrd's [start, end) physical addresses when there is one, and the
    bytes of `rng-seed` (none when empty; QEMU 7.2 writes 32 random bytes,
    emu would derive them from its seed to stay deterministic)."""

    bootargs: str = ""
    initrd: tuple[int, int] | None = None
    rng_seed: bytes = b""


@dataclass(frozen=True)
class DeviceSpec:
    """One device: `kind` (one of KINDS), `base` and `size` of its registers
    (the device's own size, e.g. 0x100 for the UART, not the page it is
    mapped in), `irq` its PLIC source. A "plic" gives `ndev`, its number of
    sources (`riscv,ndev`); an "other" gives its node `name` (e.g.
    "ethernet") and `compatible` strings."""

    kind: str
    base: int
    size: int
    irq: int | None = None
    ndev: int = 0
    name: str = ""
    compatible: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoardSpec:
    """What the tree describes: one RAM region, the devices, the hart and
    /chosen."""

    ram_base: int
    ram_size: int
    devices: tuple[DeviceSpec, ...]
    hart: HartSpec = field(default_factory=HartSpec)
    chosen: ChosenSpec = field(default_factory=ChosenSpec)


def build_dtb(spec: BoardSpec) -> bytes:
    """Return the packed DTB (version 17) for `spec`, at most FDT_MAX_SIZE
    bytes. Raises ConfigError (a ValueError, one line) for a description
    that makes no valid board: an unknown kind, a missing or refused PLIC
    source, overlapping regions, a bad name or string."""
    check(spec)
    tree = FDT(entries=[])
    _fill_root(tree.root, spec)
    blob = tree.to_dtb(version=17, boot_cpuid_phys=spec.hart.hart_id)
    if len(blob) > FDT_MAX_SIZE:
        raise ConfigError(f"device tree of {len(blob)} bytes is over the "
                          f"{FDT_MAX_SIZE}-byte limit (a shorter -append?)")
    return blob


def fdt_address(ram_base: int, ram_size: int, fdt_size: int) -> int:
    """Where QEMU 7.2 (hw/riscv/boot.c riscv_load_fdt) puts a DTB of
    `fdt_size` bytes: 2 MiB aligned down from the end of RAM minus the
    size, where the end of RAM is capped at 3 GiB when RAM starts below
    3 GiB (so with RAM at 0x8000_0000, within its first GiB). For -m 128M,
    0x87e0_0000. Raises ConfigError when RAM cannot hold the tree there."""
    ram_end = ram_base + ram_size
    top = min(ram_end, FDT_32BIT_LIMIT) if ram_base < FDT_32BIT_LIMIT else ram_end
    addr = (top - fdt_size) & ~(FDT_ALIGN - 1)
    if fdt_size <= 0 or addr < ram_base:
        raise ConfigError(f"a {fdt_size}-byte device tree does not fit in "
                          f"{ram_size >> 20} MiB of RAM")
    return addr


def patch_chosen(blob: bytes, bootargs: str = "",
                 initrd: tuple[int, int] | None = None) -> bytes:
    """A tree the user brought (-dtb FILE) with /chosen's `bootargs` and
    initrd properties set from -append and -initrd, as QEMU 7.2 sets them
    in whatever tree it loads; the rest of the tree is kept. Raises
    ConfigError (one line) if `blob` is not a flattened device tree."""
    try:
        tree = fdtlib.parse_dtb(blob)
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds
        raise ConfigError(f"-dtb: not a flattened device tree ({exc})") from None
    if not tree.exist_node("chosen"):
        tree.add_item(Node("chosen"))
    if bootargs:
        tree.set_property("bootargs", bootargs, path="/chosen")
    if initrd is not None:
        chosen = tree.get_node("chosen")
        for prop in (_addr("linux,initrd-start", initrd[0]),
                     _addr("linux,initrd-end", initrd[1])):
            if chosen.exist_property(prop.name):
                chosen.remove_property(prop.name)
            chosen.append(prop)
    return tree.to_dtb(version=17)


# -- checking the description ---------------------------------------------

def check(spec: BoardSpec) -> None:
    """Raise ConfigError (one line) unless `spec` describes a board the tree
    can describe; see build_dtb."""
    _check_region("RAM", spec.ram_base, spec.ram_size)
    kinds = [d.kind for d in spec.devices]
    for d in spec.devices:
        _check_device(d)
    for kind in _SINGLE:
        if kinds.count(kind) > 1:
            raise ConfigError(f"the board has {kinds.count(kind)} {kind} devices, at most one")
    plic = next((d for d in spec.devices if d.kind == "plic"), None)
    for d in spec.devices:
        if d.irq is not None and (plic is None or not 1 <= d.irq <= plic.ndev):
            where = "no PLIC" if plic is None else f"PLIC sources 1..{plic.ndev}"
            raise ConfigError(f"{_label(d)}: PLIC source {d.irq} but the board has {where}")
    regions = sorted([(spec.ram_base, spec.ram_size, "RAM")]
                     + [(d.base, d.size, _label(d)) for d in spec.devices])
    for (b0, s0, n0), (b1, _, n1) in pairwise(regions):
        if b0 + s0 > b1:
            raise ConfigError(f"{n0} at {b0:#x} (size {s0:#x}) overlaps {n1} at {b1:#x}")
    _check_hart(spec.hart)
    _check_chosen(spec.chosen, spec.ram_base, spec.ram_size)


def _label(d: DeviceSpec) -> str:
    return f"{d.name or d.kind}@{d.base:x}"


def _check_region(what: str, base: int, size: int) -> None:
    if base < 0 or size <= 0 or base + size > 1 << 64:
        raise ConfigError(f"{what}: base {base:#x} size {size:#x} is not a region "
                          "of the 64-bit physical address space")


def _check_device(d: DeviceSpec) -> None:
    if d.kind not in KINDS:
        raise ConfigError(f"device kind {d.kind!r} unknown (expected one of {', '.join(KINDS)})")
    _check_region(_label(d), d.base, d.size)
    if d.kind in _NEED_IRQ and d.irq is None:
        raise ConfigError(f"{_label(d)}: a {d.kind} needs a PLIC source")
    if d.kind in _NO_IRQ and d.irq is not None:
        raise ConfigError(f"{_label(d)}: a {d.kind} raises no PLIC interrupt (irq given)")
    if (d.kind == "plic") != (d.ndev > 0):
        raise ConfigError(f"{_label(d)}: ndev (the number of PLIC sources) is for the plic, "
                          "which needs it")
    if d.kind == "other":
        if not _NODE_NAME.match(d.name):
            raise ConfigError(f"device node name {d.name!r} is not a device-tree node name")
        if not d.compatible:
            raise ConfigError(f"{_label(d)}: an 'other' device needs a compatible string")
        for c in d.compatible:
            _check_text(f"{_label(d)} compatible", c, empty=False)
    elif d.name or d.compatible:
        raise ConfigError(f"{_label(d)}: name and compatible are for kind 'other' only")


def _check_hart(h: HartSpec) -> None:
    if not _ISA.match(h.isa):
        raise ConfigError(f"riscv,isa {h.isa!r} is not an rv64 ISA string")
    _check_text("mmu-type", h.mmu_type, empty=False)
    if not 0 < h.timebase_hz < 1 << 32:
        raise ConfigError(f"timebase {h.timebase_hz} Hz does not fit a 32-bit cell")
    if not 0 <= h.hart_id < 1 << 32:
        raise ConfigError(f"hart id {h.hart_id} does not fit a 32-bit cell")


def _check_chosen(c: ChosenSpec, ram_base: int, ram_size: int) -> None:
    _check_text("bootargs", c.bootargs, empty=True)
    if c.initrd is not None:
        start, end = c.initrd
        if not ram_base <= start <= end <= ram_base + ram_size:
            raise ConfigError(f"initrd [{start:#x}, {end:#x}) is not inside RAM")


def _check_text(what: str, text: str, empty: bool) -> None:
    if "\0" in text:
        raise ConfigError(f"{what} {text!r} must not contain NUL")
    if not empty and not text:
        raise ConfigError(f"{what} must not be empty")


# -- building the tree ------------------------------------------------------

def _words(name: str, *values: int) -> PropWords:
    """A property of 32-bit cells."""
    return PropWords(name, *values)


def _strings(name: str, *values: str) -> PropBytes:
    """A string-list property: each value UTF-8 and NUL-terminated (fdt's
    PropStrings takes ASCII only, and an -append line may be UTF-8)."""
    return PropBytes(name, data=b"".join(v.encode() + b"\0" for v in values))


def _reg(base: int, size: int) -> PropWords:
    """`reg` in 2 address + 2 size cells."""
    return PropWords("reg", base >> 32, base & 0xFFFF_FFFF, size >> 32, size & 0xFFFF_FFFF)


def _node(name: str, props: Iterable[Property], children: Iterable[Node] = ()) -> Node:
    node = Node(name)
    for item in (*props, *children):
        node.append(item)
    return node


@dataclass(frozen=True)
class _Phandles:
    """QEMU's allocation: cpu, its interrupt controller, PLIC, test finisher."""

    cpu: int
    intc: int
    plic: int | None
    test: int | None


def _phandles(spec: BoardSpec) -> _Phandles:
    kinds = {d.kind for d in spec.devices}
    plic = 3 if "plic" in kinds else None
    test = (4 if plic else 3) if "test" in kinds else None
    return _Phandles(1, 2, plic, test)


def _fill_root(root: Node, spec: BoardSpec) -> None:
    """Give `root` the properties and nodes of the whole tree, in the order
    QEMU 7.2's tree has them."""
    ph = _phandles(spec)
    for prop in (_words("#address-cells", 2), _words("#size-cells", 2),
                 _strings("compatible", ROOT_COMPATIBLE), _strings("model", ROOT_MODEL)):
        root.append(prop)
    root.append(_chosen(spec))
    if ph.test is not None:
        for name, value in (("poweroff", FINISHER_PASS), ("reboot", FINISHER_RESET)):
            root.append(_node(name, (
                _words("value", value), _words("offset", 0), _words("regmap", ph.test),
                _strings("compatible", f"syscon-{name}"))))
    root.append(_node(f"memory@{spec.ram_base:x}", (
        _strings("device_type", "memory"), _reg(spec.ram_base, spec.ram_size))))
    root.append(_cpus(spec.hart, ph))
    root.append(_node("soc", (
        _words("#address-cells", 2), _words("#size-cells", 2),
        _strings("compatible", "simple-bus"), Property("ranges")),
        [_device(d, ph) for d in _soc_order(spec.devices)]))


def _chosen(spec: BoardSpec) -> Node:
    c = spec.chosen
    props: list[Property] = []
    if c.initrd is not None:
        start, end = c.initrd
        props += [_addr("linux,initrd-end", end), _addr("linux,initrd-start", start)]
    if c.rng_seed:
        props.append(PropBytes("rng-seed", data=c.rng_seed))
    if c.bootargs:
        props.append(_strings("bootargs", c.bootargs))
    serial = next((d for d in spec.devices if d.kind == "serial"), None)
    if serial is not None:
        props.append(_strings("stdout-path", f"/soc/serial@{serial.base:x}"))
    return _node("chosen", props)


def _addr(name: str, value: int) -> PropWords:
    """An address as QEMU 7.2 writes the initrd's: one cell, two above 4 GiB."""
    return PropWords(name, value) if value < 1 << 32 else \
        PropWords(name, value >> 32, value & 0xFFFF_FFFF)


def _cpus(hart: HartSpec, ph: _Phandles) -> Node:
    intc = _node("interrupt-controller", (
        _words("#address-cells", 0), _words("#interrupt-cells", 1),
        Property("interrupt-controller"), _strings("compatible", "riscv,cpu-intc"),
        _words("phandle", ph.intc)))
    cpu = _node(f"cpu@{hart.hart_id:x}", (
        _words("phandle", ph.cpu), _strings("device_type", "cpu"), _words("reg", hart.hart_id),
        _strings("status", "okay"), _strings("compatible", "riscv"),
        _strings("riscv,isa", hart.isa), _strings("mmu-type", hart.mmu_type)), [intc])
    cpu_map = _node("cpu-map", (), [_node("cluster0", (), [
        _node("core0", [_words("cpu", ph.cpu)])])])
    return _node("cpus", (
        _words("#address-cells", 1), _words("#size-cells", 0),
        _words("timebase-frequency", hart.timebase_hz)), [cpu, cpu_map])


def _soc_order(devices: Iterable[DeviceSpec]) -> list[DeviceSpec]:
    """/soc's children in QEMU 7.2's order (libfdt puts each new node first,
    so its tree lists them newest first): emu's other devices where QEMU's
    last-made rtc sits, then serial, test, virtio-mmio from the highest
    slot down, plic, clint."""
    rank = {"other": 0, "serial": 1, "test": 2, "virtio_mmio": 3, "plic": 4, "clint": 5}
    indexed = list(enumerate(devices))
    indexed.sort(key=lambda it: (rank[it[1].kind],
                                 -it[1].base if it[1].kind == "virtio_mmio" else it[0]))
    return [d for _, d in indexed]


def _device(d: DeviceSpec, ph: _Phandles) -> Node:
    """The /soc node of one device, its properties in QEMU 7.2's order."""
    name = f"{d.name or d.kind}@{d.base:x}"
    irq: list[Property] = []
    if d.irq is not None:
        assert ph.plic is not None, "check() refuses an interrupt without a PLIC"
        irq = [_words("interrupts", d.irq), _words("interrupt-parent", ph.plic)]
    reg = _reg(d.base, d.size)
    if d.kind == "serial":
        props = [*irq, _words("clock-frequency", UART_CLOCK_HZ), reg,
                 _strings("compatible", "ns16550a")]
    elif d.kind == "virtio_mmio":
        props = [*irq, reg, _strings("compatible", "virtio,mmio")]
    elif d.kind == "test":
        assert ph.test is not None
        props = [_words("phandle", ph.test), reg,
                 _strings("compatible", "sifive,test1", "sifive,test0", "syscon")]
    elif d.kind == "plic":
        assert ph.plic is not None
        props = [_words("phandle", ph.plic), _words("riscv,ndev", d.ndev), reg,
                 _words("interrupts-extended", ph.intc, IRQ_M_EXT, ph.intc, IRQ_S_EXT),
                 Property("interrupt-controller"),
                 _strings("compatible", "sifive,plic-1.0.0", "riscv,plic0"),
                 _words("#address-cells", 0), _words("#interrupt-cells", 1)]
    elif d.kind == "clint":
        props = [_words("interrupts-extended", ph.intc, IRQ_M_SOFT, ph.intc, IRQ_M_TIMER),
                 reg, _strings("compatible", "sifive,clint0", "riscv,clint0")]
    else:
        props = [*irq, reg, _strings("compatible", *d.compatible)]
    return _node(name, props)
