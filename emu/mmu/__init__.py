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
  or the Cython `emu._fast.sv39.FillHook`.

The spec reading, A/D policy, flush story and deviations from unicorn's
built-in walker are in docs/mmu.md.
"""

from __future__ import annotations

from types import ModuleType

from emu import fastpath
from emu.mmu import walk as _walk
from emu.mmu.tlb import PyFillHook
from emu.mmu.walk import PageFault, UnsupportedMode, WalkTrace, fill, walk_trace

__all__ = [
    "FastUnavailable",
    "PageFault",
    "PyFillHook",
    "UnsupportedMode",
    "WalkTrace",
    "fast_available",
    "fast_module",
    "fill",
    "fill_hook_class",
    "translate",
    "walk_trace",
]


class FastUnavailable(ImportError):
    """The Cython twin emu._fast.sv39 is not built (or EMU_PURE=1)."""


_fast: ModuleType | None = None
_fast_error: str | None = None


def fast_module() -> ModuleType:
    """Return the compiled twin emu._fast.sv39.

    Raises FastUnavailable with a one-line explanation when it is not built
    or when EMU_PURE forces the pure-Python path (emu.fastpath.pure_forced).
    """
    global _fast, _fast_error
    if fastpath.pure_forced():
        raise FastUnavailable("the Cython MMU twin is disabled by EMU_PURE=1")
    if _fast is not None:
        return _fast
    if _fast_error is None:
        try:
            from emu._fast import sv39
        except ImportError as exc:
            _fast_error = (f"the Cython MMU twin emu._fast.sv39 is not built ({exc}); "
                           "run `python setup.py build_ext --inplace`")
        else:
            _fast = sv39
            return sv39
    raise FastUnavailable(_fast_error)


def fast_available() -> bool:
    """True if impl="fast" can be used."""
    try:
        fast_module()
    except FastUnavailable:
        return False
    return True


def translate(ram, ram_base: int, satp: int, vaddr: int, access: str, priv: int,
              sum: bool = False, mxr: bool = False, update_ad: bool = False,
              impl: str = "python") -> int:
    """Translate `vaddr`; see emu.mmu.walk.translate for the contract.

    `impl` is "python" (reference walker) or "fast" (Cython twin). Returns
    the physical address. Raises PageFault, UnsupportedMode, ValueError for
    bad arguments, FastUnavailable if impl="fast" and the twin is missing.
    """
    if impl == "python":
        return _walk.translate(ram, ram_base, satp, vaddr, access, priv, sum, mxr, update_ad)
    if impl == "fast":
        return fast_module().translate(ram, ram_base, satp, vaddr, access, priv, sum, mxr,
                                       update_ad)
    raise ValueError(f"impl must be 'python' or 'fast', not {impl!r}")


def fill_hook_class(impl: str = "fast") -> type:
    """Return the FillHook class for `impl`: "fast" -> emu._fast.sv39.FillHook,
    "python" -> PyFillHook. Both take (uc, ram_buffer, ram_base, ram_size).
    Raises FastUnavailable / ValueError."""
    if impl == "python":
        return PyFillHook
    if impl == "fast":
        return fast_module().FillHook
    raise ValueError(f"impl must be 'python' or 'fast', not {impl!r}")
