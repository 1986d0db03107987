"""The unicorn wrapper: one RV64 hart with its registers, CSRs and
privilege, our MMU's fill hook and the instruction budget installed.

Unicorn executes instructions; trap entry and delivery around them are
emu/machine/traps.py's. The TLB is unicorn's (QEMU's), in UC_TLB_VIRTUAL
mode, filled by our Sv39 walker (emu/mmu) through a fill hook; the fill hook
and the budget hook are twins chosen through emu.core.twins.

Unicorn checks CSR accesses made through reg_read/reg_write against the
current privilege, so every CSR access from the host is made with PRIV
temporarily set to M (3).

Layer: machine.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

import unicorn as U
from unicorn import riscv_const as R

from emu.core import hartstate, isa, twins
from emu.core.libunicorn import uclib
from emu.core.memory import PhysMem
from emu.machine.budget import BlockBudget
from emu.machine.traps import TrapCore
from emu.mmu import PageFault, PyFillHook
from emu.mmu import walk as pure_walk

# What the built-in firmware (-bios default) delegates to S, as OpenSBI does:
# the S interrupts, and the exceptions but ecall from S and M (the SBI's).
MIDELEG_S = isa.SIP_SSIP | isa.SIP_STIP | isa.SIP_SEIP
MEDELEG_S = 0xB1FF

# uint64_t (*uc_cb_mmio_read_t)(uc_engine *, uint64_t offset, unsigned size, void *user)
_MMIO_READ = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint,
                              ctypes.c_void_p)
# void (*uc_cb_mmio_write_t)(uc_engine *, uint64_t offset, unsigned size, uint64_t value, void *)
_MMIO_WRITE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint,
                               ctypes.c_uint64, ctypes.c_void_p)

GPR_IDS = tuple(getattr(R, f"UC_RISCV_REG_X{i}") for i in range(32))
CSR_IDS = {
    "sstatus": R.UC_RISCV_REG_SSTATUS, "sie": R.UC_RISCV_REG_SIE,
    "stvec": R.UC_RISCV_REG_STVEC, "sscratch": R.UC_RISCV_REG_SSCRATCH,
    "sepc": R.UC_RISCV_REG_SEPC, "scause": R.UC_RISCV_REG_SCAUSE,
    "stval": R.UC_RISCV_REG_STVAL, "sip": R.UC_RISCV_REG_SIP,
    "satp": R.UC_RISCV_REG_SATP, "scounteren": R.UC_RISCV_REG_SCOUNTEREN,
    "mstatus": R.UC_RISCV_REG_MSTATUS, "mideleg": R.UC_RISCV_REG_MIDELEG,
    "medeleg": R.UC_RISCV_REG_MEDELEG, "mcounteren": R.UC_RISCV_REG_MCOUNTEREN,
    "mip": R.UC_RISCV_REG_MIP, "mie": R.UC_RISCV_REG_MIE,
    "mtvec": R.UC_RISCV_REG_MTVEC, "mepc": R.UC_RISCV_REG_MEPC,
    "mcause": R.UC_RISCV_REG_MCAUSE, "mtval": R.UC_RISCV_REG_MTVAL,
    "mscratch": R.UC_RISCV_REG_MSCRATCH, "mhartid": R.UC_RISCV_REG_MHARTID,
    "misa": R.UC_RISCV_REG_MISA,
}


class Cpu:
    """One RV64 hart on unicorn with our MMU installed.

    `mmu` is the fill hook (fills/faults counters, last fault), `budget` the
    instruction counter. Registers are reached by name through reg()/set_reg()
    (GPR ABI names, "pc", "priv") and csr()/set_csr().
    """

    def __init__(self, mem: PhysMem, mmu: str = "auto", budget: str = "auto",
                 traps: str = "auto") -> None:
        self.uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
        self.uc.ctl_set_tlb_mode(U.UC_TLB_VIRTUAL)
        # No exit address: emu_start's `until` would otherwise stop the hart
        # at that address - 0, where xv6's first process starts. With the
        # exits set in use and empty, every address runs.
        self.uc.ctl_exits_enabled(True)
        self.uc.ctl_set_exits([])
        self.uc.mem_map_ptr(mem.base, mem.size, U.UC_PROT_ALL, mem.address)
        self.mem = mem
        self._mmio: list[tuple[object, object]] = []   # the MMIO ctypes callbacks
        fill = twins.pick("sv39", mmu)
        self.mmu = (PyFillHook if fill is None else fill.FillHook)(
            self.uc, mem.buf, mem.base, mem.size)
        self.mmu_impl = "python" if fill is None else "fast"
        self._walker = pure_walk if fill is None else fill   # its translate() for fetch_insn
        self.mmu.install()
        counter = twins.pick("budget", budget)
        self.budget = (BlockBudget if counter is None else counter.BlockBudget)(self.uc)
        self.budget_impl = "python" if counter is None else "fast"
        self.budget.watch_code(self.mmu)
        self.budget.install()
        # PMP: the MMU reads the registers where unicorn keeps them, the
        # budget flushes the TLB when the guest changes them.
        self.pmp_address = hartstate.pmp_address(self.uc)
        if self.pmp_address is None:
            print("emu: warning: PMP not enforced: this unicorn build keeps its PMP registers "
                  "elsewhere than unicorn 2.1.4 (emu/core/hartstate.py)", file=sys.stderr)
        else:
            self.mmu.watch_pmp(self.pmp_address)
            self.budget.watch_pmp(self.pmp_address)
        # Code-page checks compare only pages that can have changed (no
        # warning without: every check then compares, which is only slower).
        flushes = hartstate.flush_count_address(self.uc)
        if flushes is not None:
            self.mmu.watch_writes(mem.written, flushes)
        # The trap path's register work (emu/machine/traps.py TrapCore, twin fast/traps.pyx).
        core = twins.pick("traps", traps)
        self.core: TrapCore = (TrapCore if core is None else core.TrapCore)(self.uc)
        self.traps_impl = "python" if core is None else "fast"

    # -- registers ---------------------------------------------------------
    def reg(self, name: str) -> int:
        """Return GPR `name` (ABI or xN), "pc" or "priv"."""
        return self.uc.reg_read(_reg_id(name))

    def set_reg(self, name: str, value: int) -> None:
        """Set GPR `name`, "pc" or "priv". Writes to zero are ignored."""
        rid = _reg_id(name)
        if rid == R.UC_RISCV_REG_X0:
            return
        self.uc.reg_write(rid, value & 0xFFFF_FFFF_FFFF_FFFF)

    def gprs(self) -> list[int]:
        """Return x0..x31."""
        return [self.uc.reg_read(r) for r in GPR_IDS]

    @property
    def pc(self) -> int:
        return self.core.pc_priv()[0]

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(R.UC_RISCV_REG_PC, value)

    @property
    def priv(self) -> int:
        return self.core.pc_priv()[1]

    @priv.setter
    def priv(self, value: int) -> None:
        self.uc.reg_write(R.UC_RISCV_REG_PRIV, value)

    def csr(self, name: str) -> int:
        """Return CSR `name` (read with M privilege, see module docstring)."""
        return self.core.csr(CSR_IDS[name])

    def set_csr(self, name: str, value: int) -> None:
        """Write CSR `name` (with M privilege, see module docstring)."""
        self.core.set_csr(CSR_IDS[name], value)

    def drop_stale_code(self) -> int:
        """Drop unicorn's translations of the code pages the MMU found
        changed (emu/mmu/tlb.py, take_stale). unicorn names a page to drop
        by a virtual address it translates for fetch, so the physical page
        is named from M-mode, where the translation is the identity (PRIV
        is swapped around the call, as for a host CSR access). Returns the
        number of pages."""
        pages = self.mmu.take_stale()
        if pages:
            priv = self.priv
            self.priv = isa.PRIV_M
            for pa in pages:
                self.uc.ctl_remove_cache(pa, pa + 4096)
            self.priv = priv
        return len(pages)

    def flush_tlb(self) -> None:
        """Drop every cached translation (QEMU TLB and translated blocks)."""
        self.uc.ctl(U.UC_CTL_TLB_FLUSH, U.UC_CTL_IO_WRITE)

    # -- devices -------------------------------------------------------------
    def mmio_map(self, base: int, size: int, read: Callable[[int, int, int, object], int],
                 write: Callable[[int, int, int, int, object], None]) -> None:
        """Map [base, base + size) to device callbacks, called by libunicorn
        through raw ctypes callbacks as read(uch, offset, size, user) -> value
        and write(uch, offset, size, value, user): the binding's own
        mmio_map wraps every access in two more layers of Python. Neither
        callback may raise (an exception would be lost in ctypes)."""
        cbs = (_MMIO_READ(read), _MMIO_WRITE(write))
        err = uclib().uc_mmio_map(self.uc._uch, base, size, cbs[0], None, cbs[1], None)
        if err != U.UC_ERR_OK:
            raise U.UcError(err)
        self._mmio.append(cbs)           # libunicorn holds only the pointers

    # -- what the hart sees ------------------------------------------------
    def translate_fetch(self, va: int) -> int | None:
        """The physical address the hart would fetch virtual `va` from now
        (no A/D side effects), or None if it cannot be translated."""
        core = self.core
        priv = core.pc_priv()[1]
        satp = core.csr(R.UC_RISCV_REG_SATP) if priv < isa.PRIV_M else 0
        try:
            return self._walker.translate(self.mem.buf, self.mem.base, satp, va, "fetch",
                                          min(priv, 1))     # no A/D update: a probe
        except PageFault:
            return None

    def fetch_insn(self, va: int) -> int | None:
        """Return the 32-bit instruction at virtual `va` as the hart would
        fetch it now (no A/D side effects), or None if it cannot be
        translated or lies outside RAM."""
        pa = self.translate_fetch(va)
        if pa is None or not self.mem.contains(pa, 4):
            return None
        return self.mem.read_u32(pa)

    def sum_mxr(self) -> tuple[bool, bool]:
        """Return (SUM, MXR) from sstatus."""
        st = self.csr("sstatus")
        return bool(st & isa.SSTATUS_SUM), bool(st & isa.SSTATUS_MXR)


def _reg_id(name: str) -> int:
    if name == "pc":
        return R.UC_RISCV_REG_PC
    if name == "priv":
        return R.UC_RISCV_REG_PRIV
    if name == "fp":
        name = "s0"
    if name in isa.GPR_NAMES:
        return GPR_IDS[isa.GPR_NAMES.index(name)]
    if name.startswith("x") and name[1:].isdigit() and int(name[1:]) < 32:
        return GPR_IDS[int(name[1:])]
    raise KeyError(f"unknown register {name!r}")
