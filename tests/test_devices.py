"""PLIC, UART and timer as devices: registers, levels, claims, events."""

from __future__ import annotations

from emu.core.clock import Clock
from emu.devices import plic as plic_regs
from emu.devices import timer as timer_regs
from emu.devices.plic import Plic
from emu.devices.timer import Timer
from emu.devices.uart import Uart
from emu.machine import board


def _plic():
    seip = []
    p = Plic(seip.append)
    return p, seip


def test_plic_claim_complete_priority_threshold():
    p, seip = _plic()
    a, b = p.line(1), p.line(10)
    p.write(4 * 1, 4, 1)
    p.write(4 * 10, 4, 3)
    a.raise_()
    b.raise_()
    assert seip == []                       # nothing enabled yet
    p.write(plic_regs.PLIC_SENABLE, 4, (1 << 1) | (1 << 10))
    assert seip == [True]
    assert p.read(plic_regs.PLIC_PENDING, 4) == (1 << 1) | (1 << 10)
    assert p.read(plic_regs.PLIC_SCLAIM, 4) == 10   # higher priority first
    assert p.read(plic_regs.PLIC_SCLAIM, 4) == 1
    assert seip[-1] is False                # both claimed
    assert p.read(plic_regs.PLIC_SCLAIM, 4) == 0
    p.write(plic_regs.PLIC_SCLAIM, 4, 10)    # complete: still high -> pending again
    assert seip[-1] is True
    b.lower()
    assert seip[-1] is False
    p.write(plic_regs.PLIC_SCLAIM, 4, 1)
    p.write(plic_regs.PLIC_STHRESHOLD, 4, 1)  # priority 1 is not above threshold 1
    assert seip[-1] is False
    p.write(plic_regs.PLIC_STHRESHOLD, 4, 0)
    assert seip[-1] is True


def test_plic_ignores_source_zero_and_bad_offsets():
    p, _ = _plic()
    p.write(0, 4, 7)
    assert p.read(0, 4) == 0
    p.write(0x3000, 4, 5)
    assert p.read(0x3000, 4) == 0
    p.write(plic_regs.PLIC_SCLAIM, 4, 999)   # bogus completion is ignored


def test_uart_tx_rx_and_interrupt():
    p, seip = _plic()
    out = bytearray()
    u = Uart(p.line(board.slot("uart").irq), out.extend)
    p.write(4 * board.slot("uart").irq, 4, 1)
    p.write(plic_regs.PLIC_SENABLE, 4, 1 << board.slot("uart").irq)
    u.write(0, 1, ord("A"))
    assert out == b"A"
    assert u.read(5, 1) & 0x60 == 0x60      # THRE | TEMT
    u.feed(b"xy")
    assert u.read(5, 1) & 1 and seip == []  # RX interrupt not enabled
    u.write(1, 1, 1)
    assert seip == [True]
    assert u.read(2, 1) == 0x04
    assert u.read(0, 1) == ord("x")
    assert u.read(0, 1) == ord("y")
    assert seip[-1] is False
    assert not u.read(5, 1) & 1


def test_timer_compare_raises_stip_at_the_virtual_time():
    clock = Clock()
    stip = []
    t = Timer(clock, lambda: clock.now, stip.append)
    t.set_timer(1000)
    assert stip == [False]
    clock.advance(999)
    clock.run_due()
    assert stip == [False]
    clock.advance(1000)
    clock.run_due()
    assert stip == [False, True] and t.fired == 1
    t.set_timer(5000)                        # re-arm clears STIP
    assert stip[-1] is False
    t.set_timer(0xFFFF_FFFF_FFFF_FFFF)       # "never" cancels
    clock.advance(10_000)
    clock.run_due()
    assert t.fired == 1
    assert t.read(timer_regs.TIMER_MTIME, 4) == 10_000
    assert t.read(timer_regs.TIMER_MTIME + 4, 4) == 0


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
