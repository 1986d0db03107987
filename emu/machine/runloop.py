"""The run loop: the guest runs in slices of instructions, and between
slices time advances and events fire.

One slice: arm the instruction budget up to the next event (or the slice
length), emu_start, then look at why the CPU stopped - budget spent, an
exit the Exits object turned into a pending trap (page fault, ecall,
illegal instruction, breakpoint), a debugger stop, wfi, or a shutdown
request - advance virtual time, fire due events, poll the real peers
(stdin, bridged interfaces), deliver a pending trap or interrupt, and tell
the slice observers.

Virtual time = retired instructions x ns_per_insn + time skipped in wfi.
Nothing reads the wall clock except the MIPS figure of the report.

Layer: machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from emu.core import isa
from emu.machine.exits import MachineError

if TYPE_CHECKING:
    from emu.machine.machine import Machine

EXIT_MAX_INSNS = 124
EXIT_IDLE_FOREVER = 125
EXIT_STUCK = 126
# Slices in a row that each delivered a trap without retiring one
# instruction: a guest faulting on its own trap vector (mtvec pointing where
# nothing is mapped) would loop there forever, as on QEMU, and --max-insns
# would never end it since nothing retires.
STUCK_SLICES = 10_000


class RunLoop:
    """Runs `machine` slice by slice.

    `after_slice` observers (timeline, progress, deadlock watch) are called
    at the end of every slice that did not stop for a held trap. A hook that
    stops the CPU for the debugger sets `stop_requested` before
    uc.emu_stop(), so the slice is accounted as ending mid-block.
    """

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.after_slice: list[Callable[[], None]] = []
        self.stop_requested = False
        self.running = False
        self._hook_error: BaseException | None = None
        self._flush_tb = self._flush_tlb = False
        self._end: tuple[int, str] | None = None    # set by end(): status, reason
        machine.clock.on_earlier = self._event_scheduled

    # -- requests from hooks ---------------------------------------------------
    def hook_failed(self, exc: BaseException) -> None:
        """A hook raised: keep the first exception, stop, re-raise it as a
        MachineError after emu_start returns."""
        if self._hook_error is None:
            self._hook_error = exc
        self.m.cpu.uc.emu_stop()

    def stop_cpu(self) -> None:
        """Stop the CPU if it is running (shutdown)."""
        if self.running:
            self.m.cpu.uc.emu_stop()

    def end(self, status: int, reason: str) -> None:
        """End the run at the next slice boundary with `status` (a signal, a
        closed console pipe). Safe from a signal handler: it only records,
        stops the CPU and wakes a host wait."""
        if self._end is None:
            self._end = (status, reason)
        self.m.cpu.uc.emu_stop()
        self.m.peers.wake()

    def request_tb_flush(self) -> None:
        """SBI remote_fence_i: unicorn does not always notice code the guest
        rewrote through another mapping, so drop all translated code. Done
        after emu_start returns: never flush under a running block."""
        self._flush_tb = True
        self.stop_cpu()

    def request_tlb_flush(self) -> None:
        """SBI remote_sfence_vma: flush the TLB once the slice ends."""
        self._flush_tlb = True
        self.stop_cpu()

    def _event_scheduled(self, at: int) -> None:
        """An event was scheduled before every other (a device register
        write, an SBI set_timer): end the running slice there, not at the
        event planned when it began."""
        if not self.running:
            return
        m = self.m
        budget = m.cpu.budget
        ns = m.config.ns_per_insn
        budget.set_stop(min(budget.stop_at, budget.icount + max(1, -(-(at - m.now()) // ns))))

    # -- planning ------------------------------------------------------------------
    def plan_budget(self) -> int:
        """Instructions the next slice may run: up to the next event, the
        slice length, or what --max-insns leaves."""
        m = self.m
        cfg = m.config
        ns = cfg.ns_per_insn
        n = cfg.slice_insns
        nxt = m.clock.next_time()
        if nxt is not None:
            n = min(n, max(1, -(-(nxt - m.now()) // ns)))
        if cfg.max_insns is not None:
            n = min(n, max(1, cfg.max_insns - m.icount))
        return n

    def sync_time(self) -> None:
        """Give the trap path's C rdtime what the CLINT's mtime() computes
        (at each slice start, and when the guest sets mtime)."""
        m = self.m
        m.cpu.core.set_time(m.config.ns_per_insn, m.idle_ns, m.clint.delta)

    # -- one slice -------------------------------------------------------------------
    def run_slice(self) -> None:
        """Run one slice and handle why it ended (see module docstring).

        (Single-stepping is the debugger's business - emu/debug/stepping.py -
        with a code hook: emu_start's `count` is unreliable in unicorn 2.1.4,
        blocks translated earlier ignore it.)
        """
        m = self.m
        cpu = m.cpu
        budget = cpu.budget
        traps = m.traps
        if traps.held_trap is not None:
            traps.deliver_held()
        budget.set_stop(budget.icount + self.plan_budget())
        traps.pending = None
        core = cpu.core
        core.set_intr_fast(traps.fast_path_ok())
        self.sync_time()
        cpu.drop_stale_code()        # pages a debugger probe found changed
        start_pc = core.pc_priv()[0]
        budget.start(start_pc)
        faults_before = cpu.mmu.faults
        self.stop_requested = False
        self.running = True
        try:
            err = core.run(start_pc)
        finally:
            self.running = False
        pc, priv = core.pc_priv()
        traps.count_fast(*core.drain_intr())
        m.stats.slices += 1
        if priv == 0:
            m.stats.user_slices += 1
        m.stats.code_changes += cpu.drop_stale_code()
        if self._flush_tb:
            self._flush_tb = False
            cpu.uc.ctl_flush_tb()
            m.log.translations_dropped()
        if self._flush_tlb:
            self._flush_tlb = False
            cpu.flush_tlb()
        if self._hook_error is not None:
            exc, self._hook_error = self._hook_error, None
            if not isinstance(exc, Exception):     # Ctrl-C, exit: not a failure
                raise exc
            raise MachineError(f"hook failed: {exc!r}") from exc
        if budget.error is not None:
            exc, budget.error = budget.error, None
            if not isinstance(exc, Exception):
                raise exc
            raise MachineError(f"block hook failed: {exc!r}") from exc
        if budget.native_trap:
            traps.note_native()
        if err:
            budget.retract_after(pc)
            m.exits.handle_error(err, pc, faults_before)
        elif self.stop_requested:
            # a debugger stop (before its instruction) may end mid-block
            budget.retract_after(pc)
        elif (traps.pending is None and not budget.stopped and m.exit_status is None
              and cpu.fetch_insn(pc - 4) == isa.INSN_WFI):
            self._wfi()
        m.clock.advance(m.now())
        m.clock.run_due()
        if m.console_io.stdin_fd is not None:
            m.console_io.poll_stdin(0.0)
        if m.network.bridges:
            m.network.poll()
        if self._end is not None and m.exit_status is None:
            m.exit_status, m.stop_reason = self._end
        if traps.take_pending(running=m.exit_status is None):
            return
        for observer in self.after_slice:
            observer()

    def _wfi(self) -> None:
        """The hart executed wfi: skip virtual time to the next event - or,
        coupled to a real peer's wall clock (emu/machine/peers.py), wait on
        the host for at most that long and advance by what really passed."""
        m = self.m
        m.stats.wfi += 1
        if m.traps.waiting():
            return
        peers = m.peers
        nxt = m.clock.next_time()
        if nxt is None and peers.names:
            # Only a real peer (a key, a frame, gdb) can wake the guest.
            waited = peers.wait(None)
            if peers.coupled:
                self._idle(waited)
            return
        if nxt is None:
            m.exit_status = EXIT_IDLE_FOREVER
            m.stop_reason = "guest idle forever (wfi with no timer armed and nothing pending)"
            return
        skip = nxt - m.now()
        if skip > 0:
            if peers.coupled:
                skip = peers.wait(skip)
            self._idle(skip)

    def _idle(self, ns: int) -> None:
        """Virtual time passes `ns` with the hart asleep."""
        self.m.idle_ns += ns
        self.m.stats.idle_ns += ns

    # -- a whole run -------------------------------------------------------------------
    def run(self) -> int:
        """Run until shutdown, --max-insns or a hang. Returns the exit status."""
        m = self.m
        t0 = time.perf_counter()
        stuck, seen = 0, (m.icount, -1)
        try:
            while m.exit_status is None:
                self.run_slice()
                now = (m.icount, sum(m.stats.traps.values()))
                stuck = stuck + 1 if now[0] == seen[0] and now[1] != seen[1] else 0
                seen = now
                if stuck >= STUCK_SLICES and m.exit_status is None:
                    pc, priv = m.cpu.core.pc_priv()
                    m.exit_status = EXIT_STUCK
                    m.stop_reason = (f"the hart is stuck: {stuck:,} traps in a row without "
                                     f"retiring an instruction (pc 0x{pc:x}, "
                                     f"{'USHM'[priv & 3]}-mode; a trap vector where nothing "
                                     "can run?)")
                if (m.exit_status is None and m.config.max_insns is not None
                        and m.icount >= m.config.max_insns):
                    m.exit_status = EXIT_MAX_INSNS
                    m.stop_reason = f"--max-insns {m.config.max_insns} reached"
        finally:
            m.stats.wall_s += time.perf_counter() - t0
            m.network.close()
            m.peers.close()
            m.log.close()
        return m.exit_status
