"""The virt board's small devices driven as guests drive them: xv6's uart.c,
plic.c and start.c/timervec, Linux's 8250 probe and startup tests, and the
QEMU 7.2 behaviours each register sequence depends on (tests/
test_devices_qemu.py checks the same devices against QEMU itself)."""

from __future__ import annotations

import pytest

from emu.core.clock import Clock
from emu.devices import plic as P
from emu.devices import uart as U
from emu.devices.clint import CLINT_MSIP, CLINT_MTIME, CLINT_MTIMECMP, NEVER, Clint
from emu.devices.finisher import FINISHER_FAIL, FINISHER_PASS, FINISHER_RESET, Finisher
from emu.devices.plic import Plic
from emu.devices.uart import Uart

IRQ_VIRTIO, IRQ_UART = 1, 10


class Pin:
    """An interrupt input of the hart: the levels driven, in order."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def __call__(self, level: bool) -> None:
        self.seen.append(level)

    @property
    def level(self) -> bool:
        return bool(self.seen) and self.seen[-1]


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, topic: str, msg: str) -> None:
        self.lines.append((topic, msg))

    def topics(self) -> list[str]:
        return [t for t, _ in self.lines]


def _plic():
    meip, seip = Pin(), Pin()
    p = Plic(meip=meip, seip=seip)
    p.log = Log()
    return p, meip, seip


def w32(dev, off: int, value: int) -> None:
    dev.write(off, 4, value)


def r32(dev, off: int) -> int:
    return dev.read(off, 4)


# -- PLIC ------------------------------------------------------------------

def test_plic_xv6_plicinit_plicinithart_claim_complete():
    p, meip, seip = _plic()
    uart, virtio = p.line(IRQ_UART), p.line(IRQ_VIRTIO)
    w32(p, P.PLIC_PRIORITY + 4 * IRQ_UART, 1)                 # plicinit
    w32(p, P.PLIC_PRIORITY + 4 * IRQ_VIRTIO, 1)
    w32(p, P.PLIC_SENABLE, (1 << IRQ_UART) | (1 << IRQ_VIRTIO))  # plicinithart
    w32(p, P.PLIC_STHRESHOLD, 0)
    assert not seip.level
    uart.raise_()
    virtio.raise_()
    assert seip.level and not meip.seen                 # S context only
    assert r32(p, P.PLIC_PENDING) == (1 << IRQ_UART) | (1 << IRQ_VIRTIO)
    assert r32(p, P.PLIC_SCLAIM) == IRQ_VIRTIO          # same priority: lowest id
    assert r32(p, P.PLIC_PENDING) == 1 << IRQ_UART      # claiming clears pending
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART
    assert not seip.level and r32(p, P.PLIC_SCLAIM) == 0
    w32(p, P.PLIC_SCLAIM, IRQ_VIRTIO)
    w32(p, P.PLIC_SCLAIM, IRQ_UART)
    assert p.claims == 2


def test_plic_higher_priority_first_and_threshold_per_context():
    p, meip, seip = _plic()
    a, b = p.line(3), p.line(95)
    w32(p, P.PLIC_PRIORITY + 4 * 3, 2)
    w32(p, P.PLIC_PRIORITY + 4 * 95, 5)
    w32(p, P.PLIC_MENABLE, 1 << 3)
    w32(p, P.PLIC_MENABLE + 8, 1 << 31)                 # source 95: word 2, bit 31
    w32(p, P.PLIC_SENABLE + 8, 1 << 31)
    w32(p, P.PLIC_MTHRESHOLD, 0)
    a.raise_()
    b.raise_()
    assert r32(p, P.PLIC_PENDING + 8) == 1 << 31
    assert meip.level and seip.level
    w32(p, P.PLIC_STHRESHOLD, 5)                        # 5 is not above 5
    assert not seip.level and meip.level
    assert r32(p, P.PLIC_SCLAIM) == 0                   # QEMU's claim honours the threshold
    assert r32(p, P.PLIC_MCLAIM) == 95
    assert r32(p, P.PLIC_MCLAIM) == 3
    assert not meip.level


def test_plic_level_is_latched_until_claimed_and_not_repended_by_complete():
    """QEMU 7.2: a raise latches pending, a lowering does not clear it, and a
    completion does not re-pend a line that is still high."""
    p, _, seip = _plic()
    line = p.line(IRQ_UART)
    w32(p, P.PLIC_PRIORITY + 4 * IRQ_UART, 1)
    w32(p, P.PLIC_SENABLE, 1 << IRQ_UART)
    w32(p, P.PLIC_STHRESHOLD, 0)
    line.raise_()
    line.lower()
    assert r32(p, P.PLIC_PENDING) == 1 << IRQ_UART and seip.level
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART            # the device went quiet: spurious
    w32(p, P.PLIC_SCLAIM, IRQ_UART)
    line.raise_()
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART
    w32(p, P.PLIC_SCLAIM, IRQ_UART)                     # line still high
    assert r32(p, P.PLIC_PENDING) == 0 and not seip.level
    line.raise_()                                       # the device updates its line again
    assert r32(p, P.PLIC_PENDING) == 1 << IRQ_UART and seip.level
    line.raise_()                                       # while claimed: pending, no SEIP
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART
    line.raise_()
    assert r32(p, P.PLIC_PENDING) == 1 << IRQ_UART and not seip.level
    w32(p, P.PLIC_SCLAIM, IRQ_UART)
    assert seip.level


def test_plic_enable_writes_do_not_reevaluate_the_outputs():
    p, meip, _ = _plic()
    w32(p, P.PLIC_PRIORITY + 4 * 7, 1)
    p.line(7).raise_()
    w32(p, P.PLIC_MENABLE, 1 << 7)
    assert not meip.level                               # QEMU 7.2: not yet
    w32(p, P.PLIC_MTHRESHOLD, 0)                        # any re-evaluating write
    assert meip.level
    w32(p, P.PLIC_MENABLE, 0)
    assert meip.level                                   # stale until the next one
    w32(p, P.PLIC_PRIORITY + 4 * 8, 0)
    assert not meip.level


def test_plic_registers_edges():
    p, _, _ = _plic()
    w32(p, P.PLIC_PRIORITY, 7)
    assert r32(p, P.PLIC_PRIORITY) == 0                 # source 0 has no priority
    for value, kept in ((9, 1), (0xFF, 7), (3, 3)):
        w32(p, P.PLIC_PRIORITY + 4 * 10, value)
        assert r32(p, P.PLIC_PRIORITY + 4 * 10) == kept  # WARL: value % 8
    w32(p, P.PLIC_PRIORITY + 4 * 96, 5)
    assert r32(p, P.PLIC_PRIORITY + 4 * 96) == 5        # QEMU 7.2 has it
    w32(p, P.PLIC_PRIORITY + 4 * 97, 5)
    assert r32(p, P.PLIC_PRIORITY + 4 * 97) == 0
    w32(p, P.PLIC_MENABLE + 8, 0xFFFF_FFFF)
    assert r32(p, P.PLIC_MENABLE + 8) == 0xFFFF_FFFF
    w32(p, P.PLIC_MENABLE + 12, 0xFFFF_FFFF)            # no fourth word
    assert r32(p, P.PLIC_MENABLE + 12) == 0
    w32(p, P.PLIC_MENABLE, 0xFFFF_FFFF)
    assert r32(p, P.PLIC_MENABLE) == 0xFFFF_FFFF        # bit 0 included, as QEMU
    w32(p, P.PLIC_PENDING, 0xFFFF_FFFF)
    assert r32(p, P.PLIC_PENDING) == 0
    w32(p, P.PLIC_STHRESHOLD, 9)
    assert r32(p, P.PLIC_STHRESHOLD) == 1
    assert r32(p, P.PLIC_CONTEXT + 2 * P.PLIC_CONTEXT_STRIDE) == 0   # no context 2
    p.log.lines.clear()
    assert p.read(P.PLIC_STHRESHOLD, 1) == 0            # QEMU faults sizes other than 4
    p.write(P.PLIC_STHRESHOLD, 2, 0)
    assert r32(p, P.PLIC_STHRESHOLD) == 1
    w32(p, P.PLIC_SCLAIM, 96)
    assert p.log.topics() == ["guest_errors"] * 3
    with pytest.raises(ValueError):
        p.line(0)
    with pytest.raises(ValueError):
        p.line(P.PLIC_NUM_SOURCES)


# -- CLINT -----------------------------------------------------------------

def _clint(now: int = 0):
    clock = Clock()
    clock.advance(now)
    msip, mtip, stip = Pin(), Pin(), Pin()
    c = Clint(clock, lambda: clock.now, msip, mtip, stip)
    c.log = Log()
    return clock, c, msip, mtip, stip


def _at(clock: Clock, t: int) -> None:
    clock.advance(t)
    clock.run_due()


def r64(dev, off: int) -> int:
    """A 64-bit load as unicorn delivers it: low word, then high word."""
    return dev.read(off, 4) | dev.read(off + 4, 4) << 32


def w64(dev, off: int, value: int) -> None:
    """A 64-bit store as unicorn delivers it: low word, then high word."""
    dev.write(off, 4, value & 0xFFFF_FFFF)
    dev.write(off + 4, 4, value >> 32)


def test_clint_xv6_timerinit_and_timervec():
    clock, c, _, mtip, _ = _clint(now=1_234_567)        # 12345 ticks and 67 ns
    assert mtip.level                                   # power-on: mtimecmp 0
    interval = 1_000_000                                # start.c: 1/10 s at 10 MHz
    w64(c, CLINT_MTIMECMP, r64(c, CLINT_MTIME) + interval)
    assert not mtip.level
    due = 1_234_567 + interval * 100                    # QEMU: now + 100 ns per tick
    assert clock.next_time() == due
    _at(clock, due - 1)
    assert not mtip.level
    _at(clock, due)
    assert mtip.level and c.mtimecmp.fired == 1         # power-on high is not a firing
    w64(c, CLINT_MTIMECMP, r64(c, CLINT_MTIMECMP) + interval)   # timervec
    assert not mtip.level
    _at(clock, due + interval * 100)
    assert mtip.level and c.mtimecmp.fired == 2 and c.fired == 2
    assert r64(c, CLINT_MTIME) == (due + interval * 100) // 100


def test_clint_compare_in_the_past_fires_now_and_never_never_fires():
    clock, c, _, mtip, _ = _clint(now=5_000)
    w64(c, CLINT_MTIMECMP, NEVER)
    assert not mtip.level and clock.next_time() is None
    w32(c, CLINT_MTIMECMP, 0)                           # low half: 0xffffffff_00000000
    assert not mtip.level
    w32(c, CLINT_MTIMECMP + 4, 0)
    assert mtip.level and clock.next_time() is None
    assert r32(c, CLINT_MTIMECMP + 4) == 0


def test_clint_msip():
    _, c, msip, _, _ = _clint()
    w32(c, CLINT_MSIP, 0xFF)
    assert msip.level and r32(c, CLINT_MSIP) == 1
    w32(c, CLINT_MSIP, 2)                               # only bit 0 counts
    assert not msip.level and r32(c, CLINT_MSIP) == 0


def test_clint_mtime_writes_move_the_time_base_and_rearm_the_compares():
    clock, c, _, mtip, stip = _clint(now=700)
    w64(c, CLINT_MTIMECMP, 1000)
    c.set_stimecmp(2000)
    assert not mtip.level and not stip.level
    w64(c, CLINT_MTIME, 1500)                           # mtime passes mtimecmp only
    assert mtip.level and not stip.level
    assert clock.next_time() == 700 + 500 * 100          # STIP re-armed from the new mtime
    w32(c, CLINT_MTIME + 4, 1)                          # high half alone: 2**32 + 1500
    assert r64(c, CLINT_MTIME) == (1 << 32) + 1500
    assert stip.level
    w64(c, CLINT_MTIME, 0)
    assert not mtip.level and not stip.level
    _at(clock, 700 + 1000 * 100)
    assert mtip.level and not stip.level
    _at(clock, 700 + 2000 * 100)
    assert stip.level
    assert r64(c, CLINT_MTIME) == 2000


def test_clint_supervisor_compare_is_sbi_set_timer():
    clock, c, _, mtip, stip = _clint()
    w64(c, CLINT_MTIMECMP, NEVER)
    c.set_stimecmp(r64(c, CLINT_MTIME) + 10)            # 1 us from now, in ticks
    assert not stip.level
    _at(clock, 999)
    assert not stip.level
    _at(clock, 1000)
    assert stip.level and c.stimecmp.fired == 1 and not mtip.level
    c.set_stimecmp(NEVER)                               # "never" lowers STIP, no event
    assert not stip.level and clock.next_time() is None
    c.set_stimecmp(3)                                   # already past
    assert stip.level and c.stimecmp.fired == 2
    before = [c.read(off, 4) for off in range(0, 0xC000, 4)]
    c.set_stimecmp(0x1234_5678_9ABC)
    assert [c.read(off, 4) for off in range(0, 0xC000, 4)] == before   # not in the MMIO map


def test_clint_rejected_accesses_are_logged():
    _, c, msip, _, _ = _clint()
    c.write(CLINT_MSIP, 1, 1)                           # QEMU: access fault
    assert not msip.seen
    assert c.read(CLINT_MTIMECMP, 2) == 0
    assert c.read(0xC000, 4) == 0                       # past the MTIMER region
    c.write(CLINT_MSIP + 4, 4, 1)                       # hart 1: not there
    assert c.log.topics() == ["guest_errors"] * 3 + ["unimp"]


# -- UART ------------------------------------------------------------------

def _uart():
    p, meip, seip = _plic()
    clock = Clock()
    out = bytearray()
    u = Uart(p.line(IRQ_UART), out.extend, clock, lambda: clock.now)
    u.log = Log()
    w32(p, P.PLIC_PRIORITY + 4 * IRQ_UART, 1)
    w32(p, P.PLIC_SENABLE, 1 << IRQ_UART)
    w32(p, P.PLIC_STHRESHOLD, 0)
    return u, p, seip, clock, out


def rd(u: Uart, reg: int) -> int:
    return u.read(reg, 1)


def wr(u: Uart, reg: int, value: int) -> None:
    u.write(reg, 1, value)


def xv6_uartinit(u: Uart) -> None:
    wr(u, U.UART_IER, 0x00)
    wr(u, U.UART_LCR, U.LCR_DLAB)
    wr(u, 0, 0x03)                                      # 38.4K baud
    wr(u, 1, 0x00)
    wr(u, U.UART_LCR, 0x03)
    wr(u, U.UART_FCR, U.FCR_FE | U.FCR_RFR | U.FCR_XFR)
    wr(u, U.UART_IER, U.IER_THRI | U.IER_RDI)


def test_uart_reset_values_and_divisor_latch():
    u, _, _, _, _ = _uart()
    assert [rd(u, r) for r in range(8)] == [0, 0, 0x01, 0, 0x08, 0x60, 0xB0, 0]
    wr(u, U.UART_LCR, U.LCR_DLAB)
    assert (rd(u, U.UART_DLL), rd(u, U.UART_DLM)) == (0x0C, 0)
    wr(u, U.UART_DLL, 0x34)
    wr(u, U.UART_DLM, 0x12)
    assert u.divider == 0x1234 and rd(u, U.UART_IIR) == 0x01   # IIR under DLAB too
    wr(u, U.UART_LCR, 0x03)
    assert rd(u, U.UART_IER) == 0


def test_uart_xv6_transmit_and_the_thre_interrupt():
    u, p, seip, _, out = _uart()
    xv6_uartinit(u)
    assert seip.level                                   # THR empty + THRI enabled
    assert rd(u, U.UART_IIR) == 0xC2
    for c in b"hi":                                     # uartstart
        assert rd(u, U.UART_LSR) & 0x20
        wr(u, U.UART_THR, c)
    assert out == b"hi" and u.tx_bytes == 2
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART            # devintr: plic_claim
    assert rd(u, U.UART_LSR) & U.LSR_DR == 0            # uartintr: uartgetc, nothing
    assert rd(u, U.UART_LSR) & U.LSR_THRE               # uartstart: buffer empty
    w32(p, P.PLIC_SCLAIM, IRQ_UART)                     # plic_complete
    assert not seip.level and r32(p, P.PLIC_PENDING) == 0   # no interrupt storm
    u.feed(b"k")                                        # a key: RX interrupt
    assert seip.level and rd(u, U.UART_IIR) == 0xC4
    assert r32(p, P.PLIC_SCLAIM) == IRQ_UART
    assert rd(u, U.UART_LSR) & U.LSR_DR and rd(u, U.UART_RBR) == ord("k")
    assert rd(u, U.UART_IIR) == 0xC2                    # THRE, still pending behind RX
    w32(p, P.PLIC_SCLAIM, IRQ_UART)
    assert seip.level                                   # the RBR read re-raised the line


def test_uart_thre_interrupt_rules():
    u, _, _, _, _ = _uart()
    wr(u, U.UART_IER, U.IER_THRI)                       # 0 -> 1 with THR empty: pending
    assert u.irq.level and rd(u, U.UART_IIR) == 0x02
    assert rd(u, U.UART_IIR) == 0x01 and not u.irq.level   # reading IIR acknowledged it
    wr(u, U.UART_IER, U.IER_THRI)                       # unchanged: nothing
    assert rd(u, U.UART_IIR) == 0x01
    wr(u, U.UART_THR, 0x41)                             # THR empties at once: again
    assert rd(u, U.UART_IIR) == 0x02
    wr(u, U.UART_IER, 0)
    wr(u, U.UART_IER, U.IER_THRI | U.IER_RDI)           # re-enabling: again
    assert u.irq.level and rd(u, U.UART_IIR) == 0x02


def test_uart_linux_8250_probe_and_startup():
    u, _, _, _, _ = _uart()
    # autoconfig: the scratch test on IER
    save = rd(u, U.UART_IER)
    wr(u, U.UART_IER, 0)
    assert rd(u, U.UART_IER) & 0x0F == 0
    wr(u, U.UART_IER, 0x0F)
    assert rd(u, U.UART_IER) & 0x0F == 0x0F
    wr(u, U.UART_IER, save)
    # the loopback test: MSR shows MCR's outputs
    save_mcr = rd(u, U.UART_MCR)
    wr(u, U.UART_MCR, U.MCR_LOOP | U.MCR_OUT2 | U.MCR_RTS)
    assert rd(u, U.UART_MSR) & 0xF0 == U.MSR_DCD | U.MSR_CTS
    wr(u, U.UART_MCR, save_mcr)
    # FIFO detection: IIR's top bits say 16550A
    wr(u, U.UART_LCR, 0xBF)
    wr(u, 2, 0)                                         # EFR on a 16650: FCR here
    wr(u, U.UART_LCR, 0)
    wr(u, U.UART_FCR, U.FCR_FE)
    assert rd(u, U.UART_IIR) >> 6 == 3
    wr(u, U.UART_FCR, U.FCR_FE | 0x20)                  # no 64-byte FIFO (not a 16750)
    assert rd(u, U.UART_IIR) & 0x20 == 0
    wr(u, U.UART_IER, 0x40)                             # no UUE bit (not an XScale)
    assert rd(u, U.UART_IER) & 0x40 == 0
    wr(u, U.UART_SCR, 0x5A)
    assert rd(u, U.UART_SCR) == 0x5A
    # serial8250_do_startup: clear the FIFOs, read the registers, then the THRE tests
    wr(u, U.UART_FCR, U.FCR_FE | U.FCR_RFR | U.FCR_XFR)
    wr(u, U.UART_FCR, 0)
    for reg in (U.UART_LSR, U.UART_RBR, U.UART_IIR, U.UART_MSR):
        rd(u, reg)
    assert rd(u, U.UART_LSR) != 0xFF
    wr(u, U.UART_LCR, 0x03)
    wr(u, U.UART_MCR, U.MCR_OUT2)
    wr(u, U.UART_IER, U.IER_THRI)
    lsr, iir = rd(u, U.UART_LSR), rd(u, U.UART_IIR)
    wr(u, U.UART_IER, 0)
    assert not (lsr & U.LSR_TEMT and iir & U.IIR_NO_INT)      # no UART_BUG_TXEN
    wr(u, U.UART_IER, U.IER_THRI)
    iir1 = rd(u, U.UART_IIR)
    wr(u, U.UART_IER, 0)
    wr(u, U.UART_IER, U.IER_THRI)
    iir = rd(u, U.UART_IIR)
    wr(u, U.UART_IER, 0)
    assert not (not iir1 & U.IIR_NO_INT and iir & U.IIR_NO_INT)  # no UART_BUG_THRE


def test_uart_fifo_trigger_levels_in_loopback():
    u, _, _, _, out = _uart()
    wr(u, U.UART_MCR, U.MCR_LOOP)
    wr(u, U.UART_IER, U.IER_RDI)
    for fcr, level in ((0x01, 1), (0x41, 4), (0x81, 8), (0xC1, 14)):
        wr(u, U.UART_FCR, fcr | U.FCR_RFR)
        for i in range(level - 1):
            wr(u, U.UART_THR, i)
        assert rd(u, U.UART_IIR) == 0xC1, fcr           # below the trigger
        wr(u, U.UART_THR, 0x55)
        assert rd(u, U.UART_IIR) == 0xC4, fcr
    assert out == b""                                   # loopback sends nothing


def test_uart_overruns_and_line_status_interrupt():
    u, _, _, _, _ = _uart()
    wr(u, U.UART_MCR, U.MCR_LOOP)
    wr(u, U.UART_IER, U.IER_RDI | U.IER_RLSI)
    wr(u, U.UART_THR, ord("1"))
    wr(u, U.UART_THR, ord("2"))                         # no FIFO: RBR overwritten
    assert rd(u, U.UART_IIR) == 0x06                    # line status beats data
    assert rd(u, U.UART_LSR) == 0x63                    # DR, OE, THRE, TEMT
    assert rd(u, U.UART_LSR) == 0x61                    # reading LSR cleared OE
    assert rd(u, U.UART_IIR) == 0x04
    assert rd(u, U.UART_RBR) == ord("2")
    wr(u, U.UART_FCR, U.FCR_FE)
    for i in range(20):                                 # the FIFO keeps the first 16
        wr(u, U.UART_THR, 0x40 + i)
    assert rd(u, U.UART_LSR) & U.LSR_OE
    assert bytes(rd(u, U.UART_RBR) for _ in range(17)) == bytes(range(0x40, 0x50)) + b"\0"
    assert rd(u, U.UART_LSR) == 0x60


def test_uart_character_timeout_follows_the_line_settings():
    u, _, _, clock, _ = _uart()
    xv6_uartinit(u)                                     # divisor 3, 8N1
    wr(u, U.UART_FCR, 0x81)                             # trigger at 8
    char_ns = 1_000_000_000 // (399_193 // 3) * 10      # QEMU's arithmetic: 75150 ns
    assert u.char_ns == char_ns
    u.feed(b"abc")
    assert rd(u, U.UART_IIR) == 0xC2                    # below the trigger: THRE shows
    assert clock.next_time() == 4 * char_ns
    _at(clock, 4 * char_ns - 1)
    assert rd(u, U.UART_IIR) == 0xC1 and not u.irq.level
    _at(clock, 4 * char_ns)
    assert rd(u, U.UART_IIR) == 0xCC and u.irq.level    # character timeout
    assert rd(u, U.UART_RBR) == ord("a")                # a read re-arms it
    assert rd(u, U.UART_IIR) == 0xC1
    _at(clock, 4 * char_ns + 4 * char_ns)
    assert rd(u, U.UART_IIR) == 0xCC
    assert rd(u, U.UART_RBR) == ord("b") and rd(u, U.UART_RBR) == ord("c")
    _at(clock, 100 * char_ns)
    assert rd(u, U.UART_IIR) == 0xC1                    # nothing left: no timeout
    wr(u, U.UART_LCR, U.LCR_DLAB | 0x1F)                # 8 data, 2 stop, parity
    wr(u, U.UART_DLL, 12)
    assert u.char_ns == 1_000_000_000 // (399_193 // 12) * 12


def test_uart_host_input_enters_as_qemus_flow_control_allows():
    u, _, _, _, _ = _uart()
    u.feed(b"ABCDEFGHIJKLMNOPQRST")
    assert rd(u, U.UART_LSR) == 0x61                    # one byte in RBR, no overrun
    assert rd(u, U.UART_RBR) == ord("A") and rd(u, U.UART_RBR) == ord("B")
    wr(u, U.UART_FCR, 0x81)                             # FIFOs on: RBR's "C" is flushed
    assert len(u.rx) == 8                               # up to the trigger level
    got = bytes(rd(u, U.UART_RBR) for _ in range(17))
    assert got == b"DEFGHIJKLMNOPQRST"
    assert not rd(u, U.UART_LSR) & (U.LSR_OE | U.LSR_DR)


def test_uart_registers_sizes_and_holes():
    u, _, _, _, out = _uart()
    wr(u, U.UART_MCR, 0xFF)
    assert rd(u, U.UART_MCR) == 0x1F
    u.write(U.UART_MCR, 4, 0xAABB_CC17)                 # a word write at +4: MCR, low byte
    assert rd(u, U.UART_MCR) == 0x17
    assert u.read(U.UART_MCR, 2) == 0x17                # a halfword read of MCR alone
    wr(u, U.UART_LSR, 0)
    wr(u, U.UART_MSR, 0)
    assert rd(u, U.UART_LSR) == 0x60
    assert rd(u, U.UART_MSR) == 0x70                    # loopback: OUT1->RI, RTS->CTS, DTR->DSR
    wr(u, U.UART_MCR, U.MCR_OUT2)
    assert rd(u, U.UART_MSR) == 0xB0
    u.log.lines.clear()
    assert u.read(U.UART_LSR, 4) == 0                   # past the 8 bytes
    u.write(8, 1, 0x41)
    assert u.read(0xFFF, 1) == 0
    assert u.log.topics() == ["guest_errors"] * 3 and out == b""


def test_uart_fifo_switched_off_flushes_and_raises_thre():
    u, _, _, _, _ = _uart()
    wr(u, U.UART_IER, U.IER_THRI)
    rd(u, U.UART_IIR)                                   # acknowledge THRE
    wr(u, U.UART_FCR, U.FCR_FE)
    assert rd(u, U.UART_IIR) == 0xC2                    # toggling FE resets the TX FIFO
    wr(u, U.UART_FCR, 0)
    assert rd(u, U.UART_IIR) == 0x02


# -- finisher ----------------------------------------------------------------

def _finisher():
    ended: list[int | str] = []
    f = Finisher(ended.append, lambda: ended.append("reset"))
    f.log = Log()
    return f, ended


@pytest.mark.parametrize("value, size, result", [
    (FINISHER_PASS, 4, 0),
    (FINISHER_PASS | 7 << 16, 4, 0),
    (FINISHER_FAIL | 3 << 16, 4, 3),
    (FINISHER_FAIL | 0x1FF << 16, 4, 0x1FF),
    (FINISHER_FAIL, 4, 0),                              # QEMU: exit(0)
    (FINISHER_PASS, 2, 0),
    (FINISHER_RESET, 4, "reset"),
])
def test_finisher_ends_or_resets(value, size, result):
    f, ended = _finisher()
    f.write(0, size, value)
    assert ended == [result] and f.log.lines == []


def test_finisher_ignores_everything_else():
    f, ended = _finisher()
    f.write(0, 4, 0x1234)
    f.write(4, 4, FINISHER_PASS)                        # another offset
    f.write(0, 1, FINISHER_PASS & 0xFF)                 # QEMU: access fault
    assert ended == [] and f.log.topics() == ["guest_errors"] * 3
    assert f.read(0, 4) == 0 and f.read(0x800, 2) == 0


# -- the clock --------------------------------------------------------------

def test_clock_tells_when_an_event_goes_ahead_of_the_others():
    """on_earlier: the run loop's cue to end the running slice early (a
    mtimecmp write, an SBI set_timer)."""
    c = Clock()
    seen = []
    c.on_earlier = seen.append
    c.schedule(100, lambda: None)
    c.schedule(200, lambda: None)              # behind 100: no call
    c.schedule(50, lambda: None)
    assert seen == [100, 50]


def test_clock_orders_events_fifo_and_cancels():
    c = Clock()
    seen = []
    c.schedule(10, seen.append, "b")
    e = c.schedule(5, seen.append, "x")
    c.schedule(5, seen.append, "a")
    Clock.cancel(e)
    c.schedule(10, seen.append, "c")
    assert c.next_time() == 5
    c.advance(10)
    assert c.run_due() == 3
    assert seen == ["a", "b", "c"]
    assert c.next_time() is None
