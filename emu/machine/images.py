"""Where the built guest images live.

`make guest` builds guest/build/kernel.elf; EMU_KERNEL overrides the path.

Layer: machine.
"""

from __future__ import annotations

import os

from emu.machine.loader import LoadError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_BUILD = os.path.join(REPO_ROOT, "guest", "build")


def default_kernel() -> str:
    """Return the path of the default guest kernel.

    Raises LoadError (one line) if it has not been built.
    """
    path = os.environ.get("EMU_KERNEL") or os.path.join(GUEST_BUILD, "kernel.elf")
    if not os.path.exists(path):
        raise LoadError(f"no guest kernel at {path}: build it with `make guest`")
    return path
