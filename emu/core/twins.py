"""Which twin runs: the compiled one from emu._fast or the pure-Python one.
The one chooser every twin goes through.

Each hot path has a readable reference in its own package and a Cython twin
in fast/NAME.pyx, built as emu._fast.NAME with the same names. A caller asks
for an implementation - "python", "fast" or "auto" - with `pick(name, impl)`:
"fast" insists (TwinUnavailable, one line, when it is not there), "auto"
takes the compiled twin when it is built, and "python" never looks.
`EMU_PURE=1` forces the pure path everywhere. A twin that "auto" wanted but
could not import (not built, or failed to load) degrades to the pure path
with one warning line on stderr. `describe()` says which are active (shown
by `emu --version`).

Layer: core (imports nothing from emu but the compiled twins).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

TWINS = ("budget", "sv39", "frames", "traps")
_warned = False


class TwinUnavailable(ImportError):
    """A compiled twin was insisted on and is not there (or EMU_PURE=1)."""


def pure_forced() -> bool:
    """Return True when EMU_PURE=1 asks for the pure-Python path."""
    return os.environ.get("EMU_PURE", "") not in ("", "0")


def compiled(name: str) -> ModuleType:
    """Return the compiled twin emu._fast.NAME.

    Raises TwinUnavailable with a one-line reason when EMU_PURE=1 or when the
    twin is not built."""
    if pure_forced():
        raise TwinUnavailable(f"the compiled {name} twin is disabled by EMU_PURE=1")
    try:
        return importlib.import_module(f"emu._fast.{name}")
    except ImportError as exc:
        raise TwinUnavailable(f"the compiled {name} twin emu._fast.{name} is not built "
                              f"({exc}); run `python setup.py build_ext --inplace`") from None


def available(name: str) -> bool:
    """True if pick(name, "fast") would succeed."""
    try:
        compiled(name)
    except TwinUnavailable:
        return False
    return True


def pick(name: str, impl: str = "auto") -> ModuleType | None:
    """Return the compiled twin module for `impl` "fast" or "auto", or None
    for the pure path ("python", EMU_PURE=1, or "auto" without the twin).

    Raises TwinUnavailable for "fast" without the twin, ValueError for an
    unknown `impl`."""
    global _warned
    if impl == "python":
        return None
    if impl == "fast":
        return compiled(name)
    if impl != "auto":
        raise ValueError(f"impl must be 'python', 'fast' or 'auto', not {impl!r}")
    if pure_forced():
        return None
    try:
        return importlib.import_module(f"emu._fast.{name}")
    except ImportError as exc:
        if not _warned:
            _warned = True
            print(f"emu: warning: compiled twin {name} unavailable ({exc}); "
                  "using the pure-Python path", file=sys.stderr)
        return None


def describe() -> str:
    """One line saying which path is active."""
    if pure_forced():
        return "pure-Python path (EMU_PURE=1)"
    have = {n: available(n) for n in TWINS}
    built = [n for n, ok in have.items() if ok]
    missing = [n for n, ok in have.items() if not ok]
    if not missing:
        return f"compiled twins: {', '.join(built)}"
    if not built:
        return "pure-Python path (no compiled twins built)"
    return f"compiled twins: {', '.join(built)}; pure: {', '.join(missing)}"
