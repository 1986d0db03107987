"""Stepping in the debugger's run control: stepi, step/next by source line,
finish (out of a function or out of a trap), and running to temporary
internal stops. Mixed into Controller (control.py), whose state it shares.

Stepping uses an all-address code hook that lets exactly N instructions
run, not emu_start(count=): blocks translated earlier ignore the count in
unicorn 2.1.4. Interrupts taken while stepping by line are run to their
return, transparently.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from collections.abc import Callable

import unicorn as U

from emu.debug.disasm import insn_size, is_call
from emu.debug.faults import FAULT_CAUSES
from emu.debug.frames import caller_of
from emu.debug.stops import DebugError, Stop


class Stepping:
    """stepi / step / next / finish (a part of Controller)."""

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
                sp, priv, ret = m.cpu.reg("sp"), m.cpu.priv, pc + insn_size(word)

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
