"""The ns16550a UART of QEMU's `virt` board, as QEMU 7.2's hw/char/serial.c
(serial_mm_init(..., regshift 0, baudbase 399193, ...) in hw/riscv/virt.c).

Registers (one byte each at offsets 0..7; National PC16550D datasheet):

    0  RBR (read) / THR (write); DLL when LCR.DLAB
    1  IER: RDI 0x01, THRI 0x02, RLSI 0x04, MSI 0x08; DLM when LCR.DLAB
    2  IIR (read): cause in bits 0..3, 0xC0 while FIFOs are enabled
       FCR (write): FE 0x01, RFR 0x02, XFR 0x04, trigger level in bits 6..7
    3  LCR (DLAB 0x80)      4  MCR (0x1f; LOOP 0x10)
    5  LSR: DR 0x01, OE 0x02, BI 0x10, THRE 0x20, TEMT 0x40
    6  MSR: DCD|DSR|CTS (0xB0) outside loopback; MCR's outputs in loopback
    7  SCR

A 2- or 4-byte access to an offset below 8 is the one-byte register there
(upper bytes read 0 and are dropped on writes); anything from offset 8 on
is outside QEMU's 8-byte region and faults there (emu logs guest_errors).

Interrupts, highest first (serial_update_irq): line status (RLSI and OE or
BI), character timeout (RDI and the FIFO timer expired), received data (RDI
and DR; with FIFOs, the trigger level reached), THR empty (THRI and the
THRE interrupt pending), modem status (MSI and a delta bit, which this
console never sets). The THRE interrupt becomes pending when the THR empties
and when IER.THRI goes from 0 to 1 while THR is empty; reading IIR while it
reports THRE, or writing THR, clears it. Every update drives the IrqLine
(QEMU raises or lowers its line each time), which is what lets the PLIC pend
the UART again after a claim.

Transmission is instant (QEMU has no baud delay either): a THR write goes to
`output(bytes)` at once, or back into the receiver in loopback. Reception:
`feed(bytes)` queues host input, which enters the receiver as QEMU's
flow control lets it (serial_can_receive: one byte while DR is clear without
FIFOs; up to the trigger level with them), at once, with no host latency.
The 16-byte receive FIFO overflows (LSR.OE) only in loopback. The character
timeout fires 4 character times after the last byte in or out of the FIFO,
as a Clock event; the character time follows LCR and the divisor latch.

Layer: devices (imports emu.core and emu.net).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emu.core.clock import Clock, Event
from emu.devices.bus import IrqLine, no_log

UART_RBR = UART_THR = UART_DLL = 0
UART_IER = UART_DLM = 1
UART_IIR = UART_FCR = 2
UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR = 3, 4, 5, 6, 7
UART_REGION = 8                   # QEMU maps 8 << regshift bytes

IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08
IIR_NO_INT, IIR_ID = 0x01, 0x06
IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_CTI = 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FE = 0xC0
FCR_FE, FCR_RFR, FCR_XFR = 0x01, 0x02, 0x04
FCR_STICKY = 0xC9                 # the FCR bits QEMU keeps
LCR_DLAB = 0x80
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_BI, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x10, 0x20, 0x40
LSR_INT_ANY = 0x1E                # OE, PE, FE, BI
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80
MSR_ANY_DELTA = 0x0F

FIFO_SIZE = 16
TRIGGER_LEVELS = (1, 4, 8, 14)    # FCR bits 6..7
BAUDBASE = 399_193                # hw/riscv/virt.c
RESET_DIVIDER = 0x0C
RESET_CHAR_NS = 1_000_000_000 // 9600 * 10   # serial_reset: 9600 8N1


class Uart:
    """ns16550a with FIFOs. `output(bytes)` receives every transmitted byte;
    `now()` is virtual ns, `clock` runs the FIFO character timeout."""

    name = "uart"

    def __init__(self, irq: IrqLine, output: Callable[[bytes], None], clock: Clock,
                 now: Callable[[], int]) -> None:
        self.irq = irq
        self.output = output
        self.clock = clock
        self.now = now
        self.log = no_log
        self.input: deque[int] = deque()    # host bytes not yet let in (the chardev)
        self.rx: deque[int] = deque()       # the receive FIFO
        self.rbr = 0
        self.ier = 0
        self.iir = IIR_NO_INT
        self.fcr = 0
        self.lcr = 0
        self.mcr = MCR_OUT2
        self.lsr = LSR_TEMT | LSR_THRE
        self.msr = MSR_DCD | MSR_DSR | MSR_CTS
        self.scr = 0
        self.divider = RESET_DIVIDER
        self.char_ns = RESET_CHAR_NS
        self.trigger = 1
        self.thr_ipending = False
        self.timeout_ipending = False
        self._timeout: Event | None = None
        self.tx_bytes = 0

    # -- host side -----------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Queue `data` as host input; it enters the receiver as flow control
        allows (now, and after each read that makes room)."""
        self.input.extend(data)
        self._accept_input()

    def _can_receive(self) -> int:
        """How many bytes the host may hand over now (serial_can_receive)."""
        if self.fcr & FCR_FE:
            n = len(self.rx)
            if n >= FIFO_SIZE:
                return 0
            return self.trigger - n if n <= self.trigger else 1
        return 0 if self.lsr & LSR_DR else 1

    def _accept_input(self) -> None:
        while self.input and (n := self._can_receive()) > 0:
            self._receive(bytes(self.input.popleft() for _ in range(min(n, len(self.input)))))

    def _receive(self, data: bytes) -> None:
        """Bytes arrive at the receiver (serial_receive1)."""
        if self.fcr & FCR_FE:
            for b in data:
                if len(self.rx) < FIFO_SIZE:
                    self.rx.append(b)
                else:
                    self.lsr |= LSR_OE          # an overrun keeps the FIFO's contents
            self.lsr |= LSR_DR
            self._arm_timeout()
        else:
            if self.lsr & LSR_DR:
                self.lsr |= LSR_OE
            self.rbr = data[0]
            self.lsr |= LSR_DR
        self._update_irq()

    # -- the character timeout ------------------------------------------------
    def _arm_timeout(self) -> None:
        self._cancel_timeout()
        self._timeout = self.clock.schedule(self.now() + 4 * self.char_ns, self._timeout_fired)

    def _cancel_timeout(self) -> None:
        if self._timeout is not None:
            Clock.cancel(self._timeout)
            self._timeout = None

    def _timeout_fired(self) -> None:
        self._timeout = None
        if self.rx:
            self.timeout_ipending = True
            self._update_irq()

    # -- state ------------------------------------------------------------
    def _update_irq(self) -> None:
        """Recompute IIR and drive the line (serial_update_irq)."""
        ier, lsr = self.ier, self.lsr
        if ier & IER_RLSI and lsr & LSR_INT_ANY:
            cause = IIR_RLSI
        elif ier & IER_RDI and self.timeout_ipending:
            cause = IIR_CTI
        elif ier & IER_RDI and lsr & LSR_DR and (
                not self.fcr & FCR_FE or len(self.rx) >= self.trigger):
            cause = IIR_RDI
        elif ier & IER_THRI and self.thr_ipending:
            cause = IIR_THRI
        elif ier & IER_MSI and self.msr & MSR_ANY_DELTA:
            cause = IIR_MSI
        else:
            cause = IIR_NO_INT
        self.iir = cause | self.iir & 0xF0
        self.irq.set(cause != IIR_NO_INT)

    def _update_parameters(self) -> None:
        """The character time from LCR and the divisor (serial_update_parameters)."""
        if self.divider == 0 or self.divider > BAUDBASE:
            return
        frame = 1 + (self.lcr & 3) + 5 + (2 if self.lcr & 0x04 else 1) + (
            1 if self.lcr & 0x08 else 0)
        self.char_ns = 1_000_000_000 // (BAUDBASE // self.divider) * frame

    def _transmit(self, byte: int) -> None:
        """THR was written: send at once (serial_xmit)."""
        self.thr_ipending = False
        self.lsr &= ~(LSR_THRE | LSR_TEMT)
        self._update_irq()
        self.lsr |= LSR_THRE
        if not self.thr_ipending:
            self.thr_ipending = True
            self._update_irq()
        if self.mcr & MCR_LOOP:
            self._receive(bytes((byte,)))
        else:
            self.tx_bytes += 1
            self.output(bytes((byte,)))
        self.lsr |= LSR_TEMT

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_FE:
            value |= FCR_XFR | FCR_RFR          # toggling the FIFOs flushes them
        if value & FCR_RFR:
            self.lsr &= ~(LSR_DR | LSR_BI)
            self._cancel_timeout()
            self.timeout_ipending = False
            self.rx.clear()
        if value & FCR_XFR:
            self.lsr |= LSR_THRE
            self.thr_ipending = True
        self.fcr = value & FCR_STICKY
        if self.fcr & FCR_FE:
            self.iir |= IIR_FE
            self.trigger = TRIGGER_LEVELS[self.fcr >> 6]
        else:
            self.iir &= ~IIR_FE
        self._update_irq()
        self._accept_input()

    def _write_ier(self, value: int) -> None:
        changed = (self.ier ^ value) & 0x0F
        self.ier = value & 0x0F
        if changed & IER_THRI:
            self.thr_ipending = bool(self.ier & IER_THRI and self.lsr & LSR_THRE)
        if changed:
            self._update_irq()

    def _read_rbr(self) -> int:
        if self.fcr & FCR_FE:
            value = self.rx.popleft() if self.rx else 0
            if self.rx:
                self._arm_timeout()
            else:
                self.lsr &= ~(LSR_DR | LSR_BI)
            self.timeout_ipending = False
        else:
            value = self.rbr
            self.lsr &= ~(LSR_DR | LSR_BI)
        self._update_irq()
        self._accept_input()
        return value

    def _read_msr(self) -> int:
        if self.mcr & MCR_LOOP:       # the modem outputs loop back to the inputs
            m = self.mcr
            return (m & (MCR_OUT1 | MCR_OUT2)) << 4 | (m & MCR_RTS) << 3 | (m & MCR_DTR) << 5
        value = self.msr
        if self.msr & MSR_ANY_DELTA:
            self.msr &= 0xF0
            self._update_irq()
        return value

    # -- MMIO ----------------------------------------------------------------
    def _in_region(self, offset: int, size: int, what: str) -> bool:
        if offset + size <= UART_REGION:
            return True
        self.log("guest_errors", f"uart: {what} at +0x{offset:x} (size {size}) outside "
                 "the 8 registers ignored (QEMU: access fault)")
        return False

    def read(self, offset: int, size: int) -> int:
        """Return the one-byte register at `offset` (0..7), with its read side
        effects (RBR pops, IIR acknowledges THRE, LSR clears OE/BI)."""
        if not self._in_region(offset, size, "read"):
            return 0
        dlab = self.lcr & LCR_DLAB
        if offset == UART_RBR:
            return self.divider & 0xFF if dlab else self._read_rbr()
        if offset == UART_IER:
            return self.divider >> 8 if dlab else self.ier
        if offset == UART_IIR:
            value = self.iir
            if value & IIR_ID == IIR_THRI:
                self.thr_ipending = False
                self._update_irq()
            return value
        if offset == UART_LCR:
            return self.lcr
        if offset == UART_MCR:
            return self.mcr
        if offset == UART_LSR:
            value = self.lsr
            if self.lsr & (LSR_BI | LSR_OE):
                self.lsr &= ~(LSR_BI | LSR_OE)
                self._update_irq()
            return value
        if offset == UART_MSR:
            return self._read_msr()
        return self.scr

    def write(self, offset: int, size: int, value: int) -> None:
        """Write the one-byte register at `offset` (0..7) with the low byte
        of `value`; LSR and MSR ignore writes."""
        if not self._in_region(offset, size, f"write of 0x{value:x}"):
            return
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == UART_THR:
            if dlab:
                self.divider = self.divider & 0xFF00 | value
                self._update_parameters()
            else:
                self._transmit(value)
        elif offset == UART_IER:
            if dlab:
                self.divider = self.divider & 0x00FF | value << 8
                self._update_parameters()
            else:
                self._write_ier(value)
        elif offset == UART_FCR:
            self._write_fcr(value)
        elif offset == UART_LCR:
            self.lcr = value
            self._update_parameters()
        elif offset == UART_MCR:
            self.mcr = value & 0x1F
        elif offset == UART_SCR:
            self.scr = value
