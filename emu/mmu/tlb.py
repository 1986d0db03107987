"""The bridge from unicorn's UC_TLB_VIRTUAL mode to our walker (pure Python).

In UC_TLB_VIRTUAL mode unicorn asks a UC_HOOK_TLB_FILL callback for every
soft-TLB miss: (uc, page-aligned vaddr, access, entry). `PyFillHook` answers
it: it reads priv, satp and sstatus (SUM, MXR) from the CPU, walks the page
table in RAM, sets A/D like hardware, and fills entry.paddr/entry.perms; on a
fault it records the cause and returns False, which makes unicorn stop
emu_start with UC_ERR_EXCEPTION and PC on the faulting instruction (the
machine then delivers the trap). `emu._fast.sv39.FillHook` is the C twin
with the same interface.

Speed matters here (target: <= 1.5 us a fill), so the hook does not go
through unicorn's Python hook wrapper or `uc.reg_read` (~1 us each) but
registers a raw ctypes callback and reads the three registers with one
uc_reg_read_batch call, and it walks with `fill_page`, a hand-tuned
transcription of the reference walker (emu/mmu/walk.py) that avoids global
lookups and exceptions. tests/test_mmu_diff.py holds `fill_page` to the
reference on random page tables.

Flush policy is unicorn's (QEMU's): entries are kept per privilege level,
flushed by sfence.vma, by satp writes that change the ASID and by sstatus
writes that change SUM/MXR. See docs/mmu.md.

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

import ctypes

from unicorn import UC_HOOK_TLB_FILL
from unicorn.riscv_const import UC_RISCV_REG_PRIV, UC_RISCV_REG_SATP, UC_RISCV_REG_SSTATUS
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_ERR_OK

from emu.mmu.walk import u64_view

__all__ = ["RING", "PyFillHook", "fill_page", "flush_tlb"]

RING = 4096   # recent fills a hook keeps (recent_fills); fast/sv39.pyx keeps as many


def _uclib() -> ctypes.CDLL:
    """The libunicorn the binding loaded (a private name, stable in 2.1.x)."""
    from unicorn.unicorn_py3 import unicorn as _ucmod
    return _ucmod.uclib


class _TlbEntry(ctypes.Structure):
    """struct uc_tlb_entry from unicorn.h."""

    _fields_ = (("paddr", ctypes.c_uint64), ("perms", ctypes.c_uint32))


# bool (*uc_cb_tlbevent_t)(uc_engine *, uint64_t vaddr, uc_mem_type, uc_tlb_entry *, void *)
# (the entry pointer arrives as a plain int: cheaper than a ctypes POINTER)
_FILL_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                            ctypes.c_void_p, ctypes.c_void_p)
_REG_READ_BATCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                   ctypes.c_void_p, ctypes.c_int)
_REG_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


def flush_tlb(uc) -> None:
    """Flush unicorn's whole soft TLB (what sfence.vma does), ~1-2 us."""
    uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)


_PF = (-13, -15, -12)  # negated page-fault causes by access (read, write, fetch)
_AF = (-5, -7, -1)  # negated access-fault causes


def fill_page(q: memoryview, base: int, satp: int, sstatus: int, vaddr: int, acc: int,
              priv: int) -> int:
    """Sv39 walk for a TLB fill, tuned for the pure-Python hook.

    Same algorithm and results as emu.mmu.walk.fill (privileged spec 4.3.2;
    the step numbers are the spec's). Constants are literals because global
    lookups dominate the cost in CPython. `q` is the u64 view of RAM at
    physical `base`, `acc` 0/1/2 = read/write/fetch, `priv` 0/1/3, `sstatus`
    the raw CSR (SUM bit 18, MXR bit 19). Sets A (and D on a write) in RAM.

    Returns (physical page address | UC_PROT_* perms) on success - the page
    address is 4 KiB aligned so the perms fit the low 3 bits - or the
    negated exception cause (-12/-13/-15 page fault, -1/-5/-7 access fault).
    An unsupported satp.MODE is refused with the page-fault cause.
    """
    mode = satp >> 60
    if priv == 3 or not mode:  # M-mode, or Bare: identity, RWX
        return (vaddr & ~0xFFF) | 7
    top = vaddr >> 38  # bits 63..39 must all equal bit 38
    if mode != 8 or (top and top != 0x3FFFFFF):
        return _PF[acc]
    a = (satp & 0xFFFFFFFFFFF) << 12  # step 1: root table
    n = len(q)
    for shift in (30, 21, 12):  # levels 2, 1, 0
        # step 2: the PTE at a + vpn[i] * 8; outside RAM = PMA access fault
        idx = (a - base + ((vaddr >> shift) & 0x1FF) * 8) >> 3
        if not 0 <= idx < n:
            return _AF[acc]
        pte = q[idx]
        # step 3: V=0, W without R, reserved bits 63..54 -> page fault
        if not pte & 1 or pte & 6 == 4 or pte >> 54:
            return _PF[acc]
        if pte & 10:  # step 4: R or X set -> leaf
            break
        a = (pte >> 10 & 0xFFFFFFFFFFF) << 12  # pointer; its A/D/U are ignored
    else:
        return _PF[acc]  # a pointer at level 0
    # step 5: U vs privilege (SUM lets S load/store U pages, never fetch), then R/W/X
    if priv:
        if pte & 16 and (acc == 2 or not sstatus & 0x40000):
            return _PF[acc]
    elif not pte & 16:
        return _PF[acc]
    mxr = sstatus & 0x80000
    if not pte & (2, 4, 8)[acc] and not (acc == 0 and mxr and pte & 8):
        return _PF[acc]
    ppn = pte >> 10 & 0xFFFFFFFFFFF
    if ppn & ((1 << (shift - 12)) - 1):  # step 6: misaligned superpage
        return _PF[acc]
    new = pte | (0xC0 if acc == 1 else 0x40)  # step 7: set A, and D on a store
    if new != pte:
        q[idx] = pte = new
    # step 8 at page granularity (a superpage takes the low VPNs from vaddr),
    # and the perms: R (or X with MXR), W only once D is set, X unless a U
    # page seen from S.
    perms = 1 if pte & 2 or (mxr and pte & 8) else 0
    if pte & 0x84 == 0x84:
        perms |= 2
    if pte & 8 and not (priv and pte & 16):
        perms |= 4
    return (ppn << 12 | (vaddr & ((1 << shift) - 1))) & ~0xFFF | perms


class PyFillHook:
    """Pure-Python TLB-fill hook: PyFillHook(uc, ram_buffer, ram_base, ram_size).

    `ram_buffer` is the writable buffer mapped with mem_map_ptr at physical
    `ram_base` (at least `ram_size` bytes). The caller sets
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL) before install().

    Counters: `fills` (successful fills), `faults` (refused fills), the last
    refused fill's `fault_cause` (12/13/15, or 1/5/7 for a PTE outside RAM)
    and `fault_vaddr` (page-aligned: unicorn passes the page address),
    `faults_by_cause`; `recent_fills()` the page addresses of the last RING
    successful fills. An unexpected exception inside the callback (a bug)
    refuses the fill, stops emulation and is kept in `error`.
    """

    def __init__(self, uc, ram, ram_base: int, ram_size: int) -> None:
        q = u64_view(ram)
        if ram_size < 0 or ram_size > len(q) * 8 + 7:
            raise ValueError(f"ram_size {ram_size} exceeds the buffer")
        self.uc = uc
        self.ram_base = ram_base
        self._q = q[: ram_size // 8]
        self._lib = _uclib()
        self._hh: ctypes.c_size_t | None = None
        self.error: BaseException | None = None
        self._cnt = [0, 0, 0, 0]  # fills, faults, last cause, last vaddr
        self._by_cause: dict[int, int] = {}
        self._ring = [0] * RING  # page vaddr of fill n at _ring[n % RING]
        self._code_fills = ctypes.c_uint64(0)  # successful fetch fills, never reset
        self._cb = _FILL_CB(self._make_callback())

    # -- lifecycle --------------------------------------------------------
    def install(self) -> None:
        """Register the callback for UC_HOOK_TLB_FILL on every address.
        Raises RuntimeError if already installed or if unicorn refuses."""
        if self._hh is not None:
            raise RuntimeError("PyFillHook already installed")
        hh = ctypes.c_size_t()
        err = self._lib.uc_hook_add(self.uc._uch, ctypes.byref(hh), UC_HOOK_TLB_FILL,
                                    ctypes.cast(self._cb, ctypes.c_void_p), None, 1, 0)
        if err != UC_ERR_OK:
            raise RuntimeError(f"uc_hook_add(TLB_FILL) failed with error {err}")
        self._hh = hh
        # The Uc keeps us (and the ctypes thunk) alive while installed.
        hooks = self.uc.__dict__.setdefault("_emu_fill_hooks", [])
        hooks.append(self)

    def uninstall(self) -> None:
        """Remove the callback (no-op if not installed)."""
        if self._hh is None:
            return
        err = self._lib.uc_hook_del(self.uc._uch, self._hh)
        if err != UC_ERR_OK:
            raise RuntimeError(f"uc_hook_del failed with error {err}")
        self._hh = None
        hooks = self.uc.__dict__.get("_emu_fill_hooks", [])
        if self in hooks:
            hooks.remove(self)

    @property
    def installed(self) -> bool:
        """True while the callback is registered."""
        return self._hh is not None

    def reset_counters(self) -> None:
        """Zero fills, faults, faults_by_cause and the last-fault record."""
        self._cnt[:] = [0, 0, 0, 0]
        self._by_cause.clear()

    @property
    def code_epoch_address(self) -> int:
        """Address of a uint64 that grows by one on every successful fetch
        fill and is never reset (emu/machine/budget.py's `watch_code`)."""
        return ctypes.addressof(self._code_fills)

    @property
    def fills(self) -> int:
        """Number of successful fills since the last reset."""
        return self._cnt[0]

    @property
    def faults(self) -> int:
        """Number of refused fills since the last reset."""
        return self._cnt[1]

    @property
    def fault_cause(self) -> int:
        """Cause of the last refused fill (12/13/15, 1/5/7), 0 if none."""
        return self._cnt[2]

    @property
    def fault_vaddr(self) -> int:
        """Page-aligned virtual address of the last refused fill."""
        return self._cnt[3]

    @property
    def faults_by_cause(self) -> dict[int, int]:
        """Dict cause -> count of refused fills."""
        return dict(self._by_cause)

    def recent_fills(self) -> list[int]:
        """Page-aligned virtual addresses of the last min(fills, RING)
        successful fills since the last reset, oldest first."""
        fills = self._cnt[0]
        n = min(fills, RING)
        return [self._ring[(fills - n + i) % RING] for i in range(n)]

    # -- the callback -----------------------------------------------------
    def _make_callback(self):
        """Build the fill callback as a closure: locals and cells are much
        cheaper than attribute lookups on this path."""
        lib = self._lib
        handle = self.uc._uch.value
        read_batch = _REG_READ_BATCH(("uc_reg_read_batch", lib))
        reg_write = _REG_WRITE(("uc_reg_write", lib))
        regs = (ctypes.c_int * 3)(UC_RISCV_REG_PRIV, UC_RISCV_REG_SATP, UC_RISCV_REG_SSTATUS)
        vals = (ctypes.c_uint64 * 3)()
        vbase = ctypes.addressof(vals)
        ptrs = (ctypes.c_void_p * 3)(vbase, vbase + 8, vbase + 16)
        regs_p, ptrs_p = ctypes.addressof(regs), ctypes.addressof(ptrs)
        prio = (ctypes.c_uint64 * 2)(1, 0)  # S, U
        prio_s = ctypes.addressof(prio)
        prio_u = prio_s + 8
        q, base, cnt, by_cause, ring = self._q, self.ram_base, self._cnt, self._by_cause, \
            self._ring
        code_fills = self._code_fills
        keep = (regs, vals, ptrs, prio)  # buffers the raw pointers refer to
        entries: dict[int, _TlbEntry] = {}
        uc_obj = self.uc

        def on_fill(_uch, vaddr, access, entry, _user):
            try:
                read_batch(handle, regs_p, ptrs_p, 3)
                priv = vals[0] & 3  # bit 2 would be the H-extension V flag
                if priv == 0:
                    # uc_reg_read of a CSR is privilege-checked against the
                    # current mode (garbage from U): read as S, restore U.
                    reg_write(handle, UC_RISCV_REG_PRIV, prio_s)
                    read_batch(handle, regs_p, ptrs_p, 3)
                    reg_write(handle, UC_RISCV_REG_PRIV, prio_u)
                acc = access - 16
                r = fill_page(q, base, vals[1], vals[2], vaddr, acc, priv)
                if r >= 0:
                    if acc == 2:                 # a fetch: the budget's code epoch
                        code_fills.value += 1
                    # unicorn passes a few distinct stack addresses for the
                    # entry: reuse one typed view per address.
                    e = entries.get(entry)
                    if e is None:
                        if len(entries) > 64:
                            entries.clear()
                        e = entries[entry] = _TlbEntry.from_address(entry)
                    e.paddr = r & ~0xFFF
                    e.perms = r & 7
                    n = cnt[0]
                    ring[n & 4095] = vaddr  # RING - 1 as a literal: no global lookup
                    cnt[0] = n + 1
                    return True
                cnt[1] += 1
                cnt[2] = -r
                cnt[3] = vaddr
                by_cause[-r] = by_cause.get(-r, 0) + 1
                return False
            except BaseException as exc:  # a bug here: refuse the fill, stop, keep it
                self.error = exc
                uc_obj.emu_stop()
                return False

        on_fill.keep = keep  # type: ignore[attr-defined]
        return on_fill
