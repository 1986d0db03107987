"""The libunicorn the Python binding loaded, for the few calls emu makes
around the binding: raw ctypes callbacks for the hot hooks (TLB fill, block
budget, MMIO), whose own wrappers cost more than the work they wrap, and
the functions the 2.1.4 binding does not wrap (uc_vmem_read).

Layer: core (imports nothing from emu).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache


@lru_cache(maxsize=1)
def uclib() -> ctypes.CDLL:
    """The binding's CDLL (a private name of unicorn 2.1.x's binding)."""
    from unicorn.unicorn_py3 import unicorn as binding
    return binding.uclib
