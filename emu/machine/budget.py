"""Instruction budget and interrupt window: counts retired instructions per
translated block and stops the CPU at a block boundary when the slice's
budget is spent or a pending interrupt becomes deliverable (pure-Python
reference; fast/budget.pyx is its twin with the same names, a C hook
registered with libunicorn).

Counting: a block retires as many instructions as it holds. With the C
extension they are 2 or 4 bytes long (a 16-bit parcel whose low two bits
are not 11 is compressed: unprivileged spec, "Expanded Instruction-Length
Encoding"), so the hook reads the block's bytes through the hart's own
translation (uc_vmem_read) and counts them - once per translated block: the
count is cached by (pc, size) until the MMU's code epoch moves on: a fetch
fill that maps a virtual page elsewhere than before or finds its bytes
changed (every new code mapping arrives through a fetch fill: `watch_code`,
emu/mmu/tlb.py), or the machine says code changed in place (`forget_code`).
Stopping from a block hook happens *before* the block runs, so a block is
counted only when it is let run; the run loop uncounts the tail of a block
an exception cut short (`retract_after`).

Interrupts (privileged spec 3.1.9): the machine tells the hook what is
pending and enabled (`set_irq_state`): the device `lines`, the mip bits
software wrote (`umip`: SSIP, STIP, SEIP), and mie and mideleg. While
something is pending and enabled, the hook checks at each block start
whether the hart takes it now - an interrupt mideleg does not delegate is
taken below M, or in M with mstatus.MIE; a delegated one in U, or in S with
sstatus.SIE - and stops so the machine can deliver it. CSR writes end a
translated block, so an interrupt is taken right after the instruction that
enables it; in S the hook rereads sie (mie's S view), in M all of mie.

Between checks the hook remembers that what is pending is masked: only a
SYSTEM instruction (decoded with the count) can unmask it while the hart
runs, so a masked interrupt costs no CSR reads on the blocks in between.

Interrupts unicorn takes itself. A bit software writes into mip (xv6's
timervec raises SSIP from M; OpenSBI forwards STIP) makes QEMU's own
interrupt logic deliver it the moment it is enabled - at the first return
to unicorn's main loop, which follows a SYSTEM instruction or begins a
slice - with no hook called. The hook notices it at the next block: after a
block ending in a SYSTEM instruction the next one must start right behind
it (at sepc/mepc after sret/mret, at `start`'s pc for a slice's first), and
starting anywhere else means a trap was taken. It stops there
(`native_trap`) so the machine can count, log and report the interrupt as
its own deliveries are.

M-mode code may write mip (xv6's timervec raises SSIP, OpenSBI forwards
STIP) and then `mret`: while the hart is in M (`in_m`, set by the machine
when it enters M) the hook watches the privilege at every block, and on
the way out of M rereads mip.

fence.i: unicorn 2.1.4 misses stores into pages it has translated code
from (its tlb_protect_code is a stub), so the MMU checks a code page for
changes whenever it fills a fetch translation (emu/mmu/tlb.py). fence.i -
what the ISA asks software to execute after changing code - ends its block
and the hook then flushes the TLB, so every code page is checked again.

PMP writes (`watch_pmp`): QEMU 7.2 flushes the TLB on every pmpcfg/pmpaddr
write, unicorn 2.1.4 does not, and translations cached before would keep
rights the guest just took away. A CSR access ends its block, so at the
first block after one to a PMP register (SYS_PMP), or after anything the
hook cannot place (SYS_INSIDE: the machine's own changes included), it
compares the registers with what it saw last and flushes the TLB when they
changed. (Comparing after every CSR access cost xv6 3 % of its host time.)

Layer: machine.
"""

from __future__ import annotations

import ctypes

import unicorn as uc_mod
from unicorn import riscv_const as R

from emu.core.hartstate import RANGES_OFFSET as PMP_REGS_BYTES  # the 16 entries
from emu.core.isa import MSTATUS_MIE, SSTATUS_SIE
from emu.core.libunicorn import uclib

PRIV_M = 3
SRET, MRET = 0x10200073, 0x30200073
# What a block's SYSTEM-opcode instructions mean for the block after it:
COUNT_CACHE = 16384   # block counts kept (fast/budget_state.pxi's NCACHE: as many)
SYS_NONE = 0      # none: the interrupt state did not change
SYS_INSIDE = 1    # one, not last: recheck what is enabled
SYS_LAST = 2      # last: recheck; the next block follows unless a trap was taken
SYS_SRET = 3      # sret last: the next block is at sepc unless a trap was taken
SYS_MRET = 4      # mret last: the next block is at mepc unless a trap was taken
SYS_FENCE_I = 5   # fence.i last: as SYS_LAST, and code may have changed
SYS_SATP = 6      # a satp CSR access last: as SYS_LAST, and check the MODE (below)
SYS_PMP = 7       # a pmpcfg/pmpaddr access last: as SYS_LAST, and check PMP (below)
SATP = 0x180
PMP_CSRS = range(0x3A0, 0x3F0)   # pmpcfg0-15, pmpaddr0-63
MAX_BLOCK = 8192   # bytes: QEMU caps a TB at 512 instructions, two pages


def _vmem_read():
    """libunicorn's uc_vmem_read (not wrapped by the 2.1.4 binding)."""
    fn = uclib().uc_vmem_read
    fn.restype = ctypes.c_int
    fn.argtypes = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                   ctypes.c_size_t)
    return fn


def count_insns(uc: uc_mod.Uc, pc: int, size: int) -> tuple[int, int]:
    """(instructions in [pc, pc+size) as the hart fetches them now, SYS_* of
    its SYSTEM-opcode instructions). If the bytes cannot be read: 4-byte
    instructions, at least one, and SYS_INSIDE."""
    if size <= 0:
        return 0, SYS_INSIDE
    buf = ctypes.create_string_buffer(size)
    if size > MAX_BLOCK or _VMEM_READ(uc._uch, pc, uc_mod.UC_PROT_EXEC, buf, size) != 0:
        return (size + 3) >> 2, SYS_INSIDE
    data = buf.raw
    i = n = 0
    system = SYS_NONE
    while i < size:
        if data[i] & 3 != 3:
            i += 2
        else:
            if data[i] & 0x7F == 0x0F and data[i + 1] & 0x70 == 0x10 and i + 4 >= size:
                system = SYS_FENCE_I      # MISC-MEM, funct3 001: fence.i (ends its block)
            elif data[i] & 0x7F == 0x73 and i + 4 <= size:
                insn = int.from_bytes(data[i:i + 4], "little")
                if i + 4 < size:
                    system = SYS_INSIDE
                elif insn >> 20 == SATP and (insn >> 12) & 7:
                    system = SYS_SATP     # csrrw/s/c(i) satp (a CSR access ends its block)
                elif insn >> 20 in PMP_CSRS and (insn >> 12) & 7:
                    system = SYS_PMP
                else:
                    system = {SRET: SYS_SRET, MRET: SYS_MRET}.get(insn, SYS_LAST)
            i += 4
        n += 1
    return n, system


_VMEM_READ = _vmem_read()
# void (*uc_cb_hookcode_t)(uc_engine *, uint64_t address, uint32_t size, void *user_data)
_BLOCK_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                             ctypes.c_void_p)


class BlockBudget:
    """Counts instructions block by block; stops at `stop_at` or on an interrupt.

    Attributes: `icount` (instructions retired so far), `stop_at` (absolute
    icount at which the CPU is stopped, checked at block starts), `lines`,
    `umip`, `mie`, `mideleg`, `in_m` (the interrupt state, see the module
    docstring), `blk_pc`, `blk_size` (the last block let run), `stopped`
    (the hook stopped the CPU in this slice), `irq_stop` (it stopped
    because an interrupt became deliverable).
    """

    def __init__(self, uc: uc_mod.Uc) -> None:
        self.uc = uc
        self.icount = 0
        self.stop_at = 0
        self.lines = 0
        self.umip = 0
        self.mie = 0
        self.mideleg = 0
        self.in_m = False
        self.blk_pc = 0
        self.blk_size = 0
        self.stopped = False
        self.irq_stop = False
        self.counted = 0                 # blocks decoded (count-cache misses)
        self.masked = False              # the last check found the pending interrupts masked
        self.after_system = SYS_INSIDE   # SYS_* of the block let run last
        self.expect = 0                  # where the next block must start
        self.expect_valid = False
        self.native_trap = False         # unicorn took an interrupt itself
        self.pmp_flushes = 0             # TLB flushes for a PMP change
        self.fence_i = 0                 # fence.i executed (each flushed the TLB)
        self.good_satp = 0               # satp after its last write of a MODE we walk
        self.satp_ignored = 0            # satp writes of a MODE we do not walk, undone
        self._pmp_address = 0            # unicorn's PMP registers (watch_pmp)
        self._pmp_seen = b""
        self._handle: ctypes.c_size_t | None = None
        self._cb = None                  # the ctypes callback while installed
        self.error: BaseException | None = None   # raised inside the hook (a bug)
        # (pc, size) -> (epoch, instructions, SYS_*)
        self._counts: dict[tuple[int, int], tuple[int, int, int]] = {}
        self._no_mmu = ctypes.c_uint64(0)
        self._code_epoch = self._no_mmu
        self._own_epoch = 0

    def install(self) -> None:
        """Register the block hook on the engine: a raw ctypes callback, not
        the binding's hook_add, whose Python wrapper layers cost more than
        the hook's own work. An exception inside it (a bug) stops the
        engine and is kept in `error` (the run loop raises it)."""
        uc = self.uc
        self._cb = _BLOCK_CB(self._on_block)
        hh = ctypes.c_size_t()
        err = uclib().uc_hook_add(uc._uch, ctypes.byref(hh), uc_mod.UC_HOOK_BLOCK,
                                   ctypes.cast(self._cb, ctypes.c_void_p), None,
                                   ctypes.c_uint64(1), ctypes.c_uint64(0))
        if err != uc_mod.UC_ERR_OK:
            raise RuntimeError(f"uc_hook_add(UC_HOOK_BLOCK) failed with error {err}")
        self._handle = hh

    def uninstall(self) -> None:
        """Remove the block hook (no-op if not installed)."""
        if self._handle is not None:
            uclib().uc_hook_del(self.uc._uch, self._handle)
            self._handle = None
            self._cb = None

    def _m_csr(self, uc: uc_mod.Uc, reg: int, priv: int) -> int:
        """Read a CSR with PRIV temporarily M (unicorn checks the current
        privilege on host CSR accesses)."""
        if priv == PRIV_M:
            return uc.reg_read(reg)
        uc.reg_write(R.UC_RISCV_REG_PRIV, PRIV_M)
        v = uc.reg_read(reg)
        uc.reg_write(R.UC_RISCV_REG_PRIV, priv)
        return v

    def _irq_deliverable(self, uc: uc_mod.Uc, priv: int) -> bool:
        if priv == PRIV_M:
            self.mie = uc.reg_read(R.UC_RISCV_REG_MIE)
        elif priv == 1:
            self.mie = (self.mie & ~self.mideleg) | uc.reg_read(R.UC_RISCV_REG_SIE)
        pending = (self.lines | self.umip) & self.mie
        if not pending:
            return False
        to_m = pending & ~self.mideleg
        if to_m and (priv < PRIV_M or uc.reg_read(R.UC_RISCV_REG_MSTATUS) & MSTATUS_MIE):
            return True
        to_s = pending & self.mideleg
        if to_s and (priv == 0 or (priv == 1 and uc.reg_read(R.UC_RISCV_REG_SSTATUS)
                                   & SSTATUS_SIE)):
            return True
        return False

    def satp_warl(self) -> bool:
        """_satp_warl now (a fill failed before the next block could check):
        True if it undid a write."""
        before = self.satp_ignored
        self._satp_warl(self.uc)
        return self.satp_ignored != before

    def _satp_warl(self, uc: uc_mod.Uc) -> None:
        """After a satp access: a MODE other than Bare or Sv39 is a write
        with no effect (priv. spec 4.1.11: satp is WARL). unicorn 2.1.4 takes
        Sv48 and Sv57, which our walker cannot serve and Linux probes for by
        writing and reading back (set_satp_mode): put the previous value
        back before anything runs. (The access ran in S or M: from U it
        traps, satp unchanged - and a CSR read from U would be garbage.)"""
        if uc.reg_read(R.UC_RISCV_REG_PRIV) & 3 == 0:
            return
        satp = uc.reg_read(R.UC_RISCV_REG_SATP)
        if satp >> 60 in (0, 8):
            self.good_satp = satp
        else:
            uc.reg_write(R.UC_RISCV_REG_SATP, self.good_satp)
            self.satp_ignored += 1

    def _on_block(self, _uch: int, address: int, size: int, _user: object) -> None:
        """The UC_HOOK_BLOCK callback, called by libunicorn through ctypes
        (install): a block of `size` bytes at `address` is about to run."""
        try:
            if self.stopped:
                return
            uc = self.uc
            if self.icount >= self.stop_at:
                self.stopped = True
                uc.emu_stop()
                return
            priv = -1
            if self.after_system:
                # Only a SYSTEM instruction changes the privilege, the enables or
                # mip while the hart runs; the machine's own changes come through
                # set_irq_state / set_stop / start, which set after_system.
                if self.after_system == SYS_FENCE_I:
                    # code may have changed in place: refill every translation,
                    # so the MMU checks each code page again (emu/mmu/tlb.py)
                    uc.ctl(uc_mod.UC_CTL_TLB_FLUSH, uc_mod.UC_CTL_IO_WRITE)
                    self.fence_i += 1
                if self.after_system == SYS_SATP:
                    self._satp_warl(uc)
                if self._pmp_address and self.after_system in (SYS_PMP, SYS_INSIDE):
                    regs = ctypes.string_at(self._pmp_address, PMP_REGS_BYTES)
                    if regs != self._pmp_seen:
                        # a PMP write: cached translations hold the old rights
                        self._pmp_seen = regs
                        uc.ctl(uc_mod.UC_CTL_TLB_FLUSH, uc_mod.UC_CTL_IO_WRITE)
                        self.pmp_flushes += 1
                if self.after_system >= SYS_LAST and self.expect_valid:
                    if self.after_system == SYS_SRET:
                        priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
                        self.expect = self._m_csr(uc, R.UC_RISCV_REG_SEPC, priv)
                    elif self.after_system == SYS_MRET:
                        priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
                        self.expect = self._m_csr(uc, R.UC_RISCV_REG_MEPC, priv)
                    if address != self.expect:   # unicorn delivered an interrupt itself
                        self.stopped = self.native_trap = True
                        uc.emu_stop()
                        return
                if self.in_m:
                    priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
                    if priv != PRIV_M:               # an mret: what did M leave pending?
                        self.in_m = False
                        self.umip = self._m_csr(uc, R.UC_RISCV_REG_MIP, priv)
                self.masked = False
            if (self.lines | self.umip) and not self.masked:
                if priv < 0:
                    priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
                if self._irq_deliverable(uc, priv):
                    self.stopped = self.irq_stop = True
                    uc.emu_stop()
                    return
                self.masked = True
            self.blk_pc = address
            self.blk_size = size
            epoch = self._code_epoch.value + self._own_epoch
            hit = self._counts.get((address, size))
            if hit is None or hit[0] != epoch:
                n, system = count_insns(uc, address, size)
                if len(self._counts) > COUNT_CACHE:
                    self._counts.clear()
                hit = self._counts[(address, size)] = (epoch, n, system)
                self.counted += 1
            self.after_system = hit[2]
            self.expect = address + size
            self.expect_valid = True
            self.icount += hit[1]
        except BaseException as exc:  # noqa: BLE001 - a bug: kept, raised by the run loop
            self.error = exc
            self.uc.emu_stop()

    def watch_code(self, mmu: object) -> None:
        """Drop cached block counts whenever `mmu` (a fill hook exposing
        `code_epoch_address`) moves its code epoch on."""
        self._code_epoch = ctypes.c_uint64.from_address(mmu.code_epoch_address)  # type: ignore[attr-defined]

    def watch_pmp(self, address: int) -> None:
        """Flush the TLB at the first block after a SYSTEM instruction that
        changed the PMP registers at `address` (emu.core.hartstate)."""
        self._pmp_address = address
        self._pmp_seen = ctypes.string_at(address, PMP_REGS_BYTES)

    def forget_code(self) -> None:
        """Drop every cached block count (code changed in place)."""
        self._own_epoch += 1

    def set_stop(self, stop_at: int) -> None:
        """Arm the budget: stop at the first block start with icount >= stop_at."""
        self.stop_at = stop_at
        self.stopped = False
        self.irq_stop = False
        self.native_trap = False
        self.expect_valid = False
        self.after_system = SYS_INSIDE   # the machine may have changed anything

    def start(self, pc: int) -> None:
        """A slice begins at `pc` (after set_stop): its first block must start
        there, or unicorn took an interrupt on entry."""
        self.expect = pc
        self.expect_valid = True
        self.after_system = SYS_LAST

    def set_irq_state(self, lines: int, umip: int, mie: int, mideleg: int,
                      in_m: bool) -> None:
        """Tell the hook what is pending (device `lines`, software-written
        `umip`), what mie and mideleg are, and whether the hart is in M."""
        self.lines = lines
        self.umip = umip
        self.mie = mie
        self.mideleg = mideleg
        self.in_m = bool(in_m)
        self.expect_valid = False
        if not self.after_system:
            self.after_system = SYS_INSIDE

    def retract_after(self, pc: int) -> None:
        """Uncount the instructions of the current block from `pc` on.

        Called when an exception cut the block at `pc` (those instructions did
        not retire). No effect if `pc` is outside the last block.
        """
        end = self.blk_pc + self.blk_size
        if self.blk_pc <= pc < end:
            self.icount -= count_insns(self.uc, pc, end - pc)[0]
            self.blk_size = pc - self.blk_pc
