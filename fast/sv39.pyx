# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython twin of the Sv39 walker (emu/mmu/walk.py) plus a C TLB-fill hook.

Role: the fast path of the machine's MMU. `translate` has the same signature
and semantics as emu.mmu.walk.translate (the differential tests hold them to
it); `FillHook` registers a C callback for unicorn's UC_HOOK_TLB_FILL that
reads satp/sstatus/priv with uc_reg_read, walks the page table through the
RAM pointer (never uc_mem_read) and sets A/D in RAM like hardware.

The walk below is the same algorithm as walk.py, step for step (RISC-V
Privileged Architecture 20211203, section 4.3.2 with the Sv39 parameters of
section 4.4.1); read walk.py for the commented version. Keep the two in
lock-step: tests/test_mmu_diff.py compares them on random page tables.

Also exported for tests and tools: `vmem_translate` (libunicorn's own walker
via uc_vmem_translate) and `flush_tlb`.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)

import sys

from emu.mmu.walk import PageFault, UnsupportedMode

cdef extern from "unicorn/unicorn.h" nogil:
    ctypedef struct uc_engine:
        pass
    ctypedef enum uc_err:
        UC_ERR_OK
    ctypedef enum uc_mem_type:
        UC_MEM_READ
        UC_MEM_WRITE
        UC_MEM_FETCH
    ctypedef enum uc_prot:
        UC_PROT_NONE
        UC_PROT_READ
        UC_PROT_WRITE
        UC_PROT_EXEC
        UC_PROT_ALL
    ctypedef struct uc_tlb_entry:
        uint64_t paddr
        uc_prot perms
    ctypedef size_t uc_hook
    ctypedef enum uc_hook_type:
        UC_HOOK_TLB_FILL
    ctypedef enum uc_control_type:
        UC_CTL_TLB_FLUSH
    ctypedef enum uc_riscv_reg:
        UC_RISCV_REG_SATP
        UC_RISCV_REG_SSTATUS
        UC_RISCV_REG_PRIV
    uc_control_type UC_CTL_WRITE(int ctl, int nr)
    uc_err uc_reg_read(uc_engine *uc, int regid, void *value)
    uc_err uc_reg_write(uc_engine *uc, int regid, const void *value)
    uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback,
                       void *user_data, uint64_t begin, uint64_t end, ...)
    uc_err uc_hook_del(uc_engine *uc, uc_hook hh)
    uc_err uc_vmem_translate(uc_engine *uc, uint64_t address, uc_prot prot,
                             uint64_t *paddress)
    uc_err uc_ctl(uc_engine *uc, uc_control_type control, ...)
    const char *uc_strerror(uc_err code)

if sys.byteorder != "little":  # PTEs are read as native u64 below
    raise ImportError("emu._fast.sv39 needs a little-endian host")

# Constants mirror emu/mmu/pte.py and emu/mmu/walk.py.
cdef enum:
    PTE_V = 1 << 0
    PTE_R = 1 << 1
    PTE_W = 1 << 2
    PTE_X = 1 << 3
    PTE_U = 1 << 4
    PTE_A = 1 << 6
    PTE_D = 1 << 7
    ACC_READ = 0
    ACC_WRITE = 1
    ACC_FETCH = 2
    PRIV_U = 0
    PRIV_S = 1
    PRIV_M = 3
    PROT_READ = 1
    PROT_WRITE = 2
    PROT_EXEC = 4
    ERR_MODE = -1        # satp.MODE neither Bare nor Sv39
    NEED_SSTATUS = -2    # the walk needs SUM/MXR, which the caller did not read
    N_CAUSES = 16
    RING = 4096          # recent fills kept (a power of two; PyFillHook keeps as many)

cdef uint64_t PPN_MASK = (<uint64_t>1 << 44) - 1
cdef uint64_t RESERVED_MASK = (<uint64_t>0x3FF) << 54
cdef uint64_t TOP_ONES = ((<uint64_t>1) << 26) - 1
cdef uint64_t SSTATUS_SUM = (<uint64_t>1) << 18
cdef uint64_t SSTATUS_MXR = (<uint64_t>1) << 19
cdef int PAGE_FAULT[3]
PAGE_FAULT[:] = [13, 15, 12]
cdef int ACCESS_FAULT[3]
ACCESS_FAULT[:] = [5, 7, 1]


cdef int sv39_walk(unsigned char *ram, uint64_t base, uint64_t size, uint64_t satp,
                   uint64_t vaddr, int acc, int priv, int sum_, int mxr, bint update_ad,
                   uint64_t *paddr_out, uint32_t *perms_out) noexcept nogil:
    """Return 0 and set *paddr_out/*perms_out, or return the exception
    cause (1/5/7/12/13/15), or ERR_MODE. Writes RAM only if update_ad.

    sum_/mxr are 0/1, or -1 for "not read yet": the fill hook walks before
    reading sstatus and gets NEED_SSTATUS (before any RAM write) only when
    SUM or MXR decides the outcome or the perms: an S-mode load/store to a U
    page, or an X-only (R=0) leaf."""
    cdef uint64_t a, pte = 0, pte_addr, off = 0, ppn, top, new
    cdef int i
    cdef uint32_t perms
    if priv == PRIV_M or (satp >> 60) == 0:  # M-mode or Bare: identity
        paddr_out[0] = vaddr
        perms_out[0] = PROT_READ | PROT_WRITE | PROT_EXEC
        return 0
    if (satp >> 60) != 8:
        return ERR_MODE
    top = vaddr >> 38  # canonical: bits 63..39 equal bit 38
    if top != 0 and top != TOP_ONES:
        return PAGE_FAULT[acc]
    a = (satp & PPN_MASK) << 12  # step 1
    i = 2
    while True:
        pte_addr = a + ((vaddr >> (12 + 9 * i)) & 0x1FF) * 8  # step 2
        if pte_addr < base or pte_addr - base >= size or size - (pte_addr - base) < 8:
            return ACCESS_FAULT[acc]
        off = pte_addr - base
        memcpy(&pte, ram + off, 8)
        if not (pte & PTE_V):  # step 3
            return PAGE_FAULT[acc]
        if (pte & (PTE_R | PTE_W)) == PTE_W:
            return PAGE_FAULT[acc]
        if pte & RESERVED_MASK:
            return PAGE_FAULT[acc]
        if pte & (PTE_R | PTE_X):  # step 4: leaf
            break
        i -= 1
        if i < 0:
            return PAGE_FAULT[acc]
        a = ((pte >> 10) & PPN_MASK) << 12
    if (sum_ < 0 or mxr < 0) and (
            (priv == PRIV_S and (pte & PTE_U) and acc != ACC_FETCH) or not (pte & PTE_R)):
        return NEED_SSTATUS
    # step 5: privilege and access checks
    if priv == PRIV_U:
        if not (pte & PTE_U):
            return PAGE_FAULT[acc]
    elif pte & PTE_U:
        if acc == ACC_FETCH or not sum_:
            return PAGE_FAULT[acc]
    if acc == ACC_READ:
        if not ((pte & PTE_R) or (mxr and (pte & PTE_X))):
            return PAGE_FAULT[acc]
    elif acc == ACC_WRITE:
        if not (pte & PTE_W):
            return PAGE_FAULT[acc]
    elif not (pte & PTE_X):
        return PAGE_FAULT[acc]
    ppn = (pte >> 10) & PPN_MASK
    if i > 0 and (ppn & ((<uint64_t>1 << (9 * i)) - 1)):  # step 6
        return PAGE_FAULT[acc]
    if update_ad:  # step 7
        new = pte | PTE_A
        if acc == ACC_WRITE:
            new |= PTE_D
        if new != pte:
            memcpy(ram + off, &new, 8)
            pte = new
    # step 8
    paddr_out[0] = (ppn << 12) | (vaddr & ((<uint64_t>1 << (12 + 9 * i)) - 1))
    perms = 0
    if (pte & PTE_R) or (mxr and (pte & PTE_X)):
        perms = PROT_READ
    if (pte & PTE_W) and (pte & PTE_D):
        perms |= PROT_WRITE
    if (pte & PTE_X) and not (priv == PRIV_S and (pte & PTE_U)):
        perms |= PROT_EXEC
    perms_out[0] = perms
    return 0


cdef int _access_code(access) except -1:
    if access == "read":
        return ACC_READ
    if access == "write":
        return ACC_WRITE
    if access == "fetch":
        return ACC_FETCH
    raise ValueError(f"access must be read, write or fetch, not {access!r}")


def translate(ram, ram_base, satp, vaddr, access, priv, sum=False, mxr=False,
              update_ad=False):
    """Same contract as emu.mmu.walk.translate: return the physical address
    of `vaddr`, or raise PageFault (cause 12/13/15, 1/5/7 for a PTE outside
    RAM), UnsupportedMode, or ValueError for bad access/priv. `ram` must be
    writable when update_ad is true; otherwise it is never written."""
    cdef int acc = _access_code(access)
    cdef int c_priv
    if priv not in (0, 1, 3):
        raise ValueError(f"priv must be 0 (U), 1 (S) or 3 (M), not {priv!r}")
    c_priv = priv
    cdef uint64_t c_satp = satp & 0xFFFFFFFFFFFFFFFF
    cdef uint64_t c_vaddr = vaddr & 0xFFFFFFFFFFFFFFFF
    cdef uint64_t c_base = ram_base
    cdef Py_buffer view
    cdef uint64_t paddr = 0
    cdef uint32_t perms = 0
    cdef int rc
    PyObject_GetBuffer(ram, &view, PyBUF_WRITABLE if update_ad else PyBUF_SIMPLE)
    try:
        rc = sv39_walk(<unsigned char *>view.buf, c_base, <uint64_t>view.len, c_satp,
                       c_vaddr, acc, c_priv, 1 if sum else 0, 1 if mxr else 0, bool(update_ad),
                       &paddr, &perms)
    finally:
        PyBuffer_Release(&view)
    if rc == 0:
        return paddr
    if rc == ERR_MODE:
        raise UnsupportedMode(f"satp.MODE={c_satp >> 60} is not Bare (0) or Sv39 (8)")
    raise PageFault(rc, c_vaddr)


def fill(ram, ram_base, satp, vaddr, access, priv, sum=False, mxr=False):
    """Same contract as emu.mmu.walk.fill: walk with A/D update and return
    (physical page address, UC_PROT_* perms); raises like translate()."""
    cdef int acc = _access_code(access)
    if priv not in (0, 1, 3):
        raise ValueError(f"priv must be 0 (U), 1 (S) or 3 (M), not {priv!r}")
    cdef int c_priv = priv
    cdef uint64_t c_satp = satp & 0xFFFFFFFFFFFFFFFF
    cdef uint64_t c_vaddr = vaddr & 0xFFFFFFFFFFFFFFFF
    cdef uint64_t c_base = ram_base
    cdef Py_buffer view
    cdef uint64_t paddr = 0
    cdef uint32_t perms = 0
    cdef int rc
    PyObject_GetBuffer(ram, &view, PyBUF_WRITABLE)
    try:
        rc = sv39_walk(<unsigned char *>view.buf, c_base, <uint64_t>view.len, c_satp,
                       c_vaddr, acc, c_priv, 1 if sum else 0, 1 if mxr else 0, True,
                       &paddr, &perms)
    finally:
        PyBuffer_Release(&view)
    if rc == 0:
        return paddr & ~(<uint64_t>0xFFF), perms
    if rc == ERR_MODE:
        raise UnsupportedMode(f"satp.MODE={c_satp >> 60} is not Bare (0) or Sv39 (8)")
    raise PageFault(rc, c_vaddr)


# --- The TLB fill hook -------------------------------------------------------

cdef struct HookState:
    unsigned char *ram
    uint64_t base
    uint64_t size
    uint64_t fills
    uint64_t faults
    uint64_t fault_cause
    uint64_t fault_vaddr
    uint64_t code_fills  # successful fetch fills, never reset (the budget's code epoch)
    uint64_t by_cause[N_CAUSES]
    uint64_t ring[RING]  # page vaddr of fill n at ring[n % RING]


cdef inline void _read_csr(uc_engine *uc, int reg, uint64_t *value,
                           uint64_t priv) noexcept nogil:
    """uc_reg_read of a CSR. unicorn privilege-checks CSR reads against the
    current mode and returns garbage (no error) from U-mode: there, switch to
    S for the read and back to U. (Switching clears QEMU's LR reservation;
    see docs/mmu.md.)"""
    cdef uint64_t s_mode = PRIV_S
    if priv == PRIV_U:
        uc_reg_write(uc, UC_RISCV_REG_PRIV, &s_mode)
        uc_reg_read(uc, reg, value)
        uc_reg_write(uc, UC_RISCV_REG_PRIV, &priv)
    else:
        uc_reg_read(uc, reg, value)


cdef bint _on_tlb_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type,
                       uc_tlb_entry *result, void *user_data) noexcept nogil:
    """UC_HOOK_TLB_FILL callback (unicorn passes the page-aligned vaddr).

    Returns true with result->paddr/perms set, or false after recording the
    fault: unicorn then stops emu_start with UC_ERR_EXCEPTION, PC on the
    faulting instruction, and the machine delivers the trap.
    """
    cdef HookState *st = <HookState *>user_data
    cdef uint64_t priv = 0, satp = 0, sstatus = 0
    cdef uint64_t paddr = 0
    cdef uint32_t perms = 0
    cdef int acc = <int>type - <int>UC_MEM_READ
    cdef int rc
    if acc < ACC_READ or acc > ACC_FETCH:
        acc = ACC_READ
    uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
    priv &= 3  # bit 2 is the virtualisation flag (no H extension here)
    if priv == PRIV_M:
        rc = 0
        paddr = vaddr
        perms = PROT_READ | PROT_WRITE | PROT_EXEC
    else:
        # sstatus (SUM/MXR) is read only when the leaf needs it (an S-mode
        # load/store to a U page, or an X-only leaf): one CSR read saved on
        # most fills. SUM does not matter in U-mode.
        _read_csr(uc, UC_RISCV_REG_SATP, &satp, priv)
        rc = sv39_walk(st.ram, st.base, st.size, satp, vaddr, acc, <int>priv,
                       0 if priv == PRIV_U else -1, -1, True, &paddr, &perms)
        if rc == NEED_SSTATUS:
            _read_csr(uc, UC_RISCV_REG_SSTATUS, &sstatus, priv)
            rc = sv39_walk(st.ram, st.base, st.size, satp, vaddr, acc, <int>priv,
                           (sstatus & SSTATUS_SUM) != 0, (sstatus & SSTATUS_MXR) != 0,
                           True, &paddr, &perms)
        if rc == ERR_MODE:  # unsupported satp.MODE: refuse, visibly
            rc = PAGE_FAULT[acc]
    if rc == 0:
        st.ring[st.fills & (RING - 1)] = vaddr
        st.fills += 1
        if acc == ACC_FETCH:
            st.code_fills += 1
        result.paddr = paddr & ~(<uint64_t>0xFFF)
        result.perms = <uc_prot>perms
        return True
    st.faults += 1
    st.fault_cause = rc
    st.fault_vaddr = vaddr
    st.by_cause[rc & (N_CAUSES - 1)] += 1
    return False


cdef class FillHook:
    """C TLB-fill hook for a Uc in UC_TLB_VIRTUAL mode.

    FillHook(uc, ram_buffer, ram_base, ram_size): `ram_buffer` is the
    writable buffer given to unicorn with mem_map_ptr at physical `ram_base`
    (at least `ram_size` bytes; its export is held while this object lives).
    The caller sets uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL) before install().

    Counters: `fills` (successful fills), `faults` (refused fills), the last
    refused fill's `fault_cause` (12/13/15 or 1/5/7) and `fault_vaddr` (the
    page-aligned address unicorn passed), `faults_by_cause`; `recent_fills()`
    the page addresses of the last 4096 successful fills.
    """

    cdef HookState st
    cdef Py_buffer view
    cdef bint have_view
    cdef uc_engine *uch
    cdef uc_hook hh
    cdef bint _installed
    cdef object uc
    cdef void *callback

    def __cinit__(self, uc, ram, ram_base, ram_size):
        self.have_view = False
        self._installed = False
        self.callback = <void *>_on_tlb_fill
        PyObject_GetBuffer(ram, &self.view, PyBUF_WRITABLE)
        self.have_view = True
        if ram_size < 0 or ram_size > self.view.len:
            raise ValueError(f"ram_size {ram_size} exceeds the buffer ({self.view.len} bytes)")
        self.uc = uc
        self.uch = <uc_engine *><size_t>uc._uch.value
        self.st.ram = <unsigned char *>self.view.buf
        self.st.base = ram_base
        self.st.size = ram_size
        self.st.code_fills = 0
        self.reset_counters()

    def __dealloc__(self):
        # Never call uc_hook_del here: this object dies only together with
        # its Uc (which holds it while installed), whose engine may already
        # be closed.
        if self.have_view:
            PyBuffer_Release(&self.view)
            self.have_view = False

    def install(self):
        """Register the C callback for UC_HOOK_TLB_FILL on every address.
        Raises RuntimeError if unicorn refuses or it is already installed."""
        if self._installed:
            raise RuntimeError("FillHook already installed")
        cdef uc_err err = uc_hook_add(self.uch, &self.hh, UC_HOOK_TLB_FILL,
                                      self.callback, <void *>&self.st, 1, 0)
        if err != UC_ERR_OK:
            raise RuntimeError(f"uc_hook_add(TLB_FILL) failed: {uc_strerror(err).decode()}")
        self._installed = True
        # The Uc keeps us alive while the engine may call the callback.
        hooks = getattr(self.uc, "_emu_fill_hooks", None)
        if hooks is None:
            hooks = []
            setattr(self.uc, "_emu_fill_hooks", hooks)
        hooks.append(self)

    def uninstall(self):
        """Remove the callback (no-op if not installed)."""
        if not self._installed:
            return
        cdef uc_err err = uc_hook_del(self.uch, self.hh)
        if err != UC_ERR_OK:
            raise RuntimeError(f"uc_hook_del failed: {uc_strerror(err).decode()}")
        self._installed = False
        hooks = getattr(self.uc, "_emu_fill_hooks", [])
        if self in hooks:
            hooks.remove(self)

    @property
    def code_epoch_address(self):
        """Address of a uint64 that grows by one on every successful fetch
        fill and is never reset (emu/machine/budget.py's `watch_code`)."""
        return <size_t>&self.st.code_fills

    def reset_counters(self):
        """Zero fills, faults, faults_by_cause and the last-fault record."""
        cdef int k
        self.st.fills = 0
        self.st.faults = 0
        self.st.fault_cause = 0
        self.st.fault_vaddr = 0
        for k in range(N_CAUSES):
            self.st.by_cause[k] = 0

    @property
    def installed(self):
        """True while the callback is registered."""
        return bool(self._installed)

    @property
    def fills(self):
        """Number of successful fills since the last reset."""
        return self.st.fills

    @property
    def faults(self):
        """Number of refused fills (page or access faults) since the last reset."""
        return self.st.faults

    @property
    def fault_cause(self):
        """Cause of the last refused fill (12/13/15, 1/5/7), 0 if none."""
        return self.st.fault_cause

    @property
    def fault_vaddr(self):
        """Page-aligned virtual address of the last refused fill."""
        return self.st.fault_vaddr

    @property
    def faults_by_cause(self):
        """Dict cause -> count of refused fills (only non-zero entries)."""
        return {k: self.st.by_cause[k] for k in range(N_CAUSES) if self.st.by_cause[k]}

    def recent_fills(self):
        """Page-aligned virtual addresses of the last min(fills, 4096)
        successful fills since the last reset, oldest first."""
        cdef uint64_t n = min(self.st.fills, <uint64_t>RING)
        cdef uint64_t first = self.st.fills - n
        return [self.st.ring[(first + i) & (RING - 1)] for i in range(n)]


cdef bint _null_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type,
                     uc_tlb_entry *result, void *user_data) noexcept nogil:
    """Identity RWX fill that reads no register and walks nothing."""
    cdef HookState *st = <HookState *>user_data
    st.fills += 1
    result.paddr = vaddr
    result.perms = UC_PROT_ALL
    return True


cdef class NullFillHook(FillHook):
    """Benchmark baseline, not an MMU: fills every page identity-mapped RWX
    without reading registers or walking. Its cost per fill is unicorn's
    fixed price for any UC_HOOK_TLB_FILL callback (see bench/test_bench_tlb.py).
    Same constructor and counters as FillHook."""

    def __cinit__(self, uc, ram, ram_base, ram_size):
        self.callback = <void *>_null_fill


# --- Helpers around libunicorn ------------------------------------------------

def flush_tlb(uc):
    """Flush unicorn's whole soft TLB (uc_ctl UC_CTL_TLB_FLUSH), the C
    equivalent of uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE). Raises
    RuntimeError on failure."""
    cdef uc_engine *uch = <uc_engine *><size_t>uc._uch.value
    cdef uc_err err = uc_ctl(uch, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0))
    if err != UC_ERR_OK:
        raise RuntimeError(f"TLB flush failed: {uc_strerror(err).decode()}")


def vmem_translate(uc, vaddr, prot, flush=True):
    """Translate `vaddr` with unicorn's own MMU (uc_vmem_translate) for
    `prot` (UC_PROT_READ/WRITE/EXEC) at the CPU's current privilege.

    Only meaningful in the default UC_TLB_CPU mode (QEMU's Sv39 walker; it
    sets A/D in RAM like a hardware walk). It answers from the soft TLB when
    the page is cached, so by default the TLB is flushed first. Returns the
    physical address, or None if the walker refused (no cause available).
    """
    cdef uc_engine *uch = <uc_engine *><size_t>uc._uch.value
    cdef uint64_t pa = 0
    cdef uc_err err
    if flush:
        uc_ctl(uch, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0))
    err = uc_vmem_translate(uch, vaddr & 0xFFFFFFFFFFFFFFFF, <uc_prot>prot, &pa)
    if err != UC_ERR_OK:
        return None
    return pa
