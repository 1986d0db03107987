"""How the hart starts, as QEMU's virt boots it (hw/riscv/boot.c, QEMU 7.2):
a reset vector in the mask ROM at 0x1000 jumps to the firmware (or, with
`-bios none`, to the kernel) in M-mode with a0 = the hart id, a1 = the
device tree and a2 = OpenSBI's `fw_dynamic_info` (include/sbi/fw_dynamic.h:
magic "OSBI", version 2, next_addr - the kernel's entry -, next_mode S,
options, boot_hart), all of it in the ROM.

`-bios`:
- "default": emu's built-in firmware (emu/machine/firmware.py answers SBI
  calls from the host); no M-mode code runs: the kernel is entered in S
  at its entry with a0 = hart id and a1 = the device tree, exceptions and
  interrupts delegated to S as OpenSBI would leave them.
- "none": the -kernel image is entered in M-mode through the reset vector
  (xv6 is built for this: it is linked at 0x80000000).
- FILE: an M-mode firmware (ELF, or a raw binary at 0x80000000) entered
  through the reset vector; the kernel is loaded at 0x80200000 (a raw
  binary there, an ELF at its own addresses) and named in fw_dynamic_info.

Layer: machine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from emu.core.memory import PhysMem
from emu.core.units import ConfigError
from emu.machine.devicetree import fdt_address
from emu.machine.loader import Image, LoadError, load_image

MROM_BASE = 0x1000
MROM_SIZE = 0xF000
FW_DYNAMIC_MAGIC = 0x4942_534F        # "OSBI"
FW_DYNAMIC_VERSION = 2
NEXT_MODE_S = 1
KERNEL_OFFSET = 0x20_0000             # -bios FILE: the kernel 2 MiB into RAM

# QEMU's reset vector (riscv_setup_rom_reset_vec): auipc t0, 0; addi a2, t0,
# 40 (&fw_dynamic_info); csrr a0, mhartid; ld a1, 32(t0) (the fdt);
# ld t0, 24(t0) (the start address); jr t0; then the two dwords.
RESET_VEC = (0x0000_0297, 0x0282_8613, 0xF140_2573, 0x0202_B583, 0x0182_B283, 0x0002_8067)


@dataclass(frozen=True)
class Boot:
    """What was loaded and where the hart starts."""

    kernel: Image
    firmware: Image | None     # None for "default" and "none"
    pc: int                    # first instruction
    priv: int                  # 3 (M) through the reset vector, 1 (S) for "default"


def reset_rom(start: int, fdt: int, next_addr: int, hart: int = 0) -> bytes:
    """The mask ROM's contents: the reset vector, the start and fdt
    addresses, then fw_dynamic_info."""
    rom = struct.pack("<6I", *RESET_VEC) + struct.pack("<QQ", start, fdt)
    return rom + struct.pack("<6Q", FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, next_addr,
                             NEXT_MODE_S, 0, hart)


def load_initrd(path: str, mem: PhysMem, kernel_entry: int) -> tuple[int, int]:
    """Copy the initrd at `path` where QEMU 7.2 puts it (hw/riscv/boot.c,
    riscv_load_initrd): kernel entry + min(RAM / 2, 128 MiB), so that a
    kernel unpacking itself does not overwrite it. Returns its [start, end)
    for /chosen. Raises LoadError (one line) if it cannot be read or does
    not fit in RAM there."""
    start = kernel_entry + min(mem.size // 2, 128 << 20)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise LoadError(f"cannot open initrd {path!r}: {exc.strerror}") from None
    if not mem.contains(start, max(1, len(data))):
        raise LoadError(f"{path}: the initrd ({len(data):,} bytes) does not fit in RAM at "
                        f"0x{start:x} (QEMU's place for it: kernel entry + min(RAM/2, 128M))")
    mem.write(start, data)
    return start, start + len(data)


def place_fdt(mem: PhysMem, size: int, taken: list[tuple[int, int]]) -> int:
    """Where the device tree goes: QEMU 7.2's address (devicetree.fdt_address:
    2 MiB aligned below the end of RAM) unless that would overwrite one of
    the `taken` [start, end) ranges (the kernel, the firmware, the initrd) -
    on a RAM too small for QEMU's rule, e.g. -m 4M with the kernel at 2 MiB,
    where QEMU writes the tree over the kernel - then the last pages of RAM.
    Raises ConfigError when neither place is free."""
    def free(addr: int) -> bool:
        return all(addr + size <= lo or hi <= addr for lo, hi in taken)

    addr = fdt_address(mem.base, mem.size, size)
    if free(addr):
        return addr
    addr = (mem.base + mem.size - size) & ~0xFFF
    if addr >= mem.base and free(addr):
        return addr
    raise ConfigError(f"no room for the {size}-byte device tree in {mem.size >> 20} MiB of "
                      "RAM beside the kernel and the initrd; give more RAM (-m)")


def load(bios: str, kernel: str, mem: PhysMem) -> Boot:
    """Load the firmware and the kernel for `bios` ("default", "none" or a
    file). Raises LoadError (one line) for an image that does not fit, or a
    kernel that overlaps the firmware."""
    if bios == "default":
        k = load_image(kernel, mem, mem.base + KERNEL_OFFSET)
        if k.low < mem.base + KERNEL_OFFSET:
            raise LoadError(f"{kernel}: the kernel starts at 0x{k.low:x}, inside the built-in "
                            f"firmware's region [0x{mem.base:x}, 0x{mem.base + KERNEL_OFFSET:x}); "
                            "a kernel that starts in M-mode (xv6) needs -bios none")
        return Boot(k, None, k.entry, 1)
    if bios == "none":
        k = load_image(kernel, mem, mem.base)
        return Boot(k, None, MROM_BASE, 3)
    fw = load_image(bios, mem, mem.base, "firmware")
    k_addr = mem.base + KERNEL_OFFSET
    if fw.high > k_addr:
        raise LoadError(f"{bios}: the firmware (0x{fw.low:x}-0x{fw.high:x}) runs into the "
                        f"kernel's place at 0x{k_addr:x}")
    k = load_image(kernel, mem, k_addr)
    if k.low < fw.high and fw.low < k.high:
        raise LoadError(f"{kernel}: the kernel (0x{k.low:x}-0x{k.high:x}) overlaps the "
                        f"firmware {bios} (0x{fw.low:x}-0x{fw.high:x})")
    return Boot(k, fw, MROM_BASE, 3)
