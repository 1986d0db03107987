"""The machine's MMU: an Sv39 page-table walker that is ours, not unicorn's.

Public API (used by the machine, the debugger and the tests):

- `translate(ram, ram_base, satp, vaddr, access, priv, sum=False, mxr=False,
  update_ad=False, impl="python")` -> physical address, or raises PageFault.
  impl="fast" runs the Cython twin (emu._fast.sv39) instead of the reference
  walker in emu/mmu/walk.py; both give identical results (differential tests).
- `walk_trace(...)` -> WalkTrace: every PTE read and why the walk stopped.
- `PageFault` (cause, vaddr), `UnsupportedMode`.
- TLB fill hooks bridging unicorn's UC_TLB_VIRTUAL mode to the walker:
  `PyFillHook` (emu/mmu/tlb.py) and `fill_hook_class(impl)` which returns it
  or the Cython `emu._fast.sv39.FillHook`, chosen through emu.core.twins.

Layer: mmu (imports only emu.core).

The spec reading, A/D policy, flush story and deviations from unicorn's
built-in walker are in docs/mmu.md.
"""

from __future__ import annotations

from emu.core import twins
from emu.mmu import walk as _walk
from emu.mmu.tlb import PyFillHook
from emu.mmu.walk import PageFault, UnsupportedMode, WalkTrace, fill, walk_trace

__all__ = [
    "PageFault",
    "PyFillHook",
    "UnsupportedMode",
    "WalkTrace",
    "fill",
    "fill_hook_class",
    "translate",
    "walk_trace",
]

TWIN = "sv39"   # the compiled twin's name for emu.core.twins (fast/sv39.pyx)


def translate(ram, ram_base: int, satp: int, vaddr: int, access: str, priv: int,
              sum: bool = False, mxr: bool = False, update_ad: bool = False,
              impl: str = "python") -> int:
    """Translate `vaddr`; see emu.mmu.walk.translate for the contract.

    `impl` is "python" (reference walker), "fast" (Cython twin) or "auto".
    Returns the physical address. Raises PageFault, UnsupportedMode,
    ValueError for bad arguments, TwinUnavailable if impl="fast" and the
    twin is missing.
    """
    mod = twins.pick(TWIN, impl) or _walk
    return mod.translate(ram, ram_base, satp, vaddr, access, priv, sum, mxr, update_ad)


def fill_hook_class(impl: str = "fast") -> type:
    """Return the FillHook class for `impl`: "fast" -> emu._fast.sv39.FillHook,
    "python" -> PyFillHook, "auto" -> the compiled one when built. Both take
    (uc, ram_buffer, ram_base, ram_size). Raises TwinUnavailable / ValueError."""
    mod = twins.pick(TWIN, impl)
    return PyFillHook if mod is None else mod.FillHook
