"""Guest memory as a debugger sees it: reads and writes by virtual address
(through our Sv39 walker) or physical address, with no side effects.

No side effects means: the walk never sets A/D bits (translate(...,
update_ad=False)), and device (MMIO) addresses are refused instead of read -
a UART read would pop a received byte, a PLIC claim read would claim an
interrupt. Only RAM is ever touched.

Which view: the translation uses satp with S-mode privilege and SUM=MXR=1,
the widest view the kernel itself could have, so user pages, kernel pages
and execute-only pages are all readable - like QEMU's debug accesses, which
ignore the current privilege for reads from the gdbstub and monitor.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.mmu import PageFault, UnsupportedMode, translate
from emu.mmu.pte import PAGE_SIZE, SATP_MODE_BARE, satp_mode

MASK64 = (1 << 64) - 1


class MemError(Exception):
    """An address the debugger cannot read or write (message is one line)."""


class DebugMemory:
    """Side-effect-free memory access for one Machine."""

    def __init__(self, machine) -> None:
        self.m = machine

    # -- translation ---------------------------------------------------------
    def translate(self, va: int, access: str = "read") -> int:
        """Return the physical address of virtual `va` in the debug view.

        Raises MemError (with the walker's reason) if it does not translate.
        """
        va &= MASK64
        satp = self.m.cpu.csr("satp")
        if satp_mode(satp) == SATP_MODE_BARE:
            return va
        try:
            return translate(self.m.mem.buf, self.m.mem.base, satp, va, access, 1,
                             sum=True, mxr=True, update_ad=False)
        except PageFault as pf:
            raise MemError(f"cannot access virtual 0x{va:x}: {pf.reason or pf}") from None
        except UnsupportedMode as exc:
            raise MemError(f"cannot translate 0x{va:x}: {exc}") from None

    # -- reads ---------------------------------------------------------------
    def read_phys(self, pa: int, n: int) -> bytes:
        """Return `n` bytes at physical `pa`. Raises MemError outside RAM
        (devices are never read: reads may have side effects)."""
        if n < 0:
            raise MemError("negative length")
        if not self.m.mem.contains(pa, n):
            raise MemError(f"physical 0x{pa:x}+{n} is not RAM (device registers are not "
                           "read by the debugger: reads can have side effects)")
        return self.m.mem.read(pa, n)

    def read_virt_partial(self, va: int, n: int) -> bytes:
        """Return the readable prefix of `n` bytes at virtual `va` (possibly
        empty): reading stops at the first page that does not translate to RAM.
        This is what gdb's `m` packet wants."""
        out = bytearray()
        while len(out) < n:
            a = (va + len(out)) & MASK64
            chunk = min(n - len(out), PAGE_SIZE - (a & (PAGE_SIZE - 1)))
            try:
                pa = self.translate(a)
                out += self.read_phys(pa, chunk)
            except MemError:
                break
        return bytes(out)

    def read_virt(self, va: int, n: int) -> bytes:
        """Return `n` bytes at virtual `va`. Raises MemError naming the first
        address that cannot be read."""
        data = self.read_virt_partial(va, n)
        if len(data) < n:
            a = (va + len(data)) & MASK64
            pa = self.translate(a)   # raises the precise reason
            self.read_phys(pa, 1)    # or this one
            raise MemError(f"cannot read virtual 0x{a:x}")
        return data

    def read_u(self, va: int, size: int, physical: bool = False) -> int:
        """Return the little-endian unsigned value of `size` bytes. Raises MemError."""
        raw = self.read_phys(va, size) if physical else self.read_virt(va, size)
        return int.from_bytes(raw, "little")

    # -- writes --------------------------------------------------------------
    def write_phys(self, pa: int, data: bytes) -> None:
        """Write `data` at physical `pa` (RAM only). Raises MemError."""
        if not self.m.mem.contains(pa, len(data)):
            raise MemError(f"physical 0x{pa:x}+{len(data)} is not RAM")
        self.m.mem.write(pa, data)
        # Code may have been patched: drop translated blocks (cheap, rare).
        self.m.cpu.uc.ctl_flush_tb()

    def write_virt(self, va: int, data: bytes) -> None:
        """Write `data` at virtual `va` page by page (RAM only, permissions
        ignored like a debugger's). Raises MemError before writing anything
        if some page does not translate."""
        pieces = []
        done = 0
        while done < len(data):
            a = (va + done) & MASK64
            chunk = min(len(data) - done, PAGE_SIZE - (a & (PAGE_SIZE - 1)))
            pa = self.translate(a)
            if not self.m.mem.contains(pa, chunk):
                raise MemError(f"virtual 0x{a:x} maps to 0x{pa:x}, which is not RAM")
            pieces.append((pa, data[done:done + chunk]))
            done += chunk
        for pa, chunk in pieces:
            self.write_phys(pa, chunk)
