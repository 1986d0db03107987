"""Faults as the debugger sees them: the description of an exception about
to be delivered (FaultInfo), the filters of `break fault` (FaultFilter and
its parser).

The exact address of a load/store comes from emu.core.isa.access_address
(the TLB-fill hook only sees the page unicorn asks for).

Layer: debug.
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.core import isa
from emu.mmu.pte import PAGE_MASK

MASK64 = (1 << 64) - 1
FAULT_CAUSES = (isa.CAUSE_FETCH_ACCESS, isa.CAUSE_LOAD_ACCESS,
                isa.CAUSE_STORE_ACCESS, isa.CAUSE_FETCH_PAGE_FAULT,
                isa.CAUSE_LOAD_PAGE_FAULT, isa.CAUSE_STORE_PAGE_FAULT)
ACCESS_OF_CAUSE = {1: "x", 12: "x", 5: "r", 13: "r", 7: "w", 15: "w"}
ACCESS_NAME = {"r": "read", "w": "write", "x": "fetch"}


class FilterError(ValueError):
    """A bad `break fault` filter word (message is one line)."""


# -- fault descriptions and filters ------------------------------------------
@dataclass(frozen=True)
class FaultInfo:
    """An exception about to be delivered, as a fault breakpoint sees it."""

    seq: int        # 1-based number of this fault in the run (page/access faults)
    cause: int
    tval: int
    epc: int
    va: int         # exact access address when the instruction decodes, else tval
    access: str     # "r" | "w" | "x"
    priv: int       # privilege of the faulting access (0 U, 1 S)
    satp: int
    icount: int
    pid: int | None = None   # the faulting process, when the kernel's table says
    pname: str = ""

    @property
    def name(self) -> str:
        """The cause's name, e.g. "load page fault"."""
        return isa.CAUSE_NAMES.get(self.cause, f"exception {self.cause}")

    def describe(self) -> str:
        """One line: what, where, from which mode, which occurrence."""
        mode = "U" if self.priv == 0 else "S"
        who = f", pid {self.pid} ({self.pname})" if self.pid is not None else ""
        return (f"{self.name} (cause {self.cause}) at va 0x{self.va:x}, pc 0x{self.epc:x}, "
                f"{mode}-mode{who}, fault #{self.seq}")


@dataclass
class FaultFilter:
    """What a fault breakpoint matches; None means "any"."""

    lo: int | None = None        # virtual range [lo, hi)
    hi: int | None = None
    access: str | None = None    # "r" | "w" | "x"
    priv: int | None = None      # 0 user, 1 kernel
    satp: int | None = None
    pid: int | None = None
    cause: int | None = None
    nth: int | None = None       # stop only at the Nth matching fault

    def matches(self, f: FaultInfo) -> bool:
        """True if `f` passes every filter (the Nth count is the caller's)."""
        if self.cause is not None:
            if f.cause != self.cause:
                return False
        elif f.cause not in FAULT_CAUSES:
            return False
        if self.lo is not None and not self.lo <= f.va < (self.hi or MASK64 + 1):
            return False
        if self.access is not None and f.access != self.access:
            return False
        if self.priv is not None and f.priv != self.priv:
            return False
        if self.pid is not None and f.pid != self.pid:
            return False
        return self.satp is None or f.satp == self.satp

    def describe(self) -> str:
        """The filter in the syntax `break fault` accepts."""
        parts = []
        if self.lo is not None:
            parts.append(f"0x{self.lo:x}-0x{self.hi:x}")
        if self.access:
            parts.append(self.access)
        if self.priv is not None:
            parts.append("user" if self.priv == 0 else "kernel")
        if self.satp is not None:
            parts.append(f"satp=0x{self.satp:x}")
        if self.pid is not None:
            parts.append(f"pid={self.pid}")
        if self.cause is not None:
            parts.append(f"cause={self.cause}")
        if self.nth is not None:
            parts.append(f"nth={self.nth}")
        return " ".join(parts) or "any page/access fault"


def _num(text: str, what: str) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise FilterError(f"bad {what}: {text!r}") from None


def parse_fault_filter(words: list[str]) -> FaultFilter:
    """Parse `break fault` arguments.

    Words (any order): a virtual range `LO-HI`, `LO+LEN` or a single address
    (its page); `r|w|x` (or read/write/exec); `user|kernel` (or u/s/k);
    `satp=V`, `pid=N`, `cause=N`, `nth=N` (also `#N`); `va=`, `access=`, `mode=` forms.
    Returns the FaultFilter. Raises FilterError naming the bad word.
    """
    f = FaultFilter()
    for w in words:
        key, eq, val = w.partition("=")
        key = key.lower()
        if not eq:
            key, val = "", w
        lw = val.lower()
        if key in ("", "access") and lw in ("r", "w", "x", "read", "write", "exec", "fetch",
                                            "load", "store"):
            f.access = {"read": "r", "load": "r", "write": "w", "store": "w", "exec": "x",
                        "fetch": "x"}.get(lw, lw)
        elif key in ("", "mode") and lw in ("user", "u", "kernel", "k", "s", "supervisor"):
            f.priv = 0 if lw in ("user", "u") else 1
        elif key == "satp":
            f.satp = _num(val, "satp")
        elif key == "pid":
            f.pid = _num(val, "pid")
        elif key == "cause":
            f.cause = _num(val, "cause")
        elif key == "nth" or (not key and val.startswith("#")):
            f.nth = _num(val.lstrip("#"), "occurrence")
            if f.nth < 1:
                raise FilterError("the occurrence number starts at 1")
        elif key in ("", "va"):
            if not val[:1].isdigit():
                raise FilterError(f"unknown fault filter {w!r} (try: LO-HI r|w|x user|kernel "
                                 "satp=V pid=N cause=N nth=N)")
            if "-" in val:
                lo_s, hi_s = val.split("-", 1)
                f.lo, f.hi = _num(lo_s, "address"), _num(hi_s, "address")
            elif "+" in val:
                lo_s, n_s = val.split("+", 1)
                f.lo = _num(lo_s, "address")
                f.hi = f.lo + _num(n_s, "length")
            else:
                a = _num(val, "address")
                f.lo, f.hi = a & ~PAGE_MASK, (a & ~PAGE_MASK) + PAGE_MASK + 1
            if f.hi <= f.lo:
                raise FilterError(f"empty address range {val!r}")
        else:
            raise FilterError(f"unknown fault filter {w!r}")
    return f
