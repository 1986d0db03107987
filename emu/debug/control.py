"""Run control for the debugger and the GDB stub: one Machine, booted and
rebooted from its config, run slice by slice until something stops it.
Breakpoints (breakpoints.py), stepping (stepping.py) and replay
(replay.py) are parts of the same Controller, one module each.

Trap bookkeeping: every delivery (machine.on_trap) pushes a TrapRecord with
the interrupted ra/sp/s0; every executed `sret` (code hooks on the image's
sret words) pops one. `finish` in the trap glue runs to the sret that
returns from the current trap.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from emu.core import isa
from emu.debug.breakpoints import Breakpoints
from emu.debug.frames import TrapRecord
from emu.debug.replay import Replay
from emu.debug.stepping import Stepping
from emu.debug.stops import Breakpoint, DebugError, Stop
from emu.debug.vmem import DebugMemory
from emu.guestview.dwarf import LineTable
from emu.guestview.symbols import clean, extent, image_symbols, symbol_file
from emu.machine.config import MachineConfig
from emu.machine.exits import MachineError
from emu.machine.loader import Symbols
from emu.machine.machine import Machine
from emu.machine.runloop import EXIT_MAX_INSNS

__all__ = ["Breakpoint", "Controller", "DebugError", "Stop"]

STEP_LIMIT = 2_000_000


class Controller(Breakpoints, Stepping, Replay):
    """Owns the Machine of a debugging session and everything that stops it.

    `machine`, `mem` (DebugMemory), `symbols` (clean), `lines` (DWARF) are
    public; `last_stop` is the latest Stop; `traps` the unreturned traps.
    `poll`, if set, is called between slices while running and returns True
    to interrupt (the GDB stub's Ctrl-C); `interrupt_requested` does the same
    from a signal handler.
    """

    def __init__(self, config: MachineConfig, console: IO[bytes] | None = None) -> None:
        self.config = config
        self.console = console
        self.bps: dict[int, Breakpoint] = {}
        self._next_id = 1
        self.poll: Callable[[], bool] | None = None
        self.interrupt_requested = False
        self.step_limit = STEP_LIMIT
        self.boots = 0
        self.lines: LineTable | None = None
        self._symbol_source: tuple[Symbols, str] | None = None
        self._boot()

    def load_symbols(self, path: str) -> str:
        """`symbol-file PATH`: take the symbols from an ELF or a System.map
        instead of the image's (kept across restarts). Returns the one-line
        note; raises LocationError when the file gives none."""
        self._symbol_source = symbol_file(path)
        self.symbols = clean(self._symbol_source[0])
        self.symbols_note = self._symbol_source[1]
        return self.symbols_note

    # -- machine lifecycle ---------------------------------------------------
    def _boot(self) -> None:
        """Build a fresh Machine from the config and arm every breakpoint."""
        m = Machine(self.config, console=self.console)
        self.machine = m
        self.boots += 1
        self.mem = DebugMemory(m)
        if self._symbol_source is None:
            self._symbol_source = image_symbols(m.image)
        self.symbols = clean(self._symbol_source[0])
        self.symbols_note = self._symbol_source[1]
        if self.lines is None:
            self.lines = LineTable.from_elf(m.image.path)
        self.traps: list[TrapRecord] = []
        self.fault_seq = 0
        self._code_hooks: dict[int, int] = {}
        self._internal: dict[int, list[Callable[[], str | None]]] = {}
        self._mem_hook: int | None = None
        self._tb_dirty = False
        self._pending_stop: Stop | None = None
        self._watch_hit: tuple[Breakpoint, str, int, int] | None = None
        self._hook_error: BaseException | None = None
        self._suspend_code = False
        self._suspend_watch = False
        self._replaying = False
        self._replay_fault: int | None = None
        self._took_interrupt = False
        self._entered: TrapRecord | None = None
        self._step_hook: int | None = None
        self._step_left = 0
        m.traps.hold_trap = self._hold
        m.on_trap.append(self._on_trap)
        self.srets = self._find_srets()
        for a in self.srets:
            self._hook_code(a)
        for bp in self.bps.values():
            self._arm(bp)
        self._sync()
        self.last_stop = Stop("reset", m.cpu.pc, f"at reset: pc 0x{m.cpu.pc:x}"
                              f"{self.where(m.cpu.pc)}, S-mode", icount=0)

    def restart(self) -> Stop:
        """Boot a fresh machine (breakpoints kept) and stop at reset."""
        self._boot()
        return self.last_stop

    def _find_srets(self) -> list[int]:
        """Addresses where the image's `sret` words run (2-byte aligned: with
        compressed code a 4-byte instruction may start at any half-word; a
        match that is not an instruction start never executes). An
        ELF runs where it is loaded; a raw Linux Image is loaded at 0x80200000
        but runs at its link address, its `_start` in kallsyms."""
        img = self.machine.image
        lo, hi = img.low & ~3, img.high
        start = None if img.symbols.by_name else self.symbols.by_name.get("_start")
        delta = start - lo if start is not None else 0
        raw = self.machine.mem.read(lo, hi - lo)
        pat = isa.INSN_SRET.to_bytes(4, "little")
        out, i = [], raw.find(pat)
        while i >= 0:
            if i % 2 == 0:
                out.append(lo + i + delta)
            i = raw.find(pat, i + 1)
        return out

    def glue(self) -> list[tuple[int, int]]:
        """[start, end) ranges of the trap vector and of the code holding srets."""
        out = []
        stvec = self.machine.cpu.csr("stvec") & ~3
        for a in ([stvec] if stvec else []) + self.srets:
            ext = extent(self.symbols, a)
            if ext and ext not in out:
                out.append(ext)
        return out

    def _on_trap(self, cause: int, tval: int, epc: int, interrupt: bool) -> None:
        cpu = self.machine.cpu
        prev = 1 if cpu.csr("sstatus") & isa.SSTATUS_SPP else 0
        rec = TrapRecord(cause, interrupt, epc, tval, prev, cpu.reg("ra"), cpu.reg("sp"),
                         cpu.reg("s0"), self.machine.icount)
        self.traps.append(rec)
        if interrupt:
            self._took_interrupt = True
        self._entered = rec

    # -- running ---------------------------------------------------------------
    def _slice(self) -> Stop | None:
        """Run one machine slice. Returns a Stop if anything stopped it."""
        m = self.machine
        self._pending_stop = None
        self._watch_hit = None
        self._sync()
        t0 = time.perf_counter()
        try:
            m.run_slice()
        except MachineError as exc:
            m.exit_status = m.exit_status if m.exit_status is not None else 70
            return self._stop(Stop("error", m.cpu.pc, f"machine error: {exc}"))
        finally:
            m.stats.wall_s += time.perf_counter() - t0
        if self._hook_error is not None:
            exc, self._hook_error = self._hook_error, None
            return self._stop(Stop("error", m.cpu.pc, f"debugger hook failed: {exc!r}"))
        if self._watch_hit is not None:
            return self._finish_watch()
        if self._pending_stop is not None:
            st, self._pending_stop = self._pending_stop, None
            return st if st.kind == "internal" else self._stop(st)
        if m.exit_status is None and self.config.max_insns is not None \
                and m.icount >= self.config.max_insns:
            m.exit_status = EXIT_MAX_INSNS
            m.stop_reason = f"--max-insns {self.config.max_insns} reached"
        if m.exit_status is not None:
            return self._exited()
        return None

    def _stop(self, st: Stop) -> Stop:
        st.icount = self.machine.icount
        self.last_stop = st
        return st

    def _exited(self) -> Stop:
        m = self.machine
        return self._stop(Stop("exited", m.cpu.pc, f"the guest ended: {m.stop_reason} "
                               f"(exit status {m.exit_status})", exit_status=m.exit_status))

    def _run(self) -> Stop:
        """Run slices until a stop (breakpoint, fault, internal target, exit,
        interrupt). Internal stops are returned with kind "internal"."""
        m = self.machine
        if m.exit_status is not None:
            return self._exited()
        self.interrupt_requested = False
        st = self._leave_current()
        if st is not None:
            return st
        self._disarm_step()
        while True:
            st = self._slice_or_interrupt()
            if st is not None:
                return st

    def _slice_or_interrupt(self) -> Stop | None:
        """Run one slice; return its Stop, or the stop for a pending Ctrl-C,
        else None."""
        return self._slice() or self._interrupted()

    def _interrupted(self) -> Stop | None:
        """Return the stop for a pending Ctrl-C (REPL or gdb's 0x03), else None."""
        if not (self.interrupt_requested or (self.poll is not None and self.poll())):
            return None
        self.interrupt_requested = False
        pc = self.machine.cpu.pc
        return self._stop(Stop("interrupted", pc, f"interrupted at 0x{pc:x}{self.where(pc)}"))

    def cont(self) -> Stop:
        """Continue until something stops the machine. Returns the Stop."""
        st = self._run()
        if st.kind == "internal":   # only user stops exist here; be safe
            return self._stop(Stop("breakpoint", st.pc, st.message))
        return st

    # -- helpers for views ---------------------------------------------------------
    def where(self, addr: int) -> str:
        """` <symbol+off>` for addresses inside the kernel image, else ""."""
        return f" <{self.symbols.describe(addr)}>" if self.symbols.lookup(addr) else ""

    def priv(self) -> int:
        """Current privilege (0 U, 1 S)."""
        return self.machine.cpu.priv

    def stop_flag(self) -> None:
        """Ask a running controller to stop at the next slice boundary
        (signal-handler safe)."""
        self.interrupt_requested = True
