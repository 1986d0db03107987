"""What unicorn's (QEMU's) soft TLB holds, asked page by page, without
changing what it holds.

unicorn 2.1.4 has no call that lists its TLB, but `uc_vmem_translate` is a
lookup in it: QEMU's `tlb_vaddr_to_paddr` checks the page's entry in the
table of the current mmu_idx (for RISC-V, the privilege), then the victim
entries, and only on a miss calls the fill callback in probe mode. While
probing, our fill hook is replaced by one that refuses every fill, so a
probe that answers was answered from the TLB - with the physical page QEMU
cached - and one that fails was not cached; nothing is filled and no A/D
bit is written. Read, write and fetch are probed separately: each entry
caches the three permissions apart.

Side effects, none visible to the guest: a victim-TLB hit is swapped into
the main table (as any access would do), and probing the privilege the hart
is not in switches PRIV around the probe, which clears QEMU's LR
reservation - the debugger's CSR reads do the same at every stop. A
translation to a physical address where nothing is mapped is never found
(QEMU's lookup refills those every time); RAM and device pages are.

Layer: mmu (imports only emu.core).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from dataclasses import dataclass

from unicorn import UC_HOOK_TLB_FILL
from unicorn.riscv_const import UC_RISCV_REG_PRIV
from unicorn.unicorn_const import UC_ERR_OK, UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE

from emu.core.libunicorn import uclib
from emu.mmu.tlb import _FILL_CB

_TRANSLATE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                              ctypes.POINTER(ctypes.c_uint64))
_PROBES = ((UC_PROT_READ, "r"), (UC_PROT_WRITE, "w"), (UC_PROT_EXEC, "x"))


@dataclass(frozen=True)
class Cached:
    """One cached page: privilege (mmu_idx), virtual and physical page and
    the permissions cached ("rwx" letters or "-")."""

    priv: int
    va: int
    pa: int
    perms: str


def _refuse(_uch, _vaddr, _access, _entry, _user) -> bool:
    return False


def probe(uc, pages: Iterable[int], privs: Iterable[int]) -> list[Cached]:
    """Return the entries the soft TLB holds for each page-aligned virtual
    address in `pages`, for each privilege in `privs` (0 U, 1 S), in that
    order. The installed fill hooks are set aside for the duration and
    reinstalled, PRIV is restored. Raises RuntimeError if unicorn refuses
    the temporary hook."""
    lib = uclib()
    handle = uc._uch.value
    translate = _TRANSLATE(("uc_vmem_translate", lib))
    hooks = list(uc.__dict__.get("_emu_fill_hooks", []))
    pages = sorted(set(pages))
    cb = _FILL_CB(_refuse)
    hh = ctypes.c_size_t()
    for h in hooks:
        h.uninstall()
    err = lib.uc_hook_add(uc._uch, ctypes.byref(hh), UC_HOOK_TLB_FILL,
                          ctypes.cast(cb, ctypes.c_void_p), None, ctypes.c_uint64(1),
                          ctypes.c_uint64(0))
    now = uc.reg_read(UC_RISCV_REG_PRIV)
    out: list[Cached] = []
    pa = ctypes.c_uint64()
    try:
        if err != UC_ERR_OK:
            raise RuntimeError(f"uc_hook_add(TLB_FILL) failed with error {err}")
        for priv in privs:
            if priv != uc.reg_read(UC_RISCV_REG_PRIV):
                uc.reg_write(UC_RISCV_REG_PRIV, priv)
            for va in pages:
                perms, phys = "", None
                for prot, letter in _PROBES:
                    if translate(handle, va, prot, ctypes.byref(pa)) == UC_ERR_OK:
                        perms += letter
                        phys = pa.value & ~0xFFF
                    else:
                        perms += "-"
                if phys is not None:
                    out.append(Cached(priv, va, phys, perms))
    finally:
        if uc.reg_read(UC_RISCV_REG_PRIV) != now:
            uc.reg_write(UC_RISCV_REG_PRIV, now)
        if err == UC_ERR_OK:
            lib.uc_hook_del(uc._uch, hh)
        for h in hooks:
            h.install()
    return out
