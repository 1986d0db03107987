"""The core-local interruptor of QEMU's `virt` board (sifive,clint0): one
hart's machine software interrupt (MSWI) and machine timer (MTIMER), as QEMU
7.2's hw/intc/riscv_aclint.c with hw/riscv/virt.c's layout, plus the
supervisor timer compare emu's built-in firmware uses for SBI set_timer.

Register map (offsets from the CLINT's base; RISC-V ACLINT spec, QEMU's
RISCV_ACLINT_SWI_SIZE 0x4000 and RISCV_ACLINT_DEFAULT_MTIMER_SIZE 0x8000):

    +0x0000  msip       u32  bit 0 drives MSIP; reads back MSIP
    +0x4000  mtimecmp   u64  (two u32 halves) MTIP = mtime >= mtimecmp
    +0xbff8  mtime      u64  (two u32 halves) read-write
    +0xc000..0xffff     not mapped by QEMU (an access faults there)

Time: mtime counts the 10 MHz timebase (RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ):
virtual ns / 100, plus the offset a guest write to mtime leaves (QEMU's
time_delta). MTIP and STIP are levels: each compare output is re-evaluated
when its compare or mtime is written, and a Clock event is scheduled for the
moment it becomes true (at now + 100 ns per tick to go, as QEMU's timer), so
nothing polls. At power-on mtimecmp is 0 and MTIP is high, as on QEMU.

The supervisor compare (`stimecmp`) is the Sstc extension's stimecmp seen
from the firmware's side: the same comparison against mtime, driving STIP,
with no MMIO register. emu's built-in SBI set_timer(t) calls
`set_stimecmp(t)`, as OpenSBI programs stimecmp on a hart with Sstc; it
starts at 2**64 - 1 (never).

Access sizes: QEMU accepts 4 bytes for msip and 4 or 8 for the timer; other
sizes fault there (emu logs guest_errors and ignores them). A 64-bit access
reaches emu as two 32-bit ones (unicorn), low half first.

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.clock import Clock, Event
from emu.devices.bus import no_log

CLINT_MSIP = 0x0
CLINT_MTIMECMP = 0x4000
CLINT_MTIME = 0xBFF8
CLINT_SWI_END = 0x4000           # the MSWI region: one u32 per hart
CLINT_MTIMER_END = 0xC000        # the MTIMER region ends here (QEMU: +0x4000, 0x8000 long)
CLINT_SIZE = 0x1_0000
TIMEBASE_HZ = 10_000_000
NS_PER_TICK = 1_000_000_000 // TIMEBASE_HZ
NEVER = (1 << 64) - 1
_U64 = (1 << 64) - 1
_INT64_MAX = (1 << 63) - 1


class Compare:
    """One timer compare: its output is high while mtime >= value. The Clint
    re-arms it (`arm`) whenever the value or mtime changes."""

    def __init__(self, clock: Clock, output: Callable[[bool], None], value: int) -> None:
        self.clock = clock
        self.output = output
        self.value = value
        self.level = False
        self.fired = 0                  # rising edges of the output
        self._event: Event | None = None

    def _set(self, level: bool) -> None:
        if level and not self.level:
            self.fired += 1
        self.level = level
        self.output(level)

    def arm(self, mtime: int, now_ns: int) -> None:
        """Re-evaluate against `mtime` (ticks) at virtual time `now_ns`: raise
        the output now, or lower it and schedule the rise (as QEMU's
        riscv_aclint_mtimer_write_timecmp)."""
        if self._event is not None:
            Clock.cancel(self._event)
            self._event = None
        if self.value <= mtime:
            self._set(True)
            return
        self._set(False)
        ns_diff = (self.value - mtime) * NS_PER_TICK
        if ns_diff <= _INT64_MAX - now_ns:             # QEMU never fires past INT64_MAX
            self._event = self.clock.schedule(now_ns + ns_diff, self._expire)

    def _expire(self) -> None:
        self._event = None
        self._set(True)


class Clint:
    """MSWI + MTIMER for hart 0, and the firmware's supervisor compare.
    `now()` is the current virtual time in ns; `set_msip`, `set_mtip` and
    `set_stip` drive the hart's MSIP, MTIP and STIP."""

    name = "clint"

    def __init__(self, clock: Clock, now: Callable[[], int],
                 set_msip: Callable[[bool], None], set_mtip: Callable[[bool], None],
                 set_stip: Callable[[bool], None]) -> None:
        self.clock = clock
        self.now = now
        self.set_msip = set_msip
        self.msip = False
        self.delta = 0                  # mtime - virtual ns / 100, mod 2**64
        self.on_delta: Callable[[], None] | None = None   # told when the guest sets mtime
        self.mtimecmp = Compare(clock, set_mtip, 0)
        self.stimecmp = Compare(clock, set_stip, NEVER)
        self.log = no_log
        self.mtimecmp.arm(self.mtime(), self.now())
        self.mtimecmp.fired = 0          # MTIP high at power-on is not a timer firing

    @property
    def fired(self) -> int:
        """Timer interrupts raised since power-on (both compares' rising edges)."""
        return self.mtimecmp.fired + self.stimecmp.fired

    def mtime(self) -> int:
        """The current mtime: virtual ns / 100 + the guest's offset, mod 2**64."""
        return (self.now() // NS_PER_TICK + self.delta) & _U64

    def set_stimecmp(self, value: int) -> None:
        """Program the supervisor compare (timebase ticks, absolute): STIP is
        high while mtime >= value (SBI set_timer; 2**64 - 1 never fires)."""
        self.stimecmp.value = value & _U64
        self.stimecmp.arm(self.mtime(), self.now())

    def _set_mtimecmp(self, value: int) -> None:
        self.mtimecmp.value = value & _U64
        self.mtimecmp.arm(self.mtime(), self.now())

    def _set_mtime(self, value: int) -> None:
        now = self.now()
        self.delta = (value - now // NS_PER_TICK) & _U64
        if self.on_delta is not None:
            self.on_delta()
        for cmp in (self.mtimecmp, self.stimecmp):
            cmp.arm(value & _U64, now)

    def _bad(self, topic: str, what: str, offset: int, size: int) -> None:
        self.log(topic, f"clint: {what} at +0x{offset:x} (size {size}) ignored")

    def _size_ok(self, offset: int, size: int, verb: str) -> bool:
        if offset >= CLINT_MTIMER_END:
            self._bad("guest_errors", f"{verb} outside the CLINT (QEMU: access fault)",
                      offset, size)
            return False
        if size != 4 or offset % 4:
            self._bad("guest_errors", f"{verb} of the wrong size (QEMU: access fault)",
                      offset, size)
            return False
        return True

    # -- MMIO ----------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """Return the 32-bit register at `offset` (msip, a mtimecmp half, a
        mtime half); anything else reads 0 (logged)."""
        if not self._size_ok(offset, size, "read"):
            return 0
        if offset == CLINT_MSIP:
            return int(self.msip)
        if offset in (CLINT_MTIMECMP, CLINT_MTIMECMP + 4):
            return self.mtimecmp.value >> (8 * (offset - CLINT_MTIMECMP)) & 0xFFFF_FFFF
        if offset in (CLINT_MTIME, CLINT_MTIME + 4):
            return self.mtime() >> (8 * (offset - CLINT_MTIME)) & 0xFFFF_FFFF
        self._bad("unimp", "read of a register hart 0 does not have", offset, size)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the 32-bit register at `offset`: msip bit 0, or one half of
        mtimecmp or mtime (the other half kept). Anything else is ignored."""
        if not self._size_ok(offset, size, f"write of 0x{value:x}"):
            return
        value &= 0xFFFF_FFFF
        if offset == CLINT_MSIP:
            self.msip = bool(value & 1)
            self.set_msip(self.msip)
        elif offset == CLINT_MTIMECMP:
            self._set_mtimecmp(self.mtimecmp.value & ~0xFFFF_FFFF | value)
        elif offset == CLINT_MTIMECMP + 4:
            self._set_mtimecmp(value << 32 | self.mtimecmp.value & 0xFFFF_FFFF)
        elif offset == CLINT_MTIME:
            self._set_mtime(self.mtime() & ~0xFFFF_FFFF | value)
        elif offset == CLINT_MTIME + 4:
            self._set_mtime(value << 32 | self.mtime() & 0xFFFF_FFFF)
        else:
            self._bad("unimp", f"write of 0x{value:x} to a register hart 0 does not have",
                      offset, size)
