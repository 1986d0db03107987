"""Where the guest kernel that `emu run` boots by default lives.

In order: `-kernel FILE` (handled by the caller), then $EMU_KERNEL, then
- in a checkout (guest/Makefile beside emu/): guest/build/kernel.elf, which
  `make guest` builds;
- in an installed package: emu/_guest/kernel.elf, which the wheel build
  (setup.py) builds with ziglang and ships as package data.
The user programs the kernel runs are embedded in kernel.elf
(guest/kernel/progs.S), so that one file is the whole guest.

Layer: machine.
"""

from __future__ import annotations

import os

from emu.machine.loader import LoadError

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(PACKAGE_ROOT)
GUEST_BUILD = os.path.join(REPO_ROOT, "guest", "build")
CHECKOUT_MARK = os.path.join(REPO_ROOT, "guest", "Makefile")
PACKAGED_KERNEL = os.path.join(PACKAGE_ROOT, "_guest", "kernel.elf")
OVERRIDES = "pass -kernel FILE or set EMU_KERNEL=FILE"


def default_kernel() -> str:
    """Return the path of the kernel to boot when no -kernel is given:
    $EMU_KERNEL, else the checkout's guest/build/kernel.elf when running
    from a checkout, else the kernel shipped inside the installed package.

    Raises LoadError (one line, saying how to get a kernel) when that file
    does not exist."""
    env = os.environ.get("EMU_KERNEL")
    if env:
        if not os.path.exists(env):
            raise LoadError(f"EMU_KERNEL={env}: no such file")
        return env
    if os.path.exists(CHECKOUT_MARK):
        path = os.path.join(GUEST_BUILD, "kernel.elf")
        if not os.path.exists(path):
            raise LoadError(f"no guest kernel at {path}: build it with `make guest`, "
                            f"or {OVERRIDES}")
        return path
    if not os.path.exists(PACKAGED_KERNEL):
        raise LoadError("no guest kernel: this installation ships none (its wheel was built "
                        f"without ziglang or make); {OVERRIDES}, or install a wheel built with "
                        "them (docs/install.md)")
    return PACKAGED_KERNEL
