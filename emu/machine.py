"""The machine: assembles RAM, CPU, MMU, firmware, devices and clock, and
runs the guest in time slices.

Run loop (one slice): arm the instruction budget up to the next event (or the
slice length), emu_start, then look at why the CPU stopped - budget spent,
an exception unicorn handed us (page fault from our fill hook, ecall,
illegal instruction, breakpoint), wfi, or a shutdown request - advance
virtual time, fire due events, deliver a pending trap or interrupt, repeat.

Virtual time = retired instructions x ns_per_insn + time skipped in wfi.
Nothing reads the wall clock except the MIPS figure of the report.
"""

from __future__ import annotations

import os
import select
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import unicorn as U
from unicorn import riscv_const as R

from emu import platform
from emu.clock import Clock
from emu.config import MachineConfig
from emu.cpu import SIP_SEIP, SIP_STIP, SSTATUS_MXR, SSTATUS_SIE, SSTATUS_SUM, UNTIL, Cpu
from emu.devices.nic import Nic
from emu.devices.plic import Plic
from emu.devices.timer import Timer
from emu.devices.uart import Uart
from emu.firmware import Firmware
from emu.loader import Image, load_elf
from emu.memory import PhysMem
from emu.net.network import NetConfig, Network

INSN_WFI = 0x1050_0073
INSN_EBREAK = 0x0010_0073
CSR_TIME = 0xC01

EXIT_MAX_INSNS = 124
EXIT_IDLE_FOREVER = 125


def _sext12(v: int) -> int:
    v &= 0xFFF
    return v - 0x1000 if v & 0x800 else v


class MachineError(Exception):
    """The emulator itself failed (a host-side bug or a hook exception)."""


@dataclass
class Stats:
    """Counters of a run; report.py turns them into the report and JSON."""

    traps: dict[int, int] = field(default_factory=dict)
    interrupts: dict[int, int] = field(default_factory=dict)
    page_faults: dict[int, int] = field(default_factory=dict)
    sbi_calls: int = 0
    user_slices: int = 0       # slices that ended with the hart in U-mode
    user_traps: int = 0        # traps taken from U-mode
    emulated_csr_reads: int = 0
    wfi: int = 0
    idle_ns: int = 0
    slices: int = 0
    wall_s: float = 0.0


@dataclass
class PendingTrap:
    """An exception noticed inside a hook, delivered after emu_start returns."""

    cause: int
    tval: int
    epc: int


class Machine:
    """One emu machine built from a MachineConfig and a kernel ELF.

    After run(), `exit_status` holds the status for the shell (guest
    shutdown status, 124 when --max-insns ran out, 125 when the guest waits
    forever), `console` everything it printed.
    """

    def __init__(self, config: MachineConfig, console: IO[bytes] | None = None,
                 kernel: str | None = None) -> None:
        config.validate()
        self.config = config
        self.mem = PhysMem(platform.RAM_BASE, config.ram_size)
        self.clock = Clock()
        self.cpu = Cpu(self.mem, config.mmu, config.budget)
        self.stats = Stats()
        self.console_out = console
        self.console = bytearray()
        self.sip = 0
        self.exit_status: int | None = None
        self.stop_reason = ""
        self._pending: PendingTrap | None = None
        self._hook_error: BaseException | None = None
        self._running = False
        self._faults_before = 0
        self._flush_tb = self._flush_tlb = False
        self.idle_ns = 0
        self.stdin_fd: int | None = None   # host stdin feeding the UART (interactive runs)
        self.on_trap: list[Callable[[int, int, int, bool], None]] = []
        self.after_slice: list[Callable[[], None]] = []   # observers: timeline, progress
        # Debugger hook points (emu/debug, docs/debugging.md). A hook that stops
        # the CPU sets stop_requested before uc.emu_stop(), so the slice is
        # accounted as ending mid-block. hold_trap(cause, tval, epc), if set, is
        # asked about every exception before delivery; True keeps it in
        # held_trap with pc still on the faulting instruction.
        self.stop_requested = False
        self.hold_trap: Callable[[int, int, int], bool] | None = None
        self.held_trap: PendingTrap | None = None
        self._log: IO[str] | None = None
        if config.debug:
            self._log = open(config.debug_file, "w") if config.debug_file else sys.stderr

        self.plic = Plic(self._set_seip)
        self.uart = Uart(self.plic.line(platform.IRQ_UART), self._console_write)
        self.timer = Timer(self.clock, self.now, self._set_stip)
        self.nic = Nic(self.mem, self.plic.line(platform.IRQ_NIC), self.clock,
                       mac=config.mac, mtu=config.mtu)
        self.devices = [self.plic, self.uart, self.timer, self.nic]
        netcfg = config.net or NetConfig(seed=config.seed, mtu=config.mtu)
        self.network = Network(self.clock, netcfg)
        self.nic.transmit = self.network.attach_guest(self.nic, config.mac).send
        for dev in self.devices:
            self.map_device(dev)
        self.firmware = Firmware(
            console_write=self._console_write, console_read=self._console_read,
            set_timer=self.timer.set_timer, read_phys=self._read_phys,
            write_phys=self._write_phys, shutdown=self._shutdown,
            fence_i=self._request_tb_flush, sfence_vma=self._request_tlb_flush)
        self.cpu.uc.hook_add(U.UC_HOOK_INTR, self._on_intr)

        path = kernel or config.kernel
        if path is None:
            from emu.guest import default_kernel
            path = default_kernel()
        self.image: Image = load_elf(path, self.mem)
        self._write_bootinfo()
        self.cpu.set_reg("a0", 0)
        self.cpu.set_reg("a1", platform.BOOTINFO_ADDR)
        self.cpu.set_csr("satp", 0)
        self.cpu.priv = 1
        self.cpu.pc = self.image.entry

    # -- wiring ------------------------------------------------------------
    def map_device(self, dev) -> None:
        """Map `dev` (bus.Device) into the physical address space."""
        def rd(_uc: U.Uc, offset: int, size: int, _user: object) -> int:
            try:
                return dev.read(offset, size)
            except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
                self._hook_failed(exc)
                return 0

        def wr(_uc: U.Uc, offset: int, size: int, value: int, _user: object) -> None:
            try:
                dev.write(offset, size, value)
            except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
                self._hook_failed(exc)

        self.cpu.uc.mmio_map(dev.base, dev.size, rd, None, wr, None)

    def _write_bootinfo(self) -> None:
        cmd = self.config.append.encode()
        hdr = struct.pack("<8Q", platform.BOOTINFO_MAGIC, 1, self.mem.base, self.mem.size,
                          platform.TIMEBASE_HZ, 0, self.config.seed, len(cmd))
        self.mem.write(platform.BOOTINFO_ADDR, hdr)
        self.mem.write(platform.BOOTINFO_ADDR + platform.BOOTINFO_CMDLINE_OFF, cmd + b"\0")

    # -- time --------------------------------------------------------------
    @property
    def icount(self) -> int:
        """Instructions retired so far."""
        return self.cpu.budget.icount

    def now(self) -> int:
        """Current virtual time in ns (exact to the current block)."""
        return self.cpu.budget.icount * self.config.ns_per_insn + self.idle_ns

    # -- device side effects ----------------------------------------------
    def _console_write(self, data: bytes) -> None:
        self.console += data
        if self.console_out is not None:
            self.console_out.write(data)

    def _console_read(self) -> int | None:
        return self.uart.rx.popleft() if self.uart.rx else None

    def _read_phys(self, pa: int, n: int) -> bytes | None:
        return self.mem.read(pa, n) if self.mem.contains(pa, n) else None

    def _write_phys(self, pa: int, data: bytes) -> bool:
        if not self.mem.contains(pa, len(data)):
            return False
        self.mem.write(pa, data)
        return True

    def _shutdown(self, status: int) -> None:
        self.exit_status = status
        self.stop_reason = f"guest shutdown (status {status})"
        if self._running:
            self.cpu.uc.emu_stop()

    def _request_tb_flush(self) -> None:
        """SBI remote_fence_i: unicorn does not always notice code the guest
        rewrote through another mapping, so drop all translated code. Done
        after emu_start returns: never flush under a running block."""
        self._flush_tb = True
        if self._running:
            self.cpu.uc.emu_stop()

    def _request_tlb_flush(self) -> None:
        self._flush_tlb = True
        if self._running:
            self.cpu.uc.emu_stop()

    def _set_stip(self, level: bool) -> None:
        self._set_sip((self.sip | SIP_STIP) if level else (self.sip & ~SIP_STIP))

    def _set_seip(self, level: bool) -> None:
        self._set_sip((self.sip | SIP_SEIP) if level else (self.sip & ~SIP_SEIP))

    def _set_sip(self, sip: int) -> None:
        """Record the pending interrupts; the budget hook stops the CPU at the
        first block boundary where one is deliverable."""
        if sip != self.sip:
            self.sip = sip
            self.cpu.budget.set_sip(sip, self.cpu.csr("sie") if sip else 0)

    def _hook_failed(self, exc: BaseException) -> None:
        if self._hook_error is None:
            self._hook_error = exc
        self.cpu.uc.emu_stop()

    def log(self, topic: str, msg: str) -> None:
        """Write a -d log line for `topic` if that topic is enabled."""
        if self._log is not None and topic in self.config.debug:
            self._log.write(f"[{self.now():>14}ns] {topic}: {msg}\n")

    # -- instruction access -------------------------------------------------
    def fetch_insn(self, va: int) -> int | None:
        """Return the 32-bit instruction at virtual `va` (no A/D side effects),
        or None if it cannot be translated or lies outside RAM."""
        from emu.mmu import PageFault, translate
        cpu = self.cpu
        priv = cpu.priv
        try:
            pa = translate(self.mem.buf, self.mem.base, cpu.csr("satp") if priv < 3 else 0,
                           va, "fetch", min(priv, 1), update_ad=False)
        except PageFault:
            return None
        if not self.mem.contains(pa, 4):
            return None
        return self.mem.read_u32(pa)

    # -- exceptions from unicorn ---------------------------------------------
    def _on_intr(self, uc: U.Uc, intno: int, _user: object) -> None:
        try:
            self._handle_intr(uc, intno)
        except Exception as exc:  # noqa: BLE001 - surfaced after emu_start
            self._hook_failed(exc)

    def _handle_intr(self, uc: U.Uc, intno: int) -> None:
        # Unicorn has already moved pc past the instruction that raised.
        pc = uc.reg_read(R.UC_RISCV_REG_PC)
        epc = pc - 4
        self.cpu.budget.retract_after(pc)
        if intno == platform.CAUSE_ECALL_U:
            if uc.reg_read(R.UC_RISCV_REG_PRIV) == 1:
                self._sbi(uc)
                return
            self._raise(platform.CAUSE_ECALL_U, 0, epc)
            return
        if intno == platform.CAUSE_ILLEGAL_INSN:
            insn = self.fetch_insn(epc)
            if insn is not None and self._emulate_counter(uc, insn):
                return
            self._raise(platform.CAUSE_ILLEGAL_INSN, insn or 0, epc)
            return
        self._raise(intno, 0, epc)

    def _raise(self, cause: int, tval: int, epc: int) -> None:
        self._pending = PendingTrap(cause, tval, epc)
        self.cpu.uc.emu_stop()

    def _emulate_counter(self, uc: U.Uc, insn: int) -> bool:
        """Answer `csrr rd, time` (it traps: unicorn has no time source) from
        virtual time, as OpenSBI emulates rdtime. Returns True if `insn` was
        such a read and has been completed.

        (cycle and instret do not trap in unicorn 2.1.4: QEMU answers them
        from the host's cycle counter - see docs/firmware.md.)"""
        opcode, funct3, rs1, csr = insn & 0x7F, (insn >> 12) & 7, (insn >> 15) & 31, insn >> 20
        if opcode != 0x73 or funct3 != 2 or rs1 != 0 or csr != CSR_TIME:
            return False
        value = self.now()
        rd = (insn >> 7) & 31
        if rd:
            uc.reg_write(R.UC_RISCV_REG_X0 + rd, value)
        self.stats.emulated_csr_reads += 1
        return True

    def _sbi(self, uc: U.Uc) -> None:
        self.stats.sbi_calls += 1
        a = [uc.reg_read(R.UC_RISCV_REG_A0 + i) for i in range(6)]
        eid, fid = uc.reg_read(R.UC_RISCV_REG_A7), uc.reg_read(R.UC_RISCV_REG_A6)
        a0, a1 = self.firmware.call(eid, fid, a)
        self.log("sbi", f"eid=0x{eid:x} fid={fid} a0=0x{a[0]:x} -> {a0:#x}")
        uc.reg_write(R.UC_RISCV_REG_A0, a0)
        if a1 is not None:
            uc.reg_write(R.UC_RISCV_REG_A1, a1)
        if eid in (0x00, 0x54494D45):   # the next event moved: re-plan the slice
            budget = self.cpu.budget
            budget.set_stop(min(budget.stop_at, budget.icount + self._plan_budget()))

    # -- the run loop ------------------------------------------------------
    def deliver_trap(self, cause: int, tval: int, epc: int, interrupt: bool = False) -> None:
        """Enter the guest's trap handler for `cause` and count it."""
        if interrupt:
            self.stats.interrupts[cause] = self.stats.interrupts.get(cause, 0) + 1
        else:
            self.stats.traps[cause] = self.stats.traps.get(cause, 0) + 1
        prev = self.cpu.priv
        if prev == 0:
            self.stats.user_traps += 1
        newpc = self.cpu.enter_trap(cause, tval, epc, interrupt)
        names = platform.INTERRUPT_NAMES if interrupt else platform.CAUSE_NAMES
        self.log("int", f"{'interrupt' if interrupt else 'exception'} cause={cause} "
                 f"({names.get(cause, '?')}) "
                 f"epc=0x{epc:x} tval=0x{tval:x} priv={prev} -> pc=0x{newpc:x}")
        for cb in self.on_trap:
            cb(cause, tval, epc, interrupt)

    def deliver_held_trap(self) -> bool:
        """Deliver the exception hold_trap kept back (a debugger stepping into
        the handler). Returns False if no trap was held."""
        t, self.held_trap = self.held_trap, None
        if t is None:
            return False
        self.deliver_trap(t.cause, t.tval, t.epc)
        return True

    def _deliverable_irq(self) -> int | None:
        """Return the highest-priority pending-and-enabled interrupt, or None."""
        if not self.sip:
            return None
        pending = self.sip & self.cpu.csr("sie")
        if not pending:
            return None
        if self.cpu.priv == 1 and not self.cpu.csr("sstatus") & SSTATUS_SIE:
            return None
        for irq in (platform.IRQ_S_EXT, platform.IRQ_S_SOFT, platform.IRQ_S_TIMER):
            if pending >> irq & 1:
                return irq
        return None

    def _plan_budget(self) -> int:
        ns = self.config.ns_per_insn
        n = self.config.slice_insns
        nxt = self.clock.next_time()
        if nxt is not None:
            n = min(n, max(1, -(-(nxt - self.now()) // ns)))
        if self.config.max_insns is not None:
            n = min(n, max(1, self.config.max_insns - self.icount))
        return n

    def run_slice(self) -> None:
        """Run one slice and handle why it ended (see module docstring).

        (Single-stepping is the debugger's business - emu/debug/control.py -
        with a code hook: emu_start's `count` is unreliable in unicorn 2.1.4,
        blocks translated earlier ignore it.)
        """
        cpu = self.cpu
        budget = cpu.budget
        if self.held_trap is not None:
            self.deliver_held_trap()
        budget.set_stop(budget.icount + self._plan_budget())
        self._pending = None
        self._faults_before = cpu.mmu.faults
        self.stop_requested = False
        self._running = True
        err: U.UcError | None = None
        try:
            cpu.uc.emu_start(cpu.pc, UNTIL)
        except U.UcError as exc:
            err = exc
        finally:
            self._running = False
        self.stats.slices += 1
        if cpu.priv == 0:
            self.stats.user_slices += 1
        if self._flush_tb:
            self._flush_tb = False
            cpu.uc.ctl_flush_tb()
        if self._flush_tlb:
            self._flush_tlb = False
            cpu.flush_tlb()
        if self._hook_error is not None:
            exc, self._hook_error = self._hook_error, None
            raise MachineError(f"hook failed: {exc!r}") from exc
        pc = cpu.pc
        if err is not None:
            budget.retract_after(pc)
            self._handle_error(err, pc)
        elif self.stop_requested:
            # a debugger stop (before its instruction) may end mid-block
            budget.retract_after(pc)
        elif (self._pending is None and not budget.stopped and self.exit_status is None
              and self.fetch_insn(pc - 4) == INSN_WFI):
            self._wfi()
        self.clock.advance(self.now())
        self.clock.run_due()
        if self.stdin_fd is not None:
            self._poll_stdin(0.0)
        if self.network.bridges:
            self.network.poll()
        if self._pending is not None:
            t, self._pending = self._pending, None
            if self.hold_trap is not None and self.hold_trap(t.cause, t.tval, t.epc):
                self.held_trap = t   # delivered by deliver_held_trap() or the next slice
                return
            self.deliver_trap(t.cause, t.tval, t.epc)
        irq = self._deliverable_irq()
        if irq is not None and self.exit_status is None:
            self.deliver_trap(irq, 0, cpu.pc, interrupt=True)
        for observer in self.after_slice:
            observer()

    def _handle_error(self, err: U.UcError, pc: int) -> None:
        mmu = self.cpu.mmu
        if err.errno == U.UC_ERR_EXCEPTION and mmu.faults != self._faults_before:
            cause, va = self._fault_address(mmu.fault_cause, pc, mmu.fault_vaddr)
            self.stats.page_faults[cause] = self.stats.page_faults.get(cause, 0) + 1
            self.log("mmu", f"fault cause={cause} va=0x{va:x} pc=0x{pc:x}")
            self._pending = PendingTrap(cause, va, pc)
            return
        if err.errno == U.UC_ERR_INSN_INVALID:
            insn = self.fetch_insn(pc)
            if insn == INSN_EBREAK:
                self._pending = PendingTrap(platform.CAUSE_BREAKPOINT, pc, pc)
            else:
                self._pending = PendingTrap(platform.CAUSE_ILLEGAL_INSN, insn or 0, pc)
            return
        access = {U.UC_ERR_READ_UNMAPPED: platform.CAUSE_LOAD_ACCESS,
                  U.UC_ERR_WRITE_UNMAPPED: platform.CAUSE_STORE_ACCESS,
                  U.UC_ERR_FETCH_UNMAPPED: platform.CAUSE_FETCH_ACCESS,
                  U.UC_ERR_READ_PROT: platform.CAUSE_LOAD_ACCESS,
                  U.UC_ERR_WRITE_PROT: platform.CAUSE_STORE_ACCESS,
                  U.UC_ERR_FETCH_PROT: platform.CAUSE_FETCH_ACCESS}.get(err.errno)
        if access is not None:
            self._pending = PendingTrap(access, 0, pc)
            return
        raise MachineError(f"unicorn stopped at pc=0x{pc:x}: {err}")

    def _fault_address(self, cause: int, pc: int, page: int) -> tuple[int, int]:
        """Return (scause, stval) for a fault the fill hook saw on page `page`.

        Unicorn asks for fills by page, but the spec wants the faulting
        address itself: pc for a fetch, rs1 + offset of the load, store or
        AMO at pc for data accesses (its base register still holds the
        original value: the instruction did not execute). Falls back to
        `page` when the access straddles into it from the previous page.
        An AMO (other than LR) that faults on its read half raises the
        store/AMO cause, as the spec requires.
        """
        if cause in (platform.CAUSE_FETCH_PAGE_FAULT, platform.CAUSE_FETCH_ACCESS):
            return cause, (pc if pc & ~0xFFF == page & ~0xFFF else page)
        insn = self.fetch_insn(pc)
        if insn is None:
            return cause, page
        op, rs1 = insn & 0x7F, (insn >> 15) & 31
        if op == 0x2F and insn >> 27 != 0b00010:
            cause = {platform.CAUSE_LOAD_PAGE_FAULT: platform.CAUSE_STORE_PAGE_FAULT,
                     platform.CAUSE_LOAD_ACCESS: platform.CAUSE_STORE_ACCESS}.get(cause, cause)
        if op in (0x03, 0x07):            # LOAD, LOAD-FP: I-type offset
            off = _sext12(insn >> 20)
        elif op in (0x23, 0x27):          # STORE, STORE-FP: S-type offset
            off = _sext12(((insn >> 25) << 5) | ((insn >> 7) & 0x1F))
        elif op == 0x2F:                  # AMO, LR/SC: address in rs1
            off = 0
        else:
            return cause, page
        addr = (self.cpu.uc.reg_read(R.UC_RISCV_REG_X0 + rs1) + off) & 0xFFFF_FFFF_FFFF_FFFF
        return cause, (addr if addr & ~0xFFF == page & ~0xFFF else page)

    def _wfi(self) -> None:
        """The hart executed wfi: skip virtual time to the next event."""
        self.stats.wfi += 1
        if self.sip & self.cpu.csr("sie"):
            return
        nxt = self.clock.next_time()
        if nxt is None and self.stdin_fd is not None:
            self._poll_stdin(None)   # only the user can wake the guest: wait for a key
            return
        if nxt is None:
            self.exit_status = EXIT_IDLE_FOREVER
            self.stop_reason = "guest idle forever (wfi with no timer armed and nothing pending)"
            return
        skip = nxt - self.now()
        if skip > 0:
            self.idle_ns += skip
            self.stats.idle_ns += skip

    def _poll_stdin(self, timeout: float | None) -> None:
        """Feed bytes waiting on host stdin to the UART (interactive runs only:
        this is the one input that makes a run depend on the outside world)."""
        fd = self.stdin_fd
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            data = os.read(fd, 4096)
            if data:
                self.uart.feed(data)
            else:
                self.stdin_fd = None    # EOF

    def run(self) -> int:
        """Run until shutdown, --max-insns or a hang. Returns the exit status."""
        t0 = time.perf_counter()
        try:
            while self.exit_status is None:
                self.run_slice()
                if (self.exit_status is None and self.config.max_insns is not None
                        and self.icount >= self.config.max_insns):
                    self.exit_status = EXIT_MAX_INSNS
                    self.stop_reason = f"--max-insns {self.config.max_insns} reached"
        finally:
            self.stats.wall_s += time.perf_counter() - t0
            self.network.close()
            if self._log is not None and self._log is not sys.stderr:
                self._log.flush()
        return self.exit_status

    # -- figures -----------------------------------------------------------
    def sstatus_sum_mxr(self) -> tuple[bool, bool]:
        """Return (SUM, MXR) from sstatus."""
        st = self.cpu.csr("sstatus")
        return bool(st & SSTATUS_SUM), bool(st & SSTATUS_MXR)
