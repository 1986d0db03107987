"""Trap delivery: the one routine that enters a trap handler, and the
bookkeeping around it - exceptions noticed inside a slice wait here until
emu_start returns, pending interrupts are chosen by priority, observers
(the debugger, tests) see every delivery.

Unicorn executes instructions; what the privileged spec says happens
*around* them when a trap is taken is done here, because unicorn hands
exceptions to us instead of taking them. `enter_trap` is written once,
driven by a TrapMode that names the target mode's CSRs and status bits, so
that M-mode joins as a second TrapMode rather than as a copy (privileged
spec v1.12, sections 3.1.6 "mstatus" and 4.1.1 "sstatus": xPP <- previous
privilege, xPIE <- xIE, xIE <- 0, xcause/xtval/xepc, pc <- xtvec; vectored
mode adds 4 x cause for interrupts only).

Layer: machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import unicorn as U
from unicorn import riscv_const as R

from emu.core import isa
from emu.machine.stats import Stats
from emu.machine.tracelog import TraceLog

if TYPE_CHECKING:
    from emu.machine.cpu import Cpu


class TrapMode(NamedTuple):
    """The registers and status bits a privilege level's traps use (a plain
    tuple, so that the compiled twin unpacks it in one step)."""

    priv: int          # the privilege the handler runs in
    status: int        # unicorn register ids
    cause: int
    tval: int
    epc: int
    tvec: int
    ie: int            # xIE bit of the status register
    pie: int           # xPIE bit
    pp_shift: int      # xPP field: previous privilege
    pp_bits: int


S_MODE = TrapMode(priv=1, status=R.UC_RISCV_REG_SSTATUS, cause=R.UC_RISCV_REG_SCAUSE,
                  tval=R.UC_RISCV_REG_STVAL, epc=R.UC_RISCV_REG_SEPC,
                  tvec=R.UC_RISCV_REG_STVEC, ie=isa.SSTATUS_SIE, pie=isa.SSTATUS_SPIE,
                  pp_shift=8, pp_bits=1)
M_MODE = TrapMode(priv=3, status=R.UC_RISCV_REG_MSTATUS, cause=R.UC_RISCV_REG_MCAUSE,
                  tval=R.UC_RISCV_REG_MTVAL, epc=R.UC_RISCV_REG_MEPC,
                  tvec=R.UC_RISCV_REG_MTVEC, ie=isa.MSTATUS_MIE, pie=isa.MSTATUS_MPIE,
                  pp_shift=isa.MSTATUS_MPP_SHIFT, pp_bits=2)
NO_IRQ = -1
SBI_REGS = tuple(R.UC_RISCV_REG_A0 + i for i in range(8))   # a0..a7


class TrapCore:
    """The register work of the trap path, written as the spec reads
    (pure-Python reference; fast/traps.pyx is its twin with the same names,
    which batches the register accesses through libunicorn's C API).

    Unicorn checks host CSR accesses against the current privilege, so every
    CSR access here is made with PRIV temporarily M (3).
    """

    def __init__(self, uc: U.Uc) -> None:
        self.uc = uc

    def install_intr(self, handler: Callable[[int], None], budget: object,
                     builtin_sbi: bool) -> None:
        """Serve UC_HOOK_INTR with handler(intno). (The compiled twin answers
        ecall and rdtime in C while set_intr_fast(True); this reference
        leaves every interrupt to `handler`, the readable path.)"""
        self.uc.hook_add(U.UC_HOOK_INTR, lambda _uc, intno, _user: handler(intno))

    def set_intr_fast(self, fast: bool) -> None:
        """The compiled twin's switch for its C ecall/rdtime path; nothing here."""

    def set_time(self, ns_per_insn: int, base_ns: int, delta: int) -> None:
        """What the compiled twin's C rdtime reads; nothing here (the
        handler asks the CLINT)."""

    def drain_intr(self) -> tuple[dict[int, int], int, int]:
        """({cause: n}, user traps, rdtime reads) handled without the
        handler since the last drain: none on this path."""
        return {}, 0, 0

    def csr(self, regid: int) -> int:
        """Read CSR `regid` (a unicorn register id)."""
        uc = self.uc
        p = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        v = uc.reg_read(regid)
        uc.reg_write(R.UC_RISCV_REG_PRIV, p)
        return v

    def set_csr(self, regid: int, value: int) -> None:
        """Write CSR `regid`."""
        uc = self.uc
        p = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        uc.reg_write(regid, value & isa.MASK64)
        uc.reg_write(R.UC_RISCV_REG_PRIV, p)

    def enter_trap(self, mode: TrapMode, cause: int, tval: int, epc: int,
                   interrupt: bool = False) -> int:
        """Take a trap into `mode` as the privileged spec describes; returns
        the new pc."""
        uc = self.uc
        prev = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        st = uc.reg_read(mode.status)
        pp_max = (1 << mode.pp_bits) - 1
        st = (st & ~(pp_max << mode.pp_shift)) | (min(prev, pp_max) << mode.pp_shift)
        st = (st & ~mode.pie) | (mode.pie if st & mode.ie else 0)
        st &= ~mode.ie
        uc.reg_write(mode.status, st)
        uc.reg_write(mode.cause, (isa.INTERRUPT_BIT if interrupt else 0) | cause)
        uc.reg_write(mode.tval, tval & isa.MASK64)
        uc.reg_write(mode.epc, epc & isa.MASK64)
        tvec = uc.reg_read(mode.tvec)
        uc.reg_write(R.UC_RISCV_REG_PRIV, mode.priv)
        base = tvec & ~3
        pc = (base + 4 * cause if (interrupt and tvec & 3 == 1) else base) & isa.MASK64
        uc.reg_write(R.UC_RISCV_REG_PC, pc)
        return pc

    def take_trap(self, cause: int, tval: int, epc: int, interrupt: bool = False) -> int:
        """Deliver a trap where the delegation registers send it: to S when
        the hart is in U or S and medeleg (exceptions) or mideleg
        (interrupts) has the cause's bit, else to M (privileged spec
        3.1.8). Returns the new pc."""
        priv = self.uc.reg_read(R.UC_RISCV_REG_PRIV)
        deleg = self.csr(R.UC_RISCV_REG_MIDELEG if interrupt else R.UC_RISCV_REG_MEDELEG)
        mode = S_MODE if priv <= 1 and deleg >> cause & 1 else M_MODE
        return self.enter_trap(mode, cause, tval, epc, interrupt)

    def mip(self) -> int:
        """mip as unicorn holds it: the bits software wrote (SSIP, STIP,
        SEIP); the device lines are the caller's."""
        return self.csr(R.UC_RISCV_REG_MIP)

    def enables(self) -> tuple[int, int]:
        """(mie, mideleg)."""
        return self.csr(R.UC_RISCV_REG_MIE), self.csr(R.UC_RISCV_REG_MIDELEG)

    def deliverable_irq(self, lines: int) -> int:
        """The interrupt the hart takes now, or NO_IRQ (privileged spec
        3.1.9). Pending = the device `lines` | the software-written mip bits;
        of those mie enables, the ones mideleg does not delegate go to M and
        are taken below M, or in M with mstatus.MIE; the delegated ones go to
        S and are taken in U, or in S with sstatus.SIE, never in M. M's
        come first, each side in its priority order."""
        pending = (lines | self.mip()) & self.csr(R.UC_RISCV_REG_MIE)
        if not pending:
            return NO_IRQ
        mideleg = self.csr(R.UC_RISCV_REG_MIDELEG)
        priv = self.uc.reg_read(R.UC_RISCV_REG_PRIV)
        status = self.csr(R.UC_RISCV_REG_MSTATUS)
        to_m = pending & ~mideleg
        if to_m and (priv < 3 or status & isa.MSTATUS_MIE):
            for irq in isa.M_IRQ_PRIORITY:
                if to_m >> irq & 1:
                    return irq
        to_s = pending & mideleg
        if to_s and (priv == 0 or (priv == 1 and status & isa.SSTATUS_SIE)):
            for irq in isa.S_IRQ_PRIORITY:
                if to_s >> irq & 1:
                    return irq
        return NO_IRQ

    def run(self, pc: int) -> int:
        """emu_start at `pc` (the engine has no exit address: emu/machine/cpu.py).
        Returns 0, or unicorn's error code when it stopped on one; an
        exception a Python hook kept is raised."""
        try:
            self.uc.emu_start(pc, 0)
        except U.UcError as exc:
            return exc.errno
        return 0

    def pc_priv(self) -> tuple[int, int]:
        """(pc, privilege) now."""
        return self.uc.reg_read(R.UC_RISCV_REG_PC), self.uc.reg_read(R.UC_RISCV_REG_PRIV)

    def gpr(self, n: int) -> int:
        """x[n] (0 <= n < 32)."""
        if not 0 <= n < 32:
            raise ValueError(f"no register x{n}")
        return self.uc.reg_read(R.UC_RISCV_REG_X0 + n)

    def sbi_args(self) -> tuple[int, ...]:
        """a0..a7 of an SBI call."""
        return tuple(self.uc.reg_read(r) for r in SBI_REGS)

    def sbi_return(self, a0: int, a1: int | None) -> None:
        """Set an SBI call's results (a1 untouched when None)."""
        self.uc.reg_write(R.UC_RISCV_REG_A0, a0 & isa.MASK64)
        if a1 is not None:
            self.uc.reg_write(R.UC_RISCV_REG_A1, a1 & isa.MASK64)


@dataclass
class PendingTrap:
    """An exception noticed inside a hook, delivered after emu_start returns."""

    cause: int
    tval: int
    epc: int


class Traps:
    """Pending exceptions and interrupts of one hart, and their delivery.

    `lines` holds the pending interrupt bits the devices drive (mip bit
    positions: MSIP/MTIP from the CLINT, MEIP/SEIP from the PLIC's M and S
    contexts, STIP from the built-in firmware's timer); the bits software
    writes to mip (SSIP, STIP, SEIP) live in the CPU. `on_trap` observers
    are called (cause, tval, epc, interrupt) after each delivery.
    `hold_trap(cause, tval, epc)`, if set, is asked about every exception
    before delivery; True keeps it in `held_trap` with pc still on the
    faulting instruction (the debugger's fault breakpoints).
    """

    def __init__(self, cpu: Cpu, stats: Stats, log: TraceLog) -> None:
        self.cpu = cpu
        self.stats = stats
        self.log = log
        self.lines = 0
        self.pending: PendingTrap | None = None
        self.on_trap: list[Callable[[int, int, int, bool], None]] = []
        self.hold_trap: Callable[[int, int, int], bool] | None = None
        self.held_trap: PendingTrap | None = None

    # -- interrupt lines -----------------------------------------------------
    def set_line(self, irq: int, level: bool) -> None:
        """Drive the hart's interrupt line `irq` (a mip bit number)."""
        lines = (self.lines | (1 << irq)) if level else (self.lines & ~(1 << irq))
        if lines != self.lines:
            self.lines = lines
            self.arm()

    def set_stip(self, level: bool) -> None:
        """The built-in firmware's timer drives STIP."""
        self.set_line(isa.IRQ_S_TIMER, level)

    def set_seip(self, level: bool) -> None:
        """The PLIC's S context drives SEIP."""
        self.set_line(isa.IRQ_S_EXT, level)

    def set_meip(self, level: bool) -> None:
        """The PLIC's M context drives MEIP."""
        self.set_line(isa.IRQ_M_EXT, level)

    def set_mtip(self, level: bool) -> None:
        """The CLINT's timer drives MTIP."""
        self.set_line(isa.IRQ_M_TIMER, level)

    def set_msip(self, level: bool) -> None:
        """The CLINT's msip drives MSIP."""
        self.set_line(isa.IRQ_M_SOFT, level)

    def arm(self) -> None:
        """Give the budget hook the interrupt state as it is now, so that it
        stops the CPU at the first block boundary where an interrupt is
        deliverable (emu/machine/budget.py)."""
        core = self.cpu.core
        mie, mideleg = core.enables()
        pc, priv = core.pc_priv()
        self.cpu.budget.set_irq_state(self.lines, core.mip(), mie, mideleg, priv == isa.PRIV_M)

    def deliverable_irq(self) -> int | None:
        """Return the interrupt the hart takes now, or None."""
        irq = self.cpu.core.deliverable_irq(self.lines)
        return None if irq == NO_IRQ else irq

    # -- exceptions ----------------------------------------------------------
    def raise_(self, cause: int, tval: int, epc: int) -> None:
        """An exception noticed inside a hook: stop the CPU, deliver it after
        emu_start returns."""
        self.pending = PendingTrap(cause, tval, epc)
        self.cpu.uc.emu_stop()

    def deliver(self, cause: int, tval: int, epc: int, interrupt: bool = False) -> None:
        """Enter the guest's trap handler for `cause` - in S or M, as the
        delegation registers say - and count it."""
        if interrupt:
            self.stats.interrupts[cause] = self.stats.interrupts.get(cause, 0) + 1
        else:
            self.stats.traps[cause] = self.stats.traps.get(cause, 0) + 1
        prev = self.cpu.priv
        if prev == 0:
            self.stats.user_traps += 1
        self.log.trap(cause, interrupt, epc, tval)
        self.cpu.core.take_trap(cause, tval, epc, interrupt)
        self.arm()                  # the privilege and the enables changed
        for cb in self.on_trap:
            cb(cause, tval, epc, interrupt)

    def fast_path_ok(self) -> bool:
        """May the compiled trap path deliver ecalls and answer rdtime in its
        C hook (TrapCore.set_intr_fast)? Not while anything watches traps:
        an on_trap observer, a held trap, the `int` log."""
        return not self.on_trap and self.hold_trap is None and not self.log.enabled("int")

    def count_fast(self, delivered: dict[int, int], user: int, rdtime_reads: int) -> None:
        """Add what the C hook handled (TrapCore.drain_intr) to the stats."""
        traps = self.stats.traps
        for cause, n in delivered.items():
            traps[cause] = traps.get(cause, 0) + n
        self.stats.user_traps += user
        self.stats.emulated_csr_reads += rdtime_reads

    def note_native(self) -> None:
        """Unicorn took an interrupt itself (a mip bit software wrote; see
        emu/machine/budget.py): count, log and report it as a delivery."""
        cpu = self.cpu
        priv = cpu.priv
        m = priv == isa.PRIV_M
        cause = cpu.csr("mcause" if m else "scause")
        epc = cpu.csr("mepc" if m else "sepc")
        tval = cpu.csr("mtval" if m else "stval")
        status = cpu.csr("mstatus")
        prev = ((status >> isa.MSTATUS_MPP_SHIFT) & 3 if m
                else int(bool(status & isa.SSTATUS_SPP)))
        interrupt = bool(cause >> 63)
        code = cause & ~(1 << 63)
        counts = self.stats.interrupts if interrupt else self.stats.traps
        counts[code] = counts.get(code, 0) + 1
        if prev == 0:
            self.stats.user_traps += 1
        self.log.trap(code, interrupt, epc, tval)
        self.arm()
        for cb in self.on_trap:
            cb(code, tval, epc, interrupt)

    def deliver_held(self) -> bool:
        """Deliver the exception hold_trap kept back (a debugger stepping into
        the handler). Returns False if no trap was held."""
        t, self.held_trap = self.held_trap, None
        if t is None:
            return False
        self.deliver(t.cause, t.tval, t.epc)
        return True

    def take_pending(self, running: bool) -> bool:
        """At a slice end: deliver the pending exception, then a deliverable
        interrupt if the guest is still `running`. Returns True, delivering
        nothing, when hold_trap kept the exception back."""
        if self.pending is not None:
            t, self.pending = self.pending, None
            if self.hold_trap is not None and self.hold_trap(t.cause, t.tval, t.epc):
                self.held_trap = t   # delivered by deliver_held() or the next slice
                return True
            self.deliver(t.cause, t.tval, t.epc)
        budget = self.cpu.budget
        if running and (self.lines or budget.umip):
            irq = self.deliverable_irq()
            if irq is not None:
                self.deliver(irq, 0, self.cpu.pc, interrupt=True)
            elif budget.irq_stop:
                self.arm()          # the hook's view was stale (a bit software cleared)
        return False

    def waiting(self) -> bool:
        """True if an enabled interrupt is pending, whatever the global
        enables say: what ends a `wfi` (privileged spec 3.3.3)."""
        mie, _ = self.cpu.core.enables()
        return bool((self.lines | self.cpu.core.mip()) & mie)
