"""Frame-pointer backtrace (`bt`) that walks across trap boundaries.

The guest is built with -fno-omit-frame-pointer, so after a function's
prologue (`addi s0, sp, N`) its return address is at s0-8 and the caller's
s0 at s0-16 (the RISC-V psABI frame layout clang emits). Before the prologue
and after the epilogue has restored s0, the return address is still in ra.

At the trap vector the chain is cut by hardware: the controller records, at
every trap delivery, the interrupted pc (sepc), privilege and ra/sp/s0 (still
the interrupted values at that moment), so the backtrace continues into the
interrupted code. A trap from U-mode ends the chain with a user frame.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.core import isa
from emu.debug.vmem import DebugMemory, MemError
from emu.machine.loader import Symbols

MAX_FRAMES = 64
ADDI_S0_SP = 0x0001_0413        # addi s0, sp, imm  (mask 0x000F_FFFF)
LD_S0_SP = 0x0001_3403          # ld s0, imm(sp)    (mask 0x000F_FFFF)
RET = 0x0000_8067               # jalr zero, 0(ra)
JR_MASK = 0x000F_FFFF           # any jalr zero, 0(rs1) - a return or tail call
JR_ANY = 0x0000_0067


@dataclass(frozen=True)
class TrapRecord:
    """A delivered, not yet returned trap, as recorded at delivery."""

    cause: int
    interrupt: bool
    epc: int
    tval: int
    priv: int       # privilege of the interrupted code (0 U, 1 S)
    ra: int
    sp: int
    fp: int
    icount: int

    @property
    def name(self) -> str:
        """The cause's name, e.g. "load page fault" or "supervisor timer"."""
        names = isa.INTERRUPT_NAMES if self.interrupt else isa.CAUSE_NAMES
        return names.get(self.cause, f"cause {self.cause}")


@dataclass(frozen=True)
class Frame:
    """One backtrace line: pc and a label (symbol, or a trap/user marker)."""

    pc: int
    label: str
    trap: TrapRecord | None = None


def _word(mem: DebugMemory, va: int) -> int | None:
    try:
        return mem.read_u(va, 4)
    except MemError:
        return None


def frame_is_set_up(mem: DebugMemory, pc: int, func_start: int) -> bool:
    """True if at `pc` the function's s0 points at its own frame: past the
    `addi s0, sp, N` of the prologue and not past `ld s0` in an epilogue."""
    a = func_start
    prologue_end = None
    while a < pc and a < func_start + 4 * 24:
        w = _word(mem, a)
        if w is not None and w & 0xFFFFF == ADDI_S0_SP:
            prologue_end = a
            break
        a += 4
    if prologue_end is None:
        return False
    # Epilogue: a return ahead of us with no `ld s0` in between means s0 was
    # already restored.
    for i in range(8):
        w = _word(mem, pc + 4 * i)
        if w is None:
            break
        if w & 0xFFFFF == LD_S0_SP:
            return True
        if w & JR_MASK == JR_ANY or w == RET:
            return False
    return True


def backtrace(mem: DebugMemory, symbols: Symbols, pc: int, ra: int, fp: int,
              traps: list[TrapRecord], glue: list[tuple[int, int]]) -> list[Frame]:
    """Return the frames from `pc` outwards (innermost first).

    `traps` are the unreturned traps, oldest first; `glue` the [start, end)
    ranges of the trap entry/return code (trap vector, trapret). Stops at an
    unreadable frame, a zero return address, a user frame or MAX_FRAMES.
    """
    frames: list[Frame] = []
    ti = len(traps) - 1
    for _ in range(MAX_FRAMES):
        in_glue = any(s <= pc < e for s, e in glue)
        frames.append(Frame(pc, symbols.describe(pc) if symbols.lookup(pc) else "??"))
        if in_glue:
            if ti < 0:
                break
            rec = traps[ti]
            ti -= 1
            mode = "U" if rec.priv == 0 else "S"
            frames.append(Frame(rec.epc, f"<{rec.name} trap from {mode}-mode>", rec))
            if rec.priv == 0:
                frames.append(Frame(rec.epc, "user code (no symbols)"))
                break
            # Continue in the interrupted frame, whose ra/s0 were recorded.
            pc, ra, fp = rec.epc, rec.ra, rec.fp
            continue
        nxt = caller_of(mem, symbols, pc, ra, fp)
        if nxt is None:
            break
        pc, fp = nxt
        ra = 0   # only frame 0 (or a trapped frame) may still have ra live
    return frames


def caller_of(mem: DebugMemory, symbols: Symbols, pc: int, ra: int,
              fp: int) -> tuple[int, int] | None:
    """Return (return address, caller's fp) of the frame at `pc`, or None."""
    hit = symbols.lookup(pc)
    if hit is None:
        return None
    start = pc - hit[1]
    try:
        if frame_is_set_up(mem, pc, start):
            ret = mem.read_u(fp - 8, 8)
            nfp = mem.read_u(fp - 16, 8)
        else:
            ret, nfp = ra, fp
    except MemError:
        return None
    if ret == 0 or ret == pc and nfp == fp:
        return None
    return ret, nfp
