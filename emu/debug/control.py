"""Run control for the debugger and the GDB stub: breakpoints, stepping,
continuing and deterministic replay of one Machine.

Mechanisms (unicorn 2.1.4 facts checked on this project, NOTES.md section 4):

- Code breakpoints are UC_HOOK_CODE hooks on exactly one address. A hook
  only reaches code translated after it was added, so every change flushes
  the translation-block cache. `emu_stop()` inside the hook stops *before*
  the instruction, pc precise; the machine is told (`loop.stop_requested`) so it
  uncounts the rest of the block.
- Watchpoints: in UC_TLB_VIRTUAL mode memory hooks receive *physical*
  addresses, and `emu_stop()` in them aborts the access with pc still on the
  instruction. So one hook watches all accesses; a cheap page-offset test
  filters, then the virtual address is recomputed from the instruction
  (rs1 + imm) and compared with the watched range. On a hit the aborted
  instruction is re-run once with watchpoints suspended, so the stop is
  reported after the access, as gdb expects (RISC-V has no "non-steppable"
  watchpoints) and as QEMU's gdbstub does.
- Fault breakpoints use the machine's `traps.hold_trap` hook: the exception is
  kept back with pc on the faulting instruction, before scause/sepc change.
  Stepping from there delivers it: the next pc is the trap vector, exactly
  what `stepi` on a faulting instruction does on hardware.
- Trap bookkeeping: every delivery (machine.on_trap) pushes a TrapRecord
  with the interrupted ra/sp/s0; every executed `sret` (code hooks on the
  image's sret words) pops one. `finish` in the trap glue runs to the sret
  that returns from the current trap.

Replay: a run is a function of (config, image), so `run-to fault N` and
`run-to insn N` boot a fresh Machine and stop at exactly that event; user
breakpoints are ignored while replaying so that the target is reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import unicorn as U
from unicorn import riscv_const as R

from emu.core import isa
from emu.core.isa import access_address
from emu.debug.disasm import is_call
from emu.debug.faults import (
    ACCESS_OF_CAUSE,
    FAULT_CAUSES,
    FaultFilter,
    FaultInfo,
)
from emu.debug.frames import TrapRecord, caller_of
from emu.debug.vmem import DebugMemory
from emu.guestview.dwarf import LineTable
from emu.guestview.kproc import kernel_of
from emu.guestview.symbols import clean, extent
from emu.machine.config import MachineConfig
from emu.machine.exits import MachineError
from emu.machine.machine import Machine
from emu.machine.runloop import EXIT_MAX_INSNS
from emu.mmu.pte import PAGE_MASK

MASK64 = (1 << 64) - 1
WATCH_KINDS = ("watch", "rwatch", "awatch")   # write, read, access (gdb Z2/Z3/Z4)
STEP_LIMIT = 2_000_000


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

    def describe(self) -> str:
        """One line for `info breakpoints`."""
        state = "" if self.enabled else " (disabled)"
        if self.kind in ("code", "hw"):
            what = f"{'hw ' if self.kind == 'hw' else ''}breakpoint at 0x{self.addr:x}" + \
                (f" <{self.label}>" if self.label else "")
        elif self.kind in WATCH_KINDS:
            what = f"{self.kind} 0x{self.addr:x} len {self.length}"
        else:
            assert self.filt is not None
            what = f"fault breakpoint: {self.filt.describe()}"
        return f"{self.id:<3} {what}{state}, hit {self.hits} time{'s' if self.hits != 1 else ''}"


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


class Controller:
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
        self._boot()

    # -- machine lifecycle ---------------------------------------------------
    def _boot(self) -> None:
        """Build a fresh Machine from the config and arm every breakpoint."""
        m = Machine(self.config, console=self.console)
        self.machine = m
        self.boots += 1
        self.mem = DebugMemory(m)
        self.symbols = clean(m.image.symbols)
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
        """Addresses of `sret` words in the loaded image (4-byte aligned)."""
        img = self.machine.image
        lo, hi = img.low & ~3, img.high
        raw = self.machine.mem.read(lo, hi - lo)
        pat = isa.INSN_SRET.to_bytes(4, "little")
        out, i = [], raw.find(pat)
        while i >= 0:
            if i % 4 == 0:
                out.append(lo + i)
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

    # -- hook plumbing -------------------------------------------------------
    def _hook_code(self, addr: int) -> None:
        if addr not in self._code_hooks:
            self._code_hooks[addr] = self.machine.cpu.uc.hook_add(
                U.UC_HOOK_CODE, self._on_code, begin=addr, end=addr)
            self._tb_dirty = True

    def _unhook_code_if_unused(self, addr: int) -> None:
        used = (addr in self.srets or self._internal.get(addr)
                or any(b.kind in ("code", "hw") and b.addr == addr for b in self.bps.values()))
        if not used and addr in self._code_hooks:
            self.machine.cpu.uc.hook_del(self._code_hooks.pop(addr))
            self._tb_dirty = True

    def _sync_watch_hook(self) -> None:
        want = any(b.kind in WATCH_KINDS and b.enabled for b in self.bps.values())
        uc = self.machine.cpu.uc
        if want and self._mem_hook is None:
            self._mem_hook = uc.hook_add(U.UC_HOOK_MEM_READ | U.UC_HOOK_MEM_WRITE, self._on_mem)
            self._tb_dirty = True
        elif not want and self._mem_hook is not None:
            uc.hook_del(self._mem_hook)
            self._mem_hook = None
            self._tb_dirty = True

    def _sync(self) -> None:
        """Flush translated blocks if hooks changed (they apply at translation)."""
        if self._tb_dirty:
            self.machine.cpu.uc.ctl_flush_tb()
            self._tb_dirty = False

    def _arm(self, bp: Breakpoint) -> None:
        if bp.kind in ("code", "hw"):
            self._hook_code(bp.addr)
        elif bp.kind in WATCH_KINDS:
            self._sync_watch_hook()

    def _fail_in_hook(self, exc: BaseException) -> None:
        # A Python exception must not unwind through unicorn (NOTES.md s4):
        # keep it, stop, and report it after emu_start returns.
        if self._hook_error is None:
            self._hook_error = exc
        self.machine.loop.stop_requested = True
        self.machine.cpu.uc.emu_stop()

    # -- hooks ---------------------------------------------------------------
    def _on_code(self, uc: U.Uc, addr: int, _size: int, _user: object) -> None:
        # While stepping, the all-address step hook handles these addresses
        # itself (one decision per instruction, whatever the hook order).
        if self._step_hook is None:
            self._code_event(uc, addr)

    def _on_step(self, uc: U.Uc, addr: int, _size: int, _user: object) -> None:
        """All-address hook while stepping: stop before the instruction after
        the ones allowed to run (`_step_left`)."""
        try:
            if self._step_left <= 0:
                self.machine.loop.stop_requested = True
                uc.emu_stop()
                return
            self._step_left -= 1
            if addr in self._code_hooks:
                self._code_event(uc, addr)
        except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
            self._fail_in_hook(exc)

    def _code_event(self, uc: U.Uc, addr: int) -> None:
        """A hooked address is about to run: stop there, or account an sret."""
        try:
            if not self._suspend_code and not self._replaying:
                stop = self._code_stop(addr)
                if stop is not None:
                    self._pending_stop = stop
                    self.machine.loop.stop_requested = True
                    uc.emu_stop()
                    return
            if addr in self.srets and self.traps:
                self.traps.pop()   # this sret returns from the innermost trap
        except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
            self._fail_in_hook(exc)

    def _code_stop(self, addr: int) -> Stop | None:
        for bp in self.bps.values():
            if bp.kind in ("code", "hw") and bp.enabled and bp.addr == addr:
                bp.hits += 1
                return Stop("breakpoint", addr,
                            f"breakpoint {bp.id} at 0x{addr:x}{self.where(addr)}", bp=bp)
        for cond in self._internal.get(addr, ()):
            msg = cond()
            if msg:
                return Stop("internal", addr, msg)
        return None

    def _on_mem(self, uc: U.Uc, access: int, pa: int, size: int, _value: int,
                _user: object) -> None:
        try:
            if self._suspend_watch or self._replaying:
                return
            kind = "w" if access == U.UC_MEM_WRITE else "r"
            off = pa & PAGE_MASK
            cands = [b for b in self.bps.values() if b.kind in WATCH_KINDS and b.enabled
                     and (b.kind == "awatch" or (b.kind == "watch") == (kind == "w"))
                     and _offsets_overlap(off, size, b.addr, b.length)]
            if not cands:
                return
            pc = uc.reg_read(R.UC_RISCV_REG_PC)
            word = self.machine.cpu.fetch_insn(pc)
            va = None if word is None else access_address(
                word, lambda n: uc.reg_read(R.UC_RISCV_REG_X0 + n))
            if va is None:
                return
            for b in cands:
                if va < b.addr + b.length and b.addr < va + size:
                    self._watch_hit = (b, kind, va, size)
                    self.machine.loop.stop_requested = True
                    uc.emu_stop()
                    return
        except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
            self._fail_in_hook(exc)

    def _on_trap(self, cause: int, tval: int, epc: int, interrupt: bool) -> None:
        cpu = self.machine.cpu
        prev = 1 if cpu.csr("sstatus") & isa.SSTATUS_SPP else 0
        rec = TrapRecord(cause, interrupt, epc, tval, prev, cpu.reg("ra"), cpu.reg("sp"),
                         cpu.reg("s0"), self.machine.icount)
        self.traps.append(rec)
        if interrupt:
            self._took_interrupt = True
        self._entered = rec

    def _fault_info(self, cause: int, tval: int, epc: int) -> FaultInfo:
        m = self.machine
        cpu = m.cpu
        access = ACCESS_OF_CAUSE.get(cause, "x")
        va = tval
        if access == "x":
            va = epc if cause in (1, 12) else tval
        else:
            # The TLB-fill hook only sees the page (stval is page aligned):
            # the exact address comes from the instruction's rs1 + imm.
            word = m.cpu.fetch_insn(epc)
            exact = None if word is None else access_address(word, lambda n: cpu.gprs()[n])
            if exact is not None and exact & ~PAGE_MASK == tval & ~PAGE_MASK:
                va = exact
        satp = cpu.csr("satp")
        k = kernel_of(m)
        proc = k.by_satp(satp) if k is not None else None
        return FaultInfo(self.fault_seq, cause, tval, epc, va, access, cpu.priv, satp,
                         m.icount, proc.pid if proc else None, proc.name if proc else "")

    def _hold(self, cause: int, tval: int, epc: int) -> bool:
        """machine.traps.hold_trap: keep a matching fault back and stop before it."""
        is_fault = cause in FAULT_CAUSES
        if is_fault:
            self.fault_seq += 1
        if self._replay_fault is not None:
            if is_fault and self.fault_seq == self._replay_fault:
                info = self._fault_info(cause, tval, epc)
                self._pending_stop = Stop("fault", epc, f"run-to: {info.describe()}",
                                          fault=info)
                return True
            return False
        if self._replaying:
            return False
        fbps = [b for b in self.bps.values() if b.kind == "fault" and b.enabled]
        if not fbps:
            return False
        info = self._fault_info(cause, tval, epc)
        for bp in fbps:
            assert bp.filt is not None
            if bp.filt.matches(info):
                bp.matched += 1
                if bp.filt.nth is None or bp.matched == bp.filt.nth:
                    bp.hits += 1
                    self._pending_stop = Stop("fault", epc, f"fault breakpoint {bp.id}: "
                                              f"{info.describe()}", bp=bp, fault=info)
                    return True
        return False

    # -- breakpoints (public) --------------------------------------------------
    def add_code(self, addr: int, hw: bool = False, temporary: bool = False) -> Breakpoint:
        """Add a code breakpoint at virtual `addr`. Returns it."""
        addr &= MASK64
        bp = Breakpoint(self._next_id, "hw" if hw else "code", addr=addr,
                        label=self.symbols.describe(addr) if self.symbols.lookup(addr) else "",
                        temporary=temporary)
        return self._add(bp)

    def add_watch(self, kind: str, addr: int, length: int) -> Breakpoint:
        """Add a watchpoint ("watch" write, "rwatch" read, "awatch" access) on
        virtual [addr, addr+length). Raises DebugError for a bad length."""
        if kind not in WATCH_KINDS:
            raise DebugError(f"bad watchpoint kind {kind!r}")
        if not 0 < length <= 4096:
            raise DebugError("watch length must be 1..4096 bytes")
        return self._add(Breakpoint(self._next_id, kind, addr=addr & MASK64, length=length))

    def add_fault(self, filt: FaultFilter) -> Breakpoint:
        """Add a fault breakpoint with filter `filt`. Returns it."""
        return self._add(Breakpoint(self._next_id, "fault", filt=filt))

    def _add(self, bp: Breakpoint) -> Breakpoint:
        self._next_id += 1
        self.bps[bp.id] = bp
        self._arm(bp)
        return bp

    def delete(self, bp_id: int | None = None) -> int:
        """Delete breakpoint `bp_id` (all when None). Returns how many went.
        Raises DebugError for an unknown id."""
        ids = list(self.bps) if bp_id is None else [bp_id]
        for i in ids:
            bp = self.bps.pop(i, None)
            if bp is None:
                raise DebugError(f"no breakpoint number {i}")
            if bp.kind in ("code", "hw"):
                self._unhook_code_if_unused(bp.addr)
        self._sync_watch_hook()
        return len(ids)

    def find_code(self, addr: int, hw: bool | None = None) -> Breakpoint | None:
        """Return a code breakpoint at `addr` (of kind hw/code if given)."""
        for bp in self.bps.values():
            if bp.kind in ("code", "hw") and bp.addr == addr and \
                    (hw is None or (bp.kind == "hw") == hw):
                return bp
        return None

    def find_watch(self, kind: str, addr: int, length: int) -> Breakpoint | None:
        """Return the watchpoint of `kind` on exactly [addr, addr+length)."""
        for bp in self.bps.values():
            if bp.kind == kind and bp.addr == addr and bp.length == length:
                return bp
        return None

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

    def _finish_watch(self) -> Stop:
        """The access was aborted by the hook: run it once more unwatched so the
        stop is reported after it completed."""
        assert self._watch_hit is not None
        bp, kind, va, size = self._watch_hit
        self._watch_hit = None
        pc = self.machine.cpu.pc
        self._suspend_watch = True
        try:
            after = self._step1()
        finally:
            self._suspend_watch = False
        if after is not None and after.kind != "internal":
            return after
        bp.hits += 1
        verb = "wrote" if kind == "w" else "read"
        return self._stop(Stop("watchpoint", self.machine.cpu.pc,
                               f"{bp.kind} {bp.id}: 0x{pc:x}{self.where(pc)} "
                               f"{verb} {size} byte{'s' if size > 1 else ''} at 0x{va:x}",
                               bp=bp, watch=(kind, va, size)))

    def _arm_step(self, n: int) -> None:
        """Let `n` instructions run, then stop (installs the step hook)."""
        if self._step_hook is None:
            self._step_hook = self.machine.cpu.uc.hook_add(U.UC_HOOK_CODE, self._on_step)
            self._tb_dirty = True
        self._step_left = n

    def _disarm_step(self) -> None:
        """Remove the step hook before running freely (it costs a Python call
        per instruction)."""
        if self._step_hook is not None:
            self.machine.cpu.uc.hook_del(self._step_hook)
            self._step_hook = None
            self._tb_dirty = True

    def _step1(self) -> Stop | None:
        """Execute one instruction (or take a held trap). Returns a Stop if
        something other than the step itself stopped the machine.

        Stepping uses our own all-address code hook, not emu_start(count=):
        after a counted run that ends right behind an `sret`, unicorn 2.1.4
        re-fetches the previous block's page with the new privilege on the
        next start, and our fill hook refuses it - a phantom fetch fault.
        """
        m = self.machine
        if m.exit_status is not None:
            return self._exited()
        self._entered = None
        if m.traps.held_trap is not None:
            m.traps.deliver_held()   # the faulting instruction does not retire
            return None
        pc0, ic0 = m.cpu.pc, m.icount
        self._suspend_code = True   # no breakpoint stop at the instruction we step
        try:
            for _ in range(8):
                self._arm_step(1)
                st = self._slice()
                if st is not None or m.icount != ic0 or m.cpu.pc != pc0 or \
                        self._entered is not None or m.traps.held_trap is not None:
                    return st
                # The budget stopped before the instruction (an event was due):
                # events have fired, nothing was taken; try again.
            return None
        finally:
            self._suspend_code = False
            self._step_left = 0

    def _step_stop(self, message: str = "") -> Stop:
        m = self.machine
        pc = m.cpu.pc
        st = Stop("step", pc, message or f"pc 0x{pc:x}{self.where(pc)}")
        st.trap_entered = self._entered
        return self._stop(st)

    def stepi(self, n: int = 1) -> Stop:
        """Execute `n` instructions (a held fault counts as one step: it is
        delivered and pc moves to the trap vector). Returns the Stop."""
        if n < 1:
            raise DebugError("stepi count must be at least 1")
        entered = None
        for _ in range(n):
            st = self._step1()
            entered = self._entered or entered
            if st is not None:
                return st
        st = self._step_stop()
        st.trap_entered = entered
        if entered is not None:
            st.message = (f"entered the trap handler at 0x{st.pc:x}{self.where(st.pc)}"
                          f" for {entered.name} (sepc 0x{entered.epc:x})")
        return st

    def _leave_current(self) -> Stop | None:
        """Before running: take a held fault, or step off a breakpoint at pc."""
        m = self.machine
        if m.traps.held_trap is not None:
            m.traps.deliver_held()
            return None
        if m.cpu.pc in self._code_hooks:
            return self._step1()
        return None

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

    def _run_to(self, targets: dict[int, Callable[[], str | None]]) -> Stop:
        """Run with temporary internal stops at `targets` (addr -> condition
        returning a message when the stop applies)."""
        for addr, cond in targets.items():
            self._internal.setdefault(addr, []).append(cond)
            self._hook_code(addr)
        try:
            return self._run()
        finally:
            for addr, cond in targets.items():
                lst = self._internal.get(addr, [])
                if cond in lst:
                    lst.remove(cond)
                if not lst:
                    self._internal.pop(addr, None)
                self._unhook_code_if_unused(addr)

    def in_trap_glue(self) -> bool:
        """True if pc is in the trap vector or the trap-return code."""
        pc = self.machine.cpu.pc
        return any(s <= pc < e for s, e in self.glue())

    def finish(self, trap: bool | None = None) -> Stop:
        """Run until the current function returns, or - in the trap glue, at a
        held fault, or with trap=True - until the current trap returns (its
        sret). Returns the Stop."""
        m = self.machine
        if m.exit_status is not None:
            return self._exited()
        if trap is None:
            trap = m.traps.held_trap is not None or self.in_trap_glue() or (
                bool(self.traps) and self.symbols.lookup(m.cpu.pc) is None)
        if trap:
            return self._finish_trap()
        pc, sp = m.cpu.pc, m.cpu.reg("sp")
        nxt = caller_of(self.mem, self.symbols, pc, m.cpu.reg("ra"), m.cpu.reg("s0"))
        if nxt is None:
            raise DebugError(f"cannot find the caller of 0x{pc:x} (no symbol or frame)")
        ret = nxt[0]
        priv = m.cpu.priv
        fn = self.symbols.describe(pc).split("+")[0]

        def arrived() -> str | None:
            if m.cpu.reg("sp") >= sp and m.cpu.priv == priv:
                return f"returned from {fn} to 0x{ret:x}{self.where(ret)}"
            return None

        st = self._run_to({ret: arrived})
        if st.kind == "internal":
            st = self._stop(Stop("finish", st.pc, st.message))
        return st

    def _finish_trap(self) -> Stop:
        m = self.machine
        if m.traps.held_trap is not None:
            m.traps.deliver_held()
        if not self.traps:
            raise DebugError("not inside a trap handler (no trap is being handled)")
        rec = self.traps[-1]
        depth = len(self.traps)

        def at_sret() -> str | None:
            return "sret" if len(self.traps) == depth else None

        st = self._run_to({a: at_sret for a in self.srets})
        if st.kind != "internal":
            return st
        after = self._step1()         # execute the sret itself
        if after is not None:
            return after
        pc = m.cpu.pc
        again = " - the faulting instruction runs again" if pc == rec.epc and \
            rec.cause in FAULT_CAUSES else ""
        mode = "U" if m.cpu.priv == 0 else "S"
        return self._stop(Stop("finish", pc, f"returned from the {rec.name} trap to 0x{pc:x}"
                               f"{self.where(pc)}, {mode}-mode{again}"))

    def step_line(self, over: bool = False) -> Stop:
        """Step to the next source line (`step`), or over calls (`next`).
        Interrupts taken on the way are run to their return, transparently.
        Without line information at pc this is one `stepi`."""
        m = self.machine
        lines = self.lines
        assert lines is not None
        start = lines.lookup(m.cpu.pc)
        if start is None:
            st = self.stepi(1)
            st.message += " (no line information at pc: stepped one instruction)"
            return st
        key = (start.path, start.line)
        for _ in range(self.step_limit):
            pc = m.cpu.pc
            word = m.cpu.fetch_insn(pc)
            self._took_interrupt = False
            if over and word is not None and is_call(word) and m.traps.held_trap is None:
                sp, priv, ret = m.cpu.reg("sp"), m.cpu.priv, pc + 4

                def back(sp=sp, priv=priv) -> str | None:
                    ok = m.cpu.reg("sp") >= sp and m.cpu.priv == priv
                    return "returned" if ok else None

                st = self._run_to({ret: back})
                if st.kind != "internal":
                    return st
            else:
                st = self._step1()
                if st is not None:
                    return st
                if self._took_interrupt and self._entered is not None \
                        and self._entered.interrupt:
                    st = self._finish_trap()
                    if st.kind != "finish":
                        return st
            pc = m.cpu.pc
            loc = lines.lookup(pc)
            if loc is None:
                return self._step_stop(f"pc 0x{pc:x}{self.where(pc)}: left code "
                                       "with line information")
            if lines.is_stmt_start(pc) and (loc.path, loc.line) != key:
                return self._step_stop(f"{loc.short}: pc 0x{pc:x}"
                                       f"{self.where(pc)}")
        return self._stop(Stop("limit", m.cpu.pc, f"gave up after {self.step_limit} "
                               "instructions without reaching a new line"))

    # -- replay ------------------------------------------------------------------
    def run_to_fault(self, n: int) -> Stop:
        """Restart and stop before the delivery of the Nth page/access fault
        of the run. Returns the Stop (an exit if the run has fewer faults)."""
        if n < 1:
            raise DebugError("fault numbers start at 1")
        self._boot()
        self._replay_fault = n
        self._replaying = True
        try:
            while True:
                st = self._slice_or_interrupt()
                if st is not None:
                    return st
        finally:
            self._replay_fault = None
            self._replaying = False

    def run_to_insn(self, n: int) -> Stop:
        """Restart and stop when exactly `n` instructions have retired."""
        if n < 0:
            raise DebugError("instruction numbers start at 0")
        self._boot()
        m = self.machine
        cfg = m.config
        saved = cfg.slice_insns
        self._replaying = True
        try:
            while m.icount < n:
                rem = n - m.icount
                if rem > 1024:
                    # Whole slices, shortened so that the block crossing the
                    # budget (at most 512 instructions in QEMU) cannot overshoot.
                    cfg.slice_insns = min(saved, rem - 600)
                else:
                    cfg.slice_insns = saved
                    self._arm_step(rem)
                st = self._slice_or_interrupt()
                if st is not None:
                    return st
        finally:
            cfg.slice_insns = saved
            self._step_left = 0
            self._replaying = False
        pc = m.cpu.pc
        return self._stop(Stop("step", pc, f"run-to: instruction {n} reached, pc 0x{pc:x}"
                               f"{self.where(pc)}"))

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


def _offsets_overlap(off: int, size: int, addr: int, length: int) -> bool:
    """Could an access of `size` at page offset `off` touch [addr, addr+length)?
    Compares page offsets only (the physical and virtual offsets agree)."""
    if length >= 4096 or size >= 4096:
        return True
    a0 = addr & PAGE_MASK
    for base in (a0 - 4096, a0, a0 + 4096):   # ranges may straddle a page edge
        if off < base + length and base < off + size:
            return True
    return False
