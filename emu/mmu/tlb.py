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
writes that change SUM/MXR; on a PMP change the block budget flushes
(emu/machine/budget.py). See docs/mmu.md.

Code that changed under unicorn's feet. unicorn 2.1.4 stops watching a
page for stores once a TLB entry has stored to it (its tlb_protect_code is
a stub), so code later translated from the page is not dropped when the
page is rewritten - xv6's sh ran ls's old syscall stubs from a recycled
page. QEMU would drop it. Every fetch fill therefore compares the physical
page with a copy taken at its previous fetch fill: a change means
unicorn's translations of that page may be stale, and the hook stops the
engine before the block runs and hands the page to the machine
(`take_stale`), which drops them. Only a store through a *data* entry can
get past unicorn's check: executable entries stay on its checked path, and
the hooks grant X only in entries filled for a fetch (walk.py
`_entry_perms`), which keeps data stores fast. New code reaches the hart only through a
fetch fill - a new mapping, sfence.vma, or fence.i, after which the block
budget flushes the TLB (emu/machine/budget.py) - so this is as exact as
QEMU for every guest that follows the ISA (fence.i after changing code it
already ran); it costs a copy of each code page instead of a slow path on
every store, and a 4 KiB compare at a fetch fill only where the page can
have changed since its last check (`watch_writes`): a page changes only by
a store through an entry granting W, by a host write (PhysMem.write marks
it in PhysMem.written) or by the walker's A/D update (marked there too).
So the hook notes, per RAM page, unicorn's flush count when a fill last
granted W to it (emu/core/hartstate.py finds the counters), and a check
compares only if the page was marked written, or an entry granting W may
have lived after its last check: granted since, or granted before with no
flush between the grant and that check (the run's `code_pages` figures
say how many checks compared).

The code epoch. The block budget caches each block's instruction count by
its virtual address (emu/machine/budget.py) and needs to hear when the bytes
behind a virtual code page may have changed. They can only reach the hart
through a fetch fill, and a fill changes them only if it maps the page to
another physical page than before, or the page's bytes changed (the check
above): so the hook remembers, in a direct-mapped table of CODE_MAP slots,
the physical page each virtual page was last filled to, and moves the epoch
on only for a changed mapping, an evicted record or changed bytes (a page
never filled for fetch can hold no counted block). Refills of the same
mapping - after every sfence.vma and satp write, most of Linux's fetch
fills - keep the counts: a Linux boot with memhog makes 885 k fetch fills,
which each emptied the count cache, and 368 epochs.

M-mode: loads and stores with mstatus.MPRV set are translated and checked
at mstatus.MPP's privilege (privileged spec 3.1.6.3), and the entry then
never grants execute (fetches are not affected by MPRV). PMP (emu/mmu/pmp.py)
applies once `watch_pmp` has been given where unicorn keeps the registers
(emu/core/hartstate.py): PTE reads and the final page are checked, the
entry's permissions cut down to what PMP grants the page.

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

import ctypes

from unicorn import UC_HOOK_TLB_FILL
from unicorn.riscv_const import (
    UC_RISCV_REG_MSTATUS,
    UC_RISCV_REG_PRIV,
    UC_RISCV_REG_SATP,
    UC_RISCV_REG_SSTATUS,
)
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_ERR_OK

from emu.core.hartstate import RANGES_OFFSET, read_pmp
from emu.core.libunicorn import uclib
from emu.mmu import pmp as _pmp
from emu.mmu.walk import u64_view

__all__ = ["RING", "PyFillHook", "fill_page", "flush_tlb"]

RING = 4096   # recent fills a hook keeps (recent_fills); fast/sv39.pyx keeps as many
CODE_MAP_BITS = 14   # fetch mappings remembered for the code epoch: 2 ** 14, as fast/sv39.pyx
CODE_MAP = 1 << CODE_MAP_BITS
CODE_MAP_EMPTY = 1   # a slot's virtual page before its first fill (not page-aligned)
MASK64 = (1 << 64) - 1


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
_REG_READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
MSTATUS_MPRV = 1 << 17


def flush_tlb(uc) -> None:
    """Flush unicorn's whole soft TLB (what sfence.vma does), ~1-2 us."""
    uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)


_PF = (-13, -15, -12)  # negated page-fault causes by access (read, write, fetch)
_AF = (-5, -7, -1)  # negated access-fault causes


def fill_page(q: memoryview, base: int, satp: int, sstatus: int, vaddr: int, acc: int,
              priv: int, pmp: list | None = None, written: bytearray | None = None) -> int:
    """Sv39 walk for a TLB fill, tuned for the pure-Python hook.

    Same algorithm and results as emu.mmu.walk.fill (privileged spec 4.3.2;
    the step numbers are the spec's). Constants are literals because global
    lookups dominate the cost in CPython. `q` is the u64 view of RAM at
    physical `base`, `acc` 0/1/2 = read/write/fetch, `priv` 0/1/3, `sstatus`
    the raw CSR (SUM bit 18, MXR bit 19). Sets A (and D on a write) in RAM.

    Returns (physical page address | UC_PROT_* perms) on success - the page
    address is 4 KiB aligned so the perms fit the low 3 bits - or the
    negated exception cause (-12/-13/-15 page fault, -1/-5/-7 access fault).
    An unsupported satp.MODE is refused with the page-fault cause. `pmp`:
    the active PMP rules (emu.mmu.pmp), None for none; PTE reads and the
    page are checked, a denial is the access-fault cause. `written`: None,
    or one byte per RAM page, set for the PTE's page when A/D are written.
    """
    mode = satp >> 60
    if priv == 3 or not mode:  # M-mode, or Bare: identity, RWX (X for a fetch only)
        if pmp is None:
            return (vaddr & ~0xFFF) | (7 if acc == 2 else 3)
        perms = _pmp.page_perms(pmp, vaddr & ~0xFFF, priv) & (7 if acc == 2 else 3)
        return (vaddr & ~0xFFF) | perms if perms >> acc & 1 else _AF[acc]
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
        if pmp is not None and not _pmp.allows(pmp, base + idx * 8, 8, 0, 1):
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
        if written is not None:
            written[idx >> 9] = 1
    # step 8 at page granularity (a superpage takes the low VPNs from vaddr),
    # and the perms: R (or X with MXR), W only once D is set, X unless a U
    # page seen from S.
    perms = 1 if pte & 2 or (mxr and pte & 8) else 0
    if pte & 0x84 == 0x84:
        perms |= 2
    if pte & 8 and not (priv and pte & 16) and acc == 2:   # X in fetch entries only
        perms |= 4
    page = (ppn << 12 | (vaddr & ((1 << shift) - 1))) & ~0xFFF
    if pmp is not None:
        allowed = _pmp.page_perms(pmp, page, priv)
        if not allowed & (1, 2, 4)[acc]:
            return _AF[acc]
        perms &= allowed
    return page | perms


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
        self._bytes = self._q.cast("B")
        self._lib = uclib()
        self._hh: ctypes.c_size_t | None = None
        self.error: BaseException | None = None
        self._cnt = [0, 0, 0, 0]  # fills, faults, last cause, last vaddr
        self._by_cause: dict[int, int] = {}
        self._ring = [0] * RING  # page vaddr of fill n at _ring[n % RING]
        self._code_epoch = ctypes.c_uint64(0)  # the budget's code epoch, never reset
        # per slot: (virtual page, physical page) of the last fetch fill there
        self._code_map = [(CODE_MAP_EMPTY, 0)] * CODE_MAP
        # PMP: [address of unicorn's pmp_state or 0, its raw entries, the
        # decoded rules] (watch_pmp); the callback reads them live.
        self._pmp: list = [0, b"", None]
        self._code_copy: dict[int, bytes] = {}   # RAM page -> its bytes at its last fetch fill
        self._stale: list[int] = []              # changed code pages (take_stale)
        self.code_changes = 0
        # watch_writes: [PhysMem.written, unicorn's two flush counts, per RAM
        # page the counts' sum at its last W grant, per page "a W entry may
        # have lived since its last check"]; None: every check compares.
        self._watch: list = [None, None, None, None]
        self._checks = [0, 0]                    # code-page checks, skipped compares
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

    def watch_pmp(self, address: int) -> None:
        """Enforce PMP from here on, reading the registers where unicorn
        keeps them (`address` from emu.core.hartstate.pmp_address)."""
        self._pmp[:] = [address, b"", None]

    def watch_writes(self, written: bytearray, flushes: int) -> None:
        """Compare a code page at a fetch fill only when it can have changed
        since its last check: `written` is the RAM's PhysMem.written (set by
        host writes; A/D updates set it here) and `flushes` the address of
        unicorn's flush counters (emu.core.hartstate.flush_count_address).
        Without this call every check compares (module docstring)."""
        if self._watch[0] is not None:
            raise RuntimeError("watch_writes was already called")
        n_pages = len(self._bytes) // 4096 + 1
        if len(written) < (len(self._bytes) + 0xFFF) >> 12:
            raise ValueError("`written` needs one byte per RAM page")
        counts = (ctypes.c_uint64 * 2).from_address(flushes)
        # entries filled before this call are unknown: as if just granted W
        self._watch[:] = [written, counts, [counts[0] + counts[1]] * n_pages,
                          bytearray(b"\1" * n_pages)]

    @property
    def code_checks(self) -> tuple[int, int]:
        """(checks, skipped): code-page checks at fetch fills since the hook
        was made, and those that needed no compare (watch_writes)."""
        return self._checks[0], self._checks[1]

    def take_stale(self) -> list[int]:
        """Physical pages whose code changed since their previous fetch fill
        (and since the last call): unicorn's translations of them are stale.
        A fill that finds one stops the engine before the block runs."""
        pages, self._stale = self._stale, []
        return pages

    def _check_code_page(self, page: int) -> bool:
        """A fetch fill of physical `page` (see the module docstring). True
        if its bytes changed, or it lies outside RAM (no copy is kept)."""
        off = page - self.ram_base
        if not 0 <= off <= len(self._bytes) - 4096:
            return True
        self._checks[0] += 1
        written, counts, w_flush, w_live = self._watch
        if w_live is not None:
            # Only a store through an entry granting W, or a host/A-D write,
            # can change the page (module docstring, "Code that changed").
            idx = off >> 12
            if not w_live[idx] and not written[idx] and page in self._code_copy:
                self._checks[1] += 1
                return False
            written[idx] = 0
            if counts[0] + counts[1] != w_flush[idx]:   # emptied since the last W grant
                w_live[idx] = 0
        # bytes() first: memoryview == bytes compares item by item (3.8 us
        # for 4 KiB against 0.27 us for the copy and a memcmp)
        now = bytes(self._bytes[off:off + 4096])
        old = self._code_copy.get(page)
        if old == now:
            return False
        self._code_copy[page] = now
        if old is None:
            return False
        self.code_changes += 1
        self._stale.append(page)
        self.uc.emu_stop()
        return True

    def _note_code_page(self, vpage: int, ppage: int) -> None:
        """A successful fetch fill of virtual `vpage` to physical `ppage`
        (see "The code epoch" in the module docstring)."""
        # Fibonacci hashing of the page number: user and kernel pages that
        # share their low bits land in different slots
        slot = (((vpage >> 12) * 0x9E3779B97F4A7C15) & MASK64) >> (64 - CODE_MAP_BITS)
        changed = self._check_code_page(ppage)
        was = self._code_map[slot]
        if changed or was != (vpage, ppage):
            self._code_map[slot] = (vpage, ppage)
            # a slot never used: no block can have been counted in a page
            # never filled for fetch
            if changed or was[0] != CODE_MAP_EMPTY:
                self._code_epoch.value += 1

    @property
    def code_epoch_address(self) -> int:
        """Address of the code epoch: a uint64 that grows whenever a fetch
        fill may bring other bytes behind a virtual page than the budget
        counted (a new mapping, changed code), never reset
        (emu/machine/budget.py's `watch_code`)."""
        return ctypes.addressof(self._code_epoch)

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
        reg_read = _REG_READ(("uc_reg_read", lib))
        mstatus = ctypes.c_uint64()
        mstatus_p = ctypes.addressof(mstatus)
        pmp_state = self._pmp
        string_at, rules_of = ctypes.string_at, _pmp.rules
        note_code = self._note_code_page
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
        keep = (regs, vals, ptrs, prio, mstatus)  # buffers the raw pointers refer to
        entries: dict[int, _TlbEntry] = {}
        uc_obj = self.uc
        watch, ram_bytes = self._watch, len(self._bytes)

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
                status = vals[2]
                no_x = False
                if priv == 3 and acc != 2:
                    # MPRV: M-mode loads/stores at MPP's privilege (SUM/MXR
                    # are mstatus bits too); the entry must not serve fetches.
                    reg_read(handle, UC_RISCV_REG_MSTATUS, mstatus_p)
                    if mstatus.value & MSTATUS_MPRV:
                        priv = (mstatus.value >> 11) & 3
                        status = mstatus.value
                        no_x = priv != 3
                rules = None
                if pmp_state[0]:
                    raw = string_at(pmp_state[0], RANGES_OFFSET)
                    if raw != pmp_state[1]:
                        pmp_state[1:] = [raw, rules_of(*read_pmp(pmp_state[0]))]
                    rules = pmp_state[2]
                r = fill_page(q, base, vals[1], status, vaddr, acc, priv, rules, watch[0])
                if r >= 0 and no_x:
                    r &= ~4
                if r >= 0:
                    if r & 2 and watch[3] is not None and 0 <= r - base < ram_bytes:
                        counts = watch[1]
                        watch[3][(r - base) >> 12] = 1
                        watch[2][(r - base) >> 12] = counts[0] + counts[1]
                    if acc == 2:                 # a fetch: the budget's code epoch
                        note_code(vaddr, r & ~0xFFF)
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
