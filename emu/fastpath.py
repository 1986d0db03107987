"""Which twin runs: the compiled one from emu._fast or the pure-Python one.

`EMU_PURE=1` forces the pure path. A compiled twin that is missing (not
built, or failed to import) degrades to the pure path with one warning line
on stderr. `describe()` says which is active (shown by `emu --version`).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

_TWINS = ("budget", "sv39", "frames")
_warned = False


def pure_forced() -> bool:
    """Return True when EMU_PURE=1 asks for the pure-Python path."""
    return os.environ.get("EMU_PURE", "") not in ("", "0")


def load(name: str) -> ModuleType | None:
    """Return the compiled twin emu._fast.NAME, or None on the pure path.

    Prints one warning line (once per process) when a twin is unavailable
    although the pure path was not requested.
    """
    global _warned
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


def available() -> dict[str, bool]:
    """Return {twin name: importable} without warnings."""
    out = {}
    for name in _TWINS:
        try:
            importlib.import_module(f"emu._fast.{name}")
            out[name] = True
        except ImportError:
            out[name] = False
    return out


def describe() -> str:
    """One line saying which path is active."""
    if pure_forced():
        return "pure-Python path (EMU_PURE=1)"
    have = available()
    built = [n for n, ok in have.items() if ok]
    missing = [n for n, ok in have.items() if not ok]
    if not missing:
        return f"compiled twins: {', '.join(built)}"
    if not built:
        return "pure-Python path (no compiled twins built)"
    return f"compiled twins: {', '.join(built)}; pure: {', '.join(missing)}"
