"""Physical memory protection, the reference (privileged spec v1.12, 3.7.1).

Sixteen entries, each a pmpcfg byte and a pmpaddr register:

    pmpcfg:  7 L | 6:5 0 | 4:3 A | 2 X | 1 W | 0 R
    A:       0 OFF, 1 TOR [pmpaddr(i-1) << 2, pmpaddr(i) << 2)  (i = 0: from 0)
             2 NA4 [pmpaddr << 2, +4)
             3 NAPOT: pmpaddr = base >> 2 with k trailing ones -> 2^(k+3) bytes

The lowest-numbered entry that matches any byte of an access decides it: the
access must lie wholly inside (a partial match fails) and is allowed if the
entry's R/W/X allow it - for M-mode only when the entry is locked (L; an
unlocked entry does not restrict M). No entry matching: M succeeds, S and U
fail (QEMU 7.2: also when no entry is active, which is why xv6 and OpenSBI
open all of memory to S before they leave M). Locking (L set, or the next
entry a locked TOR) makes an entry's registers read-only until reset; that
is enforced by the CPU (unicorn), whose registers this module only reads.
Which entries bind M is QEMU's reading (pmp_is_locked, 5.0 to 7.2): an
entry's own L, or the next entry being a locked TOR - the spec names only
the entry's own L; QEMU is the reference and tests/test_pmp.py holds us to
its built-in check.

Ranges are computed as QEMU does (target/riscv/pmp.c, 64-bit arithmetic; an
all-ones NAPOT pmpaddr covers everything). The checks:
- `allows`: one access (address, size) exactly as the spec says; the walker
  uses it for the page table's own PTE reads (as S, reads of 8 bytes);
- `page_perms`: what may be cached for a whole 4 KiB page, because unicorn's
  soft TLB (UC_TLB_VIRTUAL) caches pages and has no QEMU 7.2 "do not cache"
  size: the permissions every byte of the page has. A page that entries
  split gets the intersection - never more than QEMU allows, less for the
  bytes of a split page that a more permissive entry covers (documented in
  docs/mmu.md).

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emu.core.hartstate import napot_range

PMP_R, PMP_W, PMP_X = 1, 2, 4     # the same bits as UC_PROT_READ/WRITE/EXEC
PMP_L = 0x80
A_OFF, A_TOR, A_NA4, A_NAPOT = 0, 1, 2, 3
PRIV_M = 3
PAGE = 4096
MASK64 = (1 << 64) - 1
ACCESS_BIT = (PMP_R, PMP_W, PMP_X)   # by access code: read, write, fetch


@dataclass(frozen=True)
class Rule:
    """One active entry: bytes [lo, hi] (inclusive, as QEMU keeps them; an
    empty TOR range has hi < lo), its R/W/X bits and whether it binds M
    (locked, as QEMU's pmp_is_locked says)."""

    index: int
    lo: int
    hi: int
    perms: int
    locked: bool

    def covers(self, addr: int) -> bool:
        return self.lo <= addr <= self.hi


def rules(cfgs: Sequence[int], addrs: Sequence[int]) -> list[Rule]:
    """The active entries (A != OFF), lowest index first."""
    out = []
    for i, cfg in enumerate(cfgs):
        a = (cfg >> 3) & 3
        if a == A_OFF:
            continue
        addr = addrs[i] & MASK64
        if a == A_TOR:
            lo = ((addrs[i - 1] if i else 0) << 2) & MASK64
            hi = ((addr << 2) - 1) & MASK64 if addr else -1
        elif a == A_NA4:
            lo = (addr << 2) & MASK64
            hi = lo + 3
        else:
            lo, hi = napot_range(addr)
        nxt = cfgs[i + 1] if i + 1 < len(cfgs) else 0
        locked = bool(cfg & PMP_L) or (bool(nxt & PMP_L) and (nxt >> 3) & 3 == A_TOR)
        out.append(Rule(i, lo, hi, cfg & 7, locked))
    return out


def allows(active: Sequence[Rule], addr: int, size: int, acc: int, priv: int) -> bool:
    """May an access of `size` bytes at physical `addr` (acc 0 read, 1 write,
    2 fetch) at privilege `priv` proceed? Spec 3.7.1 as above."""
    last = addr + size - 1
    for r in active:
        first_in, last_in = r.covers(addr), r.covers(last)
        if not first_in and not last_in:
            continue
        if first_in != last_in:
            return False                       # partially inside: fails
        if priv == PRIV_M and not r.locked:
            return True
        return bool(r.perms & ACCESS_BIT[acc])
    return priv == PRIV_M


def page_perms(active: Sequence[Rule], page: int, priv: int) -> int:
    """R/W/X (PMP_* = UC_PROT_* bits) that every byte of the 4 KiB page at
    `page` has at `priv`: the intersection over the page's pieces."""
    todo = [(page, page + PAGE - 1)]
    perms = PMP_R | PMP_W | PMP_X
    for r in active:
        if not todo or not perms:
            break
        rest = []
        for lo, hi in todo:
            if r.hi < lo or r.lo > hi or r.hi < r.lo:
                rest.append((lo, hi))
                continue
            if not (priv == PRIV_M and not r.locked):
                perms &= r.perms
            if lo < r.lo:
                rest.append((lo, r.lo - 1))
            if r.hi < hi:
                rest.append((r.hi + 1, hi))
        todo = rest
    if todo and priv != PRIV_M:
        perms = 0
    return perms
