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

PMP (emu/mmu/pmp.py is the reference, spec 3.7.1) is `pmp_rules` below:
decoded from unicorn's pmp_state (emu/core/hartstate.py) on every fill once
`FillHook.watch_pmp` is called, or from a list of emu.mmu.pmp.Rule for
`translate`/`fill`. M-mode loads/stores with mstatus.MPRV use MPP's
privilege, and such an entry never grants execute (emu/mmu/tlb.py).

Also exported for tests and tools: `vmem_translate` (libunicorn's own walker
via uc_vmem_translate) and `flush_tlb`.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy
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
        UC_RISCV_REG_MSTATUS
        UC_RISCV_REG_PRIV
    uc_control_type UC_CTL_WRITE(int ctl, int nr)
    uc_err uc_reg_read(uc_engine *uc, int regid, void *value)
    uc_err uc_reg_write(uc_engine *uc, int regid, const void *value)
    uc_err uc_hook_add(uc_engine *uc, uc_hook *hh, int type, void *callback,
                       void *user_data, uint64_t begin, uint64_t end, ...)
    uc_err uc_hook_del(uc_engine *uc, uc_hook hh)
    uc_err uc_emu_stop(uc_engine *uc)
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
    STALE_MAX = 64       # changed code pages remembered between two take_stale calls
    CODE_MAP_BITS = 14
    CODE_MAP = 16384     # fetch mappings remembered for the code epoch (2 ** CODE_MAP_BITS)
    CODE_MAP_EMPTY = 1   # a slot's vpage before its first fill (not page-aligned)

cdef uint64_t PPN_MASK = (<uint64_t>1 << 44) - 1
cdef uint64_t RESERVED_MASK = (<uint64_t>0x3FF) << 54
cdef uint64_t TOP_ONES = ((<uint64_t>1) << 26) - 1
cdef uint64_t SSTATUS_SUM = (<uint64_t>1) << 18
cdef uint64_t SSTATUS_MXR = (<uint64_t>1) << 19
cdef uint64_t MSTATUS_MPRV = (<uint64_t>1) << 17
cdef int PAGE_FAULT[3]
PAGE_FAULT[:] = [13, 15, 12]
cdef int ACCESS_FAULT[3]
ACCESS_FAULT[:] = [5, 7, 1]


# --- PMP (emu/mmu/pmp.py, step for step) ---------------------------------------

DEF PMP_ENTRIES = 16
DEF PMP_STRIDE = 16              # unicorn's pmp_entry_t: addr_reg, cfg_reg, padding

cdef struct pmp_rules:
    int n                        # active entries, lowest index first
    uint64_t lo[PMP_ENTRIES]
    uint64_t hi[PMP_ENTRIES]     # inclusive; hi < lo: an empty TOR range
    uint32_t perms[PMP_ENTRIES]
    int locked[PMP_ENTRIES]


cdef void pmp_add(pmp_rules *r, uint64_t lo, uint64_t hi, uint32_t perms,
                  int locked) noexcept nogil:
    r.lo[r.n] = lo
    r.hi[r.n] = hi
    r.perms[r.n] = perms
    r.locked[r.n] = locked
    r.n += 1


cdef void pmp_decode(const unsigned char *state, pmp_rules *r) noexcept nogil:
    """The active rules of unicorn's 16 (addr_reg, cfg_reg) entries."""
    cdef int i, a, k
    cdef uint64_t addr, prev = 0, lo, hi
    cdef uint8_t cfg, nxt
    r.n = 0
    for i in range(PMP_ENTRIES):
        memcpy(&addr, state + i * PMP_STRIDE, 8)
        cfg = state[i * PMP_STRIDE + 8]
        nxt = state[(i + 1) * PMP_STRIDE + 8] if i + 1 < PMP_ENTRIES else 0
        a = (cfg >> 3) & 3
        if a == 1:                                    # TOR
            lo = prev << 2
            if addr:
                hi = (addr << 2) - 1
            else:
                hi = 0
                lo = 1                                # empty
        elif a == 2:                                  # NA4
            lo = addr << 2
            hi = lo + 3
        elif a == 3:                                  # NAPOT
            k = 0
            while k < 64 and (addr >> k) & 1:
                k += 1
            if k >= 61:                               # 2^64 bytes or more: all of it
                lo = 0
                hi = <uint64_t>0xFFFFFFFFFFFFFFFF
            else:
                lo = (addr & ~((<uint64_t>1 << k) - 1)) << 2
                hi = lo + ((<uint64_t>1 << (k + 3)) - 1)
        if a:   # binds M: its own L, or a locked TOR next (QEMU's pmp_is_locked)
            pmp_add(r, lo, hi, cfg & 7,
                    (cfg & 0x80) != 0 or ((nxt & 0x80) != 0 and ((nxt >> 3) & 3) == 1))
        prev = addr


cdef bint pmp_allows(const pmp_rules *r, uint64_t addr, uint64_t size, int acc,
                     int priv) noexcept nogil:
    """One access, exactly as the spec says (emu.mmu.pmp.allows)."""
    cdef uint64_t last = addr + size - 1
    cdef bint first_in, last_in
    cdef int i
    for i in range(r.n):
        first_in = r.lo[i] <= addr <= r.hi[i]
        last_in = r.lo[i] <= last <= r.hi[i]
        if not first_in and not last_in:
            continue
        if first_in != last_in:
            return False
        if priv == PRIV_M and not r.locked[i]:
            return True
        return (r.perms[i] >> acc) & 1
    return priv == PRIV_M


cdef uint32_t pmp_page_perms(const pmp_rules *r, uint64_t page, int priv) noexcept nogil:
    """What every byte of the 4 KiB page has (emu.mmu.pmp.page_perms)."""
    cdef uint64_t lo_s[2 * PMP_ENTRIES + 2]
    cdef uint64_t hi_s[2 * PMP_ENTRIES + 2]
    cdef uint64_t lo_n[2 * PMP_ENTRIES + 2]
    cdef uint64_t hi_n[2 * PMP_ENTRIES + 2]
    cdef int n = 1, m, i, j
    cdef uint32_t perms = PROT_READ | PROT_WRITE | PROT_EXEC
    lo_s[0] = page
    hi_s[0] = page + 4095
    for i in range(r.n):
        if n == 0 or perms == 0:
            break
        m = 0
        for j in range(n):
            if r.hi[i] < lo_s[j] or r.lo[i] > hi_s[j] or r.hi[i] < r.lo[i]:
                lo_n[m] = lo_s[j]
                hi_n[m] = hi_s[j]
                m += 1
                continue
            if not (priv == PRIV_M and not r.locked[i]):
                perms &= r.perms[i]
            if lo_s[j] < r.lo[i]:
                lo_n[m] = lo_s[j]
                hi_n[m] = r.lo[i] - 1
                m += 1
            if r.hi[i] < hi_s[j]:
                lo_n[m] = r.hi[i] + 1
                hi_n[m] = hi_s[j]
                m += 1
        n = m
        for j in range(n):
            lo_s[j] = lo_n[j]
            hi_s[j] = hi_n[j]
    if n and priv != PRIV_M:
        perms = 0
    return perms


cdef int pmp_final(const pmp_rules *pmp, uint64_t paddr, int acc, int priv,
                   uint32_t *perms) noexcept nogil:
    """Cut *perms to PMP's grant on paddr's page: 0, or the access fault."""
    cdef uint32_t allowed
    if pmp == NULL:
        return 0
    allowed = pmp_page_perms(pmp, paddr & ~(<uint64_t>0xFFF), priv)
    if not (allowed >> acc) & 1:
        return ACCESS_FAULT[acc]
    perms[0] &= allowed
    return 0


cdef int _rules_from_list(pmp, pmp_rules *r) except -1:
    """Fill *r from a list of emu.mmu.pmp.Rule (translate/fill)."""
    r.n = 0
    if len(pmp) > PMP_ENTRIES:
        raise ValueError("at most 16 PMP rules")
    for rule in pmp:
        pmp_add(r, rule.lo & 0xFFFFFFFFFFFFFFFF, rule.hi & 0xFFFFFFFFFFFFFFFF
                if rule.hi >= 0 else 0, rule.perms, 1 if rule.locked else 0)
        if rule.hi < rule.lo:                      # empty: keep it empty in C
            r.lo[r.n - 1] = 1
            r.hi[r.n - 1] = 0
    return 0


cdef int sv39_walk(unsigned char *ram, uint64_t base, uint64_t size, uint64_t satp,
                   uint64_t vaddr, int acc, int priv, int sum_, int mxr, bint update_ad,
                   uint64_t *paddr_out, uint32_t *perms_out,
                   const pmp_rules *pmp, unsigned char *written) noexcept nogil:
    """Return 0 and set *paddr_out/*perms_out, or return the exception
    cause (1/5/7/12/13/15), or ERR_MODE. Writes RAM only if update_ad, and
    then marks the PTE's page in `written` (one byte per RAM page) unless
    it is NULL.

    sum_/mxr are 0/1, or -1 for "not read yet": the fill hook walks before
    reading sstatus and gets NEED_SSTATUS (before any RAM write) only when
    SUM or MXR decides the outcome or the perms: an S-mode load/store to a U
    page, or an X-only (R=0) leaf. `pmp`: NULL, or the rules PTE reads (as
    S, 8 bytes) and the result are checked against (access fault)."""
    cdef uint64_t a, pte = 0, pte_addr, off = 0, ppn, top, new
    cdef int i
    cdef uint32_t perms
    if priv == PRIV_M or (satp >> 60) == 0:  # M-mode or Bare: identity
        paddr_out[0] = vaddr
        perms_out[0] = PROT_READ | PROT_WRITE | (PROT_EXEC if acc == ACC_FETCH else 0)
        return pmp_final(pmp, vaddr, acc, priv, perms_out)
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
        if pmp != NULL and not pmp_allows(pmp, pte_addr, 8, ACC_READ, PRIV_S):
            return ACCESS_FAULT[acc]
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
            if written != NULL:
                written[off >> 12] = 1
    # step 8
    paddr_out[0] = (ppn << 12) | (vaddr & ((<uint64_t>1 << (12 + 9 * i)) - 1))
    perms = 0
    if (pte & PTE_R) or (mxr and (pte & PTE_X)):
        perms = PROT_READ
    if (pte & PTE_W) and (pte & PTE_D):
        perms |= PROT_WRITE
    if (pte & PTE_X) and not (priv == PRIV_S and (pte & PTE_U)) and acc == ACC_FETCH:
        perms |= PROT_EXEC           # X in fetch entries only (walk.py _entry_perms)
    perms_out[0] = perms
    return pmp_final(pmp, paddr_out[0], acc, priv, perms_out)


cdef int _access_code(access) except -1:
    if access == "read":
        return ACC_READ
    if access == "write":
        return ACC_WRITE
    if access == "fetch":
        return ACC_FETCH
    raise ValueError(f"access must be read, write or fetch, not {access!r}")


def translate(ram, ram_base, satp, vaddr, access, priv, sum=False, mxr=False,
              update_ad=False, pmp=None):
    """Same contract as emu.mmu.walk.translate: return the physical address
    of `vaddr`, or raise PageFault (cause 12/13/15, 1/5/7 for a PTE outside
    RAM or PMP), UnsupportedMode, or ValueError for bad access/priv. `ram`
    must be writable when update_ad is true; otherwise it is never written.
    `pmp`: None or a list of emu.mmu.pmp.Rule."""
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
    cdef pmp_rules rules
    if pmp is not None:
        _rules_from_list(pmp, &rules)
    PyObject_GetBuffer(ram, &view, PyBUF_WRITABLE if update_ad else PyBUF_SIMPLE)
    try:
        rc = sv39_walk(<unsigned char *>view.buf, c_base, <uint64_t>view.len, c_satp,
                       c_vaddr, acc, c_priv, 1 if sum else 0, 1 if mxr else 0, bool(update_ad),
                       &paddr, &perms, &rules if pmp is not None else NULL, NULL)
    finally:
        PyBuffer_Release(&view)
    if rc == 0:
        return paddr
    if rc == ERR_MODE:
        raise UnsupportedMode(f"satp.MODE={c_satp >> 60} is not Bare (0) or Sv39 (8)")
    raise PageFault(rc, c_vaddr)


def fill(ram, ram_base, satp, vaddr, access, priv, sum=False, mxr=False, pmp=None):
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
    cdef pmp_rules rules
    if pmp is not None:
        _rules_from_list(pmp, &rules)
    PyObject_GetBuffer(ram, &view, PyBUF_WRITABLE)
    try:
        rc = sv39_walk(<unsigned char *>view.buf, c_base, <uint64_t>view.len, c_satp,
                       c_vaddr, acc, c_priv, 1 if sum else 0, 1 if mxr else 0, True,
                       &paddr, &perms, &rules if pmp is not None else NULL, NULL)
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
    uint64_t code_epoch  # the budget's code epoch, never reset (_note_code_page)
    uint64_t code_map_v[CODE_MAP]  # per slot: the virtual page last filled for fetch ...
    uint64_t code_map_p[CODE_MAP]  # ... and the physical page it mapped to
    const unsigned char *pmp_state   # unicorn's pmp_state (watch_pmp), or NULL
    unsigned char **code_copy # per RAM page: its bytes at the last fetch fill (NULL: none yet)
    unsigned char pmp_raw[256]   # the PMP entries last decoded into pmp_cache
    pmp_rules pmp_cache
    uint64_t stale[STALE_MAX] # physical pages whose code changed since (take_stale)
    int n_stale
    uint64_t code_changes     # such pages found, never reset
    # Which code pages can have changed (watch_writes; all NULL: assume any)
    unsigned char *written    # per RAM page: PhysMem.written (host and A/D writes)
    const uint64_t *flushes   # unicorn's full_flush_count, part_flush_count
    uint64_t *w_flush         # per RAM page: their sum when a fill last granted W
    unsigned char *w_live     # per RAM page: a W entry may have lived since the check
    uint64_t checks           # code-page checks, and those that needed no compare
    uint64_t checks_skipped
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


cdef bint _check_code_page(uc_engine *uc, HookState *st, uint64_t page) noexcept nogil:
    """A fetch fill of physical `page`: if its bytes changed since the last
    one (compared with the copy kept then), unicorn may hold translations of
    the old code (emu/mmu/tlb.py): remember the page for take_stale and stop
    before any of it runs. True if the page changed, or lies outside RAM
    (where no copy is kept). With watch_writes, a page that cannot have
    changed since its last check is not compared (emu/mmu/tlb.py)."""
    cdef uint64_t idx, flushes
    cdef const unsigned char *now
    cdef unsigned char *seen
    if st.code_copy == NULL or page < st.base or page - st.base + 4096 > st.size:
        return True
    idx = (page - st.base) >> 12
    now = st.ram + (page - st.base)
    seen = st.code_copy[idx]
    st.checks += 1
    if st.w_live != NULL:
        # Only a store through an entry granting W, or a host/A-D write,
        # can change the page (emu/mmu/tlb.py, "Code that changed").
        if seen != NULL and not st.w_live[idx] and not st.written[idx]:
            st.checks_skipped += 1
            return False
        st.written[idx] = 0
        flushes = st.flushes[0] + st.flushes[1]
        if flushes != st.w_flush[idx]:     # emptied since the last W grant
            st.w_live[idx] = 0
    if seen == NULL:
        seen = st.code_copy[idx] = <unsigned char *>malloc(4096)
        if seen == NULL:
            return True
        memcpy(seen, now, 4096)
        return False
    if memcmp(seen, now, 4096) != 0:
        memcpy(seen, now, 4096)
        st.code_changes += 1
        if st.n_stale < STALE_MAX:
            st.stale[st.n_stale] = page
            st.n_stale += 1
        uc_emu_stop(uc)
        return True
    return False


cdef inline void _note_code_page(uc_engine *uc, HookState *st, uint64_t vpage,
                                 uint64_t ppage) noexcept nogil:
    """A successful fetch fill of virtual `vpage` to physical `ppage`: the
    code epoch moves on when the bytes behind `vpage` may differ from when the
    budget last counted a block there - the page maps elsewhere than at the
    previous fetch fill recorded for its slot (or that record was evicted),
    or its bytes changed (emu/mmu/tlb.py, "The code epoch"). A slot never
    used needs no new epoch: no block can have been counted in a page that
    was never filled for fetch."""
    # Fibonacci hashing of the page number: user and kernel pages that share
    # their low bits (0x10000 and 0xffffffff80010000) land in different slots
    cdef uint64_t slot = ((vpage >> 12) * <uint64_t>0x9E3779B97F4A7C15) >> (64 - CODE_MAP_BITS)
    cdef bint changed = _check_code_page(uc, st, ppage)
    cdef uint64_t was = st.code_map_v[slot]
    if changed or was != vpage or st.code_map_p[slot] != ppage:
        st.code_map_v[slot] = vpage
        st.code_map_p[slot] = ppage
        if changed or was != CODE_MAP_EMPTY:
            st.code_epoch += 1


cdef bint _on_tlb_fill(uc_engine *uc, uint64_t vaddr, uc_mem_type type,
                       uc_tlb_entry *result, void *user_data) noexcept nogil:
    """UC_HOOK_TLB_FILL callback (unicorn passes the page-aligned vaddr).

    Returns true with result->paddr/perms set, or false after recording the
    fault: unicorn then stops emu_start with UC_ERR_EXCEPTION, PC on the
    faulting instruction, and the machine delivers the trap.
    """
    cdef HookState *st = <HookState *>user_data
    cdef uint64_t priv = 0, satp = 0, sstatus = 0, mstatus = 0
    cdef uint64_t paddr = 0
    cdef uint32_t perms = 0
    cdef int acc = <int>type - <int>UC_MEM_READ
    cdef int rc
    cdef bint no_x = False
    cdef const pmp_rules *pmp = NULL
    if acc < ACC_READ or acc > ACC_FETCH:
        acc = ACC_READ
    if st.pmp_state != NULL:
        # decoded again only when the registers changed (a 256-byte compare)
        if memcmp(st.pmp_raw, st.pmp_state, 256) != 0:
            memcpy(st.pmp_raw, st.pmp_state, 256)
            pmp_decode(st.pmp_raw, &st.pmp_cache)
        pmp = &st.pmp_cache
    uc_reg_read(uc, UC_RISCV_REG_PRIV, &priv)
    priv &= 3  # bit 2 is the virtualisation flag (no H extension here)
    if priv == PRIV_M and acc != ACC_FETCH:
        # MPRV: M-mode loads/stores at MPP's privilege, SUM/MXR from
        # mstatus; the entry then must not serve fetches.
        uc_reg_read(uc, UC_RISCV_REG_MSTATUS, &mstatus)
        if mstatus & MSTATUS_MPRV:
            priv = (mstatus >> 11) & 3
            no_x = priv != PRIV_M
    if priv == PRIV_M:
        rc = 0
        paddr = vaddr
        perms = PROT_READ | PROT_WRITE | (PROT_EXEC if acc == ACC_FETCH else 0)
        rc = pmp_final(pmp, paddr, acc, PRIV_M, &perms)
    elif no_x:
        uc_reg_read(uc, UC_RISCV_REG_SATP, &satp)
        rc = sv39_walk(st.ram, st.base, st.size, satp, vaddr, acc, <int>priv,
                       (mstatus & SSTATUS_SUM) != 0, (mstatus & SSTATUS_MXR) != 0,
                       True, &paddr, &perms, pmp, st.written)
        perms &= ~(<uint32_t>PROT_EXEC)
        if rc == ERR_MODE:
            rc = PAGE_FAULT[acc]
    else:
        # sstatus (SUM/MXR) is read only when the leaf needs it (an S-mode
        # load/store to a U page, or an X-only leaf): one CSR read saved on
        # most fills. SUM does not matter in U-mode.
        _read_csr(uc, UC_RISCV_REG_SATP, &satp, priv)
        rc = sv39_walk(st.ram, st.base, st.size, satp, vaddr, acc, <int>priv,
                       0 if priv == PRIV_U else -1, -1, True, &paddr, &perms, pmp,
                       st.written)
        if rc == NEED_SSTATUS:
            _read_csr(uc, UC_RISCV_REG_SSTATUS, &sstatus, priv)
            rc = sv39_walk(st.ram, st.base, st.size, satp, vaddr, acc, <int>priv,
                           (sstatus & SSTATUS_SUM) != 0, (sstatus & SSTATUS_MXR) != 0,
                           True, &paddr, &perms, pmp, st.written)
        if rc == ERR_MODE:  # unsupported satp.MODE: refuse, visibly
            rc = PAGE_FAULT[acc]
    if rc == 0:
        st.ring[st.fills & (RING - 1)] = vaddr
        st.fills += 1
        if (perms & PROT_WRITE) and st.w_live != NULL and paddr >= st.base \
                and paddr - st.base < st.size:
            st.w_live[(paddr - st.base) >> 12] = 1
            st.w_flush[(paddr - st.base) >> 12] = st.flushes[0] + st.flushes[1]
        if acc == ACC_FETCH:
            _note_code_page(uc, st, vaddr, paddr & ~(<uint64_t>0xFFF))
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
    cdef uint64_t n_pages
    cdef Py_buffer written_view
    cdef bint have_written

    def __cinit__(self, uc, ram, ram_base, ram_size):
        cdef int k
        self.have_view = False
        self.have_written = False
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
        self.st.code_epoch = 0
        for k in range(CODE_MAP):
            self.st.code_map_v[k] = CODE_MAP_EMPTY
            self.st.code_map_p[k] = 0
        self.st.pmp_state = NULL
        self.st.n_stale = 0
        self.st.code_changes = 0
        self.st.written = NULL
        self.st.flushes = NULL
        self.st.w_flush = NULL
        self.st.w_live = NULL
        self.st.checks = 0
        self.st.checks_skipped = 0
        self.n_pages = (ram_size >> 12) + 1
        self.st.code_copy = <unsigned char **>calloc(<size_t>self.n_pages, sizeof(void *))
        if self.st.code_copy == NULL:
            raise MemoryError("code page copies")
        self.reset_counters()

    def __dealloc__(self):
        # Never call uc_hook_del here: this object dies only together with
        # its Uc (which holds it while installed), whose engine may already
        # be closed.
        cdef uint64_t k
        if self.have_view:
            PyBuffer_Release(&self.view)
            self.have_view = False
        if self.have_written:
            PyBuffer_Release(&self.written_view)
            self.have_written = False
        free(self.st.w_flush)
        free(self.st.w_live)
        if self.st.code_copy != NULL:
            for k in range(self.n_pages):
                free(self.st.code_copy[k])
            free(self.st.code_copy)
            self.st.code_copy = NULL

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

    def watch_pmp(self, size_t address):
        """Enforce PMP from here on, reading the registers where unicorn
        keeps them (`address` from emu.core.hartstate.pmp_address)."""
        self.st.pmp_state = <const unsigned char *>address
        memcpy(self.st.pmp_raw, self.st.pmp_state, 256)
        pmp_decode(self.st.pmp_raw, &self.st.pmp_cache)

    def watch_writes(self, written, size_t flushes):
        """Compare a code page at a fetch fill only when it can have changed
        since its last check: `written` is the RAM's PhysMem.written (one
        byte per page, set by host writes; A/D updates set it here) and
        `flushes` the address of unicorn's flush counters
        (emu.core.hartstate.flush_count_address). Without this call every
        check compares (module docstring of emu/mmu/tlb.py)."""
        cdef uint64_t k, now
        cdef uint64_t *w_flush
        cdef unsigned char *w_live
        if self.have_written:
            raise RuntimeError("watch_writes was already called")
        PyObject_GetBuffer(written, &self.written_view, PyBUF_WRITABLE)
        self.have_written = True
        if <uint64_t>self.written_view.len < (<uint64_t>self.st.size + 0xFFF) >> 12:
            raise ValueError("`written` needs one byte per RAM page")
        w_flush = <uint64_t *>malloc(<size_t>self.n_pages * sizeof(uint64_t))
        w_live = <unsigned char *>malloc(<size_t>self.n_pages)
        if w_flush == NULL or w_live == NULL:
            free(w_flush)
            free(w_live)
            raise MemoryError("write-watch tables")
        now = (<const uint64_t *>flushes)[0] + (<const uint64_t *>flushes)[1]
        for k in range(self.n_pages):
            # entries filled before this call are unknown: as if just granted W
            w_flush[k] = now
            w_live[k] = 1
        self.st.flushes = <const uint64_t *>flushes
        self.st.written = <unsigned char *>self.written_view.buf
        self.st.w_flush = w_flush
        self.st.w_live = w_live

    @property
    def code_checks(self):
        """(checks, skipped): code-page checks at fetch fills since the hook
        was made, and those that needed no compare (watch_writes)."""
        return (self.st.checks, self.st.checks_skipped)

    def take_stale(self):
        """Physical pages whose code changed since their previous fetch fill
        (and since the last call): unicorn's translations of them are stale.
        A fill that finds one stops the engine before the block runs."""
        pages = [self.st.stale[k] for k in range(self.st.n_stale)]
        self.st.n_stale = 0
        return pages

    @property
    def code_changes(self):
        """Code pages found changed, since the hook was made."""
        return self.st.code_changes

    @property
    def code_epoch_address(self):
        """Address of the code epoch: a uint64 that grows whenever a fetch
        fill may bring other bytes behind a virtual page than the budget
        counted (a new mapping, changed code), never reset
        (emu/machine/budget.py's `watch_code`)."""
        return <size_t>&self.st.code_epoch

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
