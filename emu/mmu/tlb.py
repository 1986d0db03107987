"""The bridge from unicorn's UC_TLB_VIRTUAL mode to our walker (pure Python).

In UC_TLB_VIRTUAL mode unicorn asks a UC_HOOK_TLB_FILL callback for every
soft-TLB miss: (uc, page-aligned vaddr, access, entry). `PyFillHook` answers
with the reference walker (emu/mmu/walk.py): it reads satp, sstatus (SUM,
MXR) and the privilege from the CPU, walks the page table in RAM, sets A/D
like hardware, and fills entry.paddr/entry.perms; on a fault it records the
cause and returns False, which makes unicorn stop emu_start with
UC_ERR_EXCEPTION and PC on the faulting instruction (the machine delivers
the trap). `emu._fast.sv39.FillHook` is the C twin with the same interface.

Flush policy is unicorn's (QEMU's): entries are kept per privilege level,
flushed by sfence.vma, by satp writes that change the ASID and by sstatus
writes that change SUM/MXR. See docs/mmu.md.
"""

from __future__ import annotations

import ctypes

from unicorn import UC_HOOK_TLB_FILL
from unicorn.riscv_const import UC_RISCV_REG_PRIV, UC_RISCV_REG_SATP, UC_RISCV_REG_SSTATUS
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_MEM_READ

from emu.mmu.walk import (
    PAGE_FAULT,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    PROT_ALL,
    PageFault,
    UnsupportedMode,
    fill_view,
    u64_view,
)

__all__ = ["PyFillHook", "flush_tlb"]


def _uclib() -> ctypes.CDLL:
    """The libunicorn the binding loaded (private attribute, stable in 2.1.x)."""
    from unicorn.unicorn_py3 import unicorn as _ucmod
    return _ucmod.uclib


_REG_READ_BATCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                   ctypes.c_void_p, ctypes.c_int)
_REG_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


def flush_tlb(uc) -> None:
    """Flush unicorn's whole soft TLB (what sfence.vma does), ~1 us."""
    uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)


class PyFillHook:
    """Pure-Python TLB-fill hook: PyFillHook(uc, ram_buffer, ram_base, ram_size).

    `ram_buffer` is the writable buffer mapped with mem_map_ptr at physical
    `ram_base` (at least `ram_size` bytes). The caller sets
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL) before install().

    Counters: `fills` (successful fills), `faults` (refused fills), the last
    refused fill's `fault_cause` (12/13/15, or 1/5/7 for a PTE outside RAM)
    and `fault_vaddr` (page-aligned: unicorn passes the page address),
    `faults_by_cause`. An unexpected exception inside the callback is kept in
    `error` and stops emulation (the binding re-raises it from emu_start).
    """

    def __init__(self, uc, ram, ram_base: int, ram_size: int) -> None:
        q = u64_view(ram)
        if ram_size < 0 or ram_size > len(q) * 8 + 7:
            raise ValueError(f"ram_size {ram_size} exceeds the buffer")
        self.uc = uc
        self._q = q[: ram_size // 8]
        self._base = ram_base
        self._hh: int | None = None
        self.error: BaseException | None = None
        # Register access through prebuilt ctypes calls: the binding's
        # uc.reg_read costs ~1 us a register, this ~0.4 us for all three.
        lib = _uclib()
        self._h = uc._uch.value
        self._read_batch = _REG_READ_BATCH(("uc_reg_read_batch", lib))
        self._reg_write = _REG_WRITE(("uc_reg_write", lib))
        self._regs = (ctypes.c_int * 3)(UC_RISCV_REG_PRIV, UC_RISCV_REG_SATP,
                                         UC_RISCV_REG_SSTATUS)
        self._vals = (ctypes.c_uint64 * 3)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * 3)(base, base + 8, base + 16)
        self._regs_p = ctypes.addressof(self._regs)
        self._ptrs_p = ctypes.addressof(self._ptrs)
        self._prio = (ctypes.c_uint64 * 2)(PRIV_S, PRIV_U)
        self._prio_s = ctypes.addressof(self._prio)
        self._prio_u = self._prio_s + 8
        self.reset_counters()

    # -- lifecycle --------------------------------------------------------
    def install(self) -> None:
        """Register the callback for UC_HOOK_TLB_FILL. Raises RuntimeError if
        already installed, UcError if unicorn refuses."""
        if self._hh is not None:
            raise RuntimeError("PyFillHook already installed")
        # The binding keeps the bound method (and so self) alive.
        self._hh = self.uc.hook_add(UC_HOOK_TLB_FILL, self._on_fill)

    def uninstall(self) -> None:
        """Remove the callback (no-op if not installed)."""
        if self._hh is not None:
            self.uc.hook_del(self._hh)
            self._hh = None

    @property
    def installed(self) -> bool:
        """True while the callback is registered."""
        return self._hh is not None

    def reset_counters(self) -> None:
        """Zero fills, faults, faults_by_cause and the last-fault record."""
        self.fills = 0
        self.faults = 0
        self.fault_cause = 0
        self.fault_vaddr = 0
        self._by_cause: dict[int, int] = {}

    @property
    def faults_by_cause(self) -> dict[int, int]:
        """Dict cause -> count of refused fills."""
        return dict(self._by_cause)

    # -- the callback -----------------------------------------------------
    def _on_fill(self, uc, vaddr: int, access: int, entry, _user_data) -> bool:
        """UC_HOOK_TLB_FILL callback: True with entry set, or False on a fault."""
        vals = self._vals
        self._read_batch(self._h, self._regs_p, self._ptrs_p, 3)
        priv = vals[0] & 3  # bit 2 would be the H-extension V flag
        acc = access - UC_MEM_READ  # 16/17/18 -> read/write/fetch
        if priv == PRIV_M:
            entry.paddr = vaddr
            entry.perms = PROT_ALL
            self.fills += 1
            return True
        if priv == PRIV_U:
            # CSR reads via uc_reg_read are privilege-checked against the
            # current mode (garbage from U): read them as S, then restore U.
            self._reg_write(self._h, UC_RISCV_REG_PRIV, self._prio_s)
            self._read_batch(self._h, self._regs_p, self._ptrs_p, 3)
            self._reg_write(self._h, UC_RISCV_REG_PRIV, self._prio_u)
        try:
            paddr, perms = fill_view(self._q, self._base, vals[1], vaddr, acc, priv, vals[2])
        except PageFault as pf:
            cause = pf.cause
        except UnsupportedMode:
            cause = PAGE_FAULT[acc]
        except BaseException as exc:  # a bug: stop visibly, never fill
            self.error = exc
            raise
        else:
            entry.paddr = paddr
            entry.perms = perms
            self.fills += 1
            return True
        self.faults += 1
        self.fault_cause = cause
        self.fault_vaddr = vaddr
        self._by_cause[cause] = self._by_cause.get(cause, 0) + 1
        return False
