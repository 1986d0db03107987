"""What the debugger's run control deals in: user breakpoints, the Stop
that says why the machine stopped, and the one-line DebugError.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.debug.faults import FaultFilter, FaultInfo
from emu.debug.frames import TrapRecord

WATCH_KINDS = ("watch", "rwatch", "awatch")   # write, read, access (gdb Z2/Z3/Z4)


class DebugError(Exception):
    """A debugger request that cannot be honoured; the message is one line."""


# -- breakpoints and stops -----------------------------------------------------
@dataclass
class Breakpoint:
    """A user breakpoint. kind: "code", "hw" (gdb Z1), "watch" (write),
    "rwatch", "awatch" or "fault"."""

    id: int
    kind: str
    addr: int = 0
    length: int = 0
    label: str = ""
    filt: FaultFilter | None = None
    enabled: bool = True
    hits: int = 0
    matched: int = 0      # fault breakpoints: faults that passed the filter
    temporary: bool = False


@dataclass
class Stop:
    """Why the machine stopped. kind: reset, breakpoint, watchpoint, fault,
    step, finish, interrupted, exited, error, limit."""

    kind: str
    pc: int
    message: str
    icount: int = 0
    bp: Breakpoint | None = None
    fault: FaultInfo | None = None
    watch: tuple[str, int, int] | None = None   # (kind, va, size)
    exit_status: int | None = None
    trap_entered: TrapRecord | None = None      # set when this stop entered a trap handler
