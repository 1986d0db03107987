"""Breakpoints of the debugger's run control: code and hw breakpoints,
watchpoints and fault breakpoints, and the unicorn hooks behind them.
Mixed into Controller (control.py), whose state it shares.

Mechanisms (unicorn 2.1.4 facts checked on this project, NOTES.md section 4):

- Code breakpoints are UC_HOOK_CODE hooks on exactly one address. A hook
  only reaches code translated after it was added, so every change flushes
  the translation-block cache. `emu_stop()` inside the hook stops *before*
  the instruction, pc precise; the machine is told (`loop.stop_requested`)
  so it uncounts the rest of the block.
- Watchpoints: in UC_TLB_VIRTUAL mode memory hooks receive *physical*
  addresses, and `emu_stop()` in them aborts the access with pc still on the
  instruction. So one hook watches all accesses; a cheap page-offset test
  filters, then the virtual address is recomputed from the instruction
  (rs1 + imm) and compared with the watched range. On a hit the aborted
  instruction is re-run once with watchpoints suspended, so the stop is
  reported after the access, as gdb expects (RISC-V has no "non-steppable"
  watchpoints) and as QEMU's gdbstub does.
- Fault breakpoints use the machine's `traps.hold_trap` hook: the exception
  is kept back with pc on the faulting instruction, before scause/sepc
  change. Stepping from there delivers it: the next pc is the trap vector,
  exactly what `stepi` on a faulting instruction does on hardware.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import unicorn as U
from unicorn import riscv_const as R

from emu.core.isa import MASK64, access_address
from emu.debug.faults import ACCESS_OF_CAUSE, FAULT_CAUSES, FaultFilter, FaultInfo
from emu.debug.stops import WATCH_KINDS, Breakpoint, DebugError, Stop
from emu.guestview.kproc import kernel_of
from emu.mmu.pte import PAGE_MASK


class Breakpoints:
    """The breakpoint table and its hooks (a part of Controller)."""

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
