"""Why unicorn stopped, or called us back, turned into what the guest sees.

- UC_HOOK_INTR (pc 4 past the instruction, whatever its length): ecall from
  S is an SBI call answered in the hook without stopping when the built-in
  firmware plays M-mode (-bios default), else a trap like ecall from U or M;
  `csrr rd, time` traps as an illegal instruction in unicorn (it has no time
  source; QEMU's virt gives the CLINT's mtime) and is completed with the
  CLINT's mtime where the counter-enable registers let the hart read it, so
  the guest sees what it sees on QEMU; anything else becomes a pending
  trap, delivered after emu_start returns.
- emu_start's errors (pc precise): a TLB fill our Sv39 walker refused is a
  page fault with stval the exact address; an invalid instruction is a
  breakpoint (ebreak) or an illegal instruction; unmapped or protected
  accesses are access faults.

Layer: machine.
"""

from __future__ import annotations

from collections.abc import Callable

import unicorn as U
from unicorn import riscv_const as R

from emu.core import isa
from emu.machine.cpu import Cpu
from emu.machine.firmware import SBI_ERR_NOT_SUPPORTED, Firmware
from emu.machine.stats import Stats
from emu.machine.tracelog import TraceLog
from emu.machine.traps import PendingTrap, Traps


class MachineError(Exception):
    """The emulator itself failed (a host-side bug or a hook exception)."""


_ACCESS_FAULT = {U.UC_ERR_READ_UNMAPPED: isa.CAUSE_LOAD_ACCESS,
                 U.UC_ERR_WRITE_UNMAPPED: isa.CAUSE_STORE_ACCESS,
                 U.UC_ERR_FETCH_UNMAPPED: isa.CAUSE_FETCH_ACCESS,
                 U.UC_ERR_READ_PROT: isa.CAUSE_LOAD_ACCESS,
                 U.UC_ERR_WRITE_PROT: isa.CAUSE_STORE_ACCESS,
                 U.UC_ERR_FETCH_PROT: isa.CAUSE_FETCH_ACCESS}
SBI_NOT_SUPPORTED = SBI_ERR_NOT_SUPPORTED & isa.MASK64
_ECALL_CAUSE = {isa.PRIV_U: isa.CAUSE_ECALL_U, isa.PRIV_S: isa.CAUSE_ECALL_S,
                isa.PRIV_M: isa.CAUSE_ECALL_M}
_AMO_STORE_CAUSE = {isa.CAUSE_LOAD_PAGE_FAULT: isa.CAUSE_STORE_PAGE_FAULT,
                    isa.CAUSE_LOAD_ACCESS: isa.CAUSE_STORE_ACCESS}


class Exits:
    """Interprets the CPU's exits for one machine.

    `mtime()` is the CLINT's time (what rdtime reads); `hook_failed(exc)`
    records an exception raised inside a hook and stops the CPU (it must
    not unwind through unicorn).
    """

    def __init__(self, cpu: Cpu, traps: Traps, stats: Stats, firmware: Firmware,
                 log: TraceLog, mtime: Callable[[], int],
                 hook_failed: Callable[[BaseException], None],
                 builtin_sbi: bool = True) -> None:
        self.cpu = cpu
        self.traps = traps
        self.stats = stats
        self.firmware = firmware
        self.log = log
        self.mtime = mtime
        self.hook_failed = hook_failed
        self.builtin_sbi = builtin_sbi
        cpu.core.install_intr(self._on_intr, cpu.budget, builtin_sbi)

    # -- UC_HOOK_INTR ----------------------------------------------------------
    def _on_intr(self, intno: int) -> None:
        try:
            self._handle_intr(self.cpu.uc, intno)
        except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
            self.hook_failed(exc)

    def _handle_intr(self, uc: U.Uc, intno: int) -> None:
        # Unicorn has already moved pc past the instruction that raised.
        pc = uc.reg_read(R.UC_RISCV_REG_PC)
        epc = pc - 4
        self.cpu.budget.retract_after(pc)
        if intno == isa.CAUSE_ECALL_U:
            # unicorn reports every ecall as 8; the cause is ecall from U, S or M
            priv = uc.reg_read(R.UC_RISCV_REG_PRIV)
            if priv == isa.PRIV_S and self.builtin_sbi:
                self._sbi(uc)
                return
            self.traps.raise_(_ECALL_CAUSE[priv], 0, epc)
            return
        if intno == isa.CAUSE_ILLEGAL_INSN:
            insn = self.cpu.fetch_insn(epc)
            rd = isa.rdtime_rd(insn) if insn is not None else None
            if rd is not None and self._time_readable(uc.reg_read(R.UC_RISCV_REG_PRIV)):
                # (cycle and instret do not trap in unicorn 2.1.4: QEMU answers
                # them from the host's cycle counter - see docs/firmware.md.)
                self.cpu.set_reg(f"x{rd}", self.mtime())
                self.stats.emulated_csr_reads += 1
                return
            self.traps.raise_(isa.CAUSE_ILLEGAL_INSN, insn or 0, epc)
            return
        self.traps.raise_(intno, 0, epc)

    def _sbi(self, uc: U.Uc) -> None:
        self.stats.sbi_calls += 1
        core = self.cpu.core
        *a, fid, eid = core.sbi_args()
        a0, a1 = self.firmware.call(eid, fid, a)
        self.log("sbi", f"eid=0x{eid:x} fid={fid} a0=0x{a[0]:x} -> {a0:#x}")
        if a0 == SBI_NOT_SUPPORTED:
            self.log("unimp", f"SBI call eid=0x{eid:x} fid={fid} is not implemented "
                     f"(SBI_ERR_NOT_SUPPORTED)")
        core.sbi_return(a0, a1)

    def _time_readable(self, priv: int) -> bool:
        """May a hart at `priv` read the time CSR? M always; S if
        mcounteren.TM; U if mcounteren.TM and scounteren.TM (privileged
        spec, "Counter-Enable Registers")."""
        if priv == isa.PRIV_M:
            return True
        cpu = self.cpu
        if not cpu.csr("mcounteren") & isa.COUNTEREN_TM:
            return False
        return priv == isa.PRIV_S or bool(cpu.csr("scounteren") & isa.COUNTEREN_TM)

    # -- emu_start's errors ------------------------------------------------------
    def handle_error(self, err: int, pc: int, faults_before: int) -> None:
        """emu_start failed with unicorn error code `err` at `pc`: make it the
        pending trap.
        `faults_before` is the fill hook's fault count when the slice began.
        Raises MachineError for a stop no guest trap explains."""
        mmu = self.cpu.mmu
        if err == U.UC_ERR_EXCEPTION and mmu.faults != faults_before:
            if self.cpu.budget.satp_warl():
                # the fill failed on a satp MODE the walker lacks, written by
                # the block before, whose fault came before the budget's own
                # check: undo the write and run again (budget.py, _satp_warl)
                self.log("mmu", f"satp MODE write ignored (Sv39 hart), pc=0x{pc:x}")
                return
            cause, va = self.fault_address(mmu.fault_cause, pc, mmu.fault_vaddr)
            self.stats.page_faults[cause] = self.stats.page_faults.get(cause, 0) + 1
            self.log("mmu", f"fault cause={cause} va=0x{va:x} pc=0x{pc:x}")
            self.traps.pending = PendingTrap(cause, va, pc)
            return
        if err == U.UC_ERR_INSN_INVALID:
            insn = self.cpu.fetch_insn(pc)
            if insn == isa.INSN_EBREAK:
                self.traps.pending = PendingTrap(isa.CAUSE_BREAKPOINT, pc, pc)
            else:
                self.traps.pending = PendingTrap(isa.CAUSE_ILLEGAL_INSN, insn or 0, pc)
            return
        access = _ACCESS_FAULT.get(err)
        if access is not None:
            self.log("mmu", f"fault cause={access} pc=0x{pc:x}: the physical address has "
                     "no RAM and no device")
            self.log("guest_errors", f"{isa.CAUSE_NAMES[access]} at pc 0x{pc:x}: "
                     "no RAM and no device there")
            self.traps.pending = PendingTrap(access, 0, pc)
            return
        raise MachineError(f"unicorn stopped at pc=0x{pc:x}: {U.UcError(err)}")

    def fault_address(self, cause: int, pc: int, page: int) -> tuple[int, int]:
        """Return (scause, stval) for a fault the fill hook saw on page `page`.

        Unicorn asks for fills by page, but the spec wants the faulting
        address itself: pc for a fetch, rs1 + offset of the load, store or
        AMO at pc for data accesses (its base register still holds the
        original value: the instruction did not execute). Falls back to
        `page` when the access straddles into it from the previous page.
        An AMO (other than LR) that faults on its read half raises the
        store/AMO cause, as the spec requires.
        """
        if cause in (isa.CAUSE_FETCH_PAGE_FAULT, isa.CAUSE_FETCH_ACCESS):
            return cause, (pc if pc & ~0xFFF == page & ~0xFFF else page)
        insn = self.cpu.fetch_insn(pc)
        if insn is None:
            return cause, page
        if isa.is_amo_store(insn):
            cause = _AMO_STORE_CAUSE.get(cause, cause)
        addr = isa.access_address(insn, self.cpu.core.gpr)
        if addr is None:
            return cause, page
        return cause, (addr if addr & ~0xFFF == page & ~0xFFF else page)
