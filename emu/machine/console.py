"""The console: what the guest prints (kept as the run's transcript and
copied to a sink, e.g. the terminal) and what it reads (bytes queued in the
UART, from host stdin in interactive runs).

Reading host stdin is the one input that makes a run depend on the outside
world; the report says so (`deterministic: false`).

Layer: machine.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import IO

from emu.devices.uart import LSR_DR, UART_LSR, UART_RBR, Uart
from emu.machine.peers import RealPeers


class ConsoleIO:
    """Routes console bytes. `transcript` holds everything printed; `sink`
    (file-like with write(bytes), or None) gets a copy as it is printed;
    `stdin_fd`, when set (attach_stdin), feeds the UART. `on_sink_closed`
    is called once when the sink's reader went away (a closed pipe)."""

    def __init__(self, sink: IO[bytes] | None, peers: RealPeers | None = None) -> None:
        self.transcript = bytearray()
        self.sink = sink
        self.uart: Uart | None = None          # set by the machine once wired
        self.stdin_fd: int | None = None
        self.peers = peers
        self.on_sink_closed: Callable[[], None] | None = None

    def attach_stdin(self, fd: int) -> None:
        """Feed host stdin (`fd`) to the UART: a real peer."""
        self.stdin_fd = fd
        if self.peers is not None:
            self.peers.add("stdin", fd)

    def write(self, data: bytes) -> None:
        """The guest printed `data` (UART THR or SBI console)."""
        self.transcript += data
        if self.sink is not None:
            try:
                self.sink.write(data)
            except BrokenPipeError:         # `emu run | head`: the reader left
                self.sink = None
                if self.on_sink_closed is not None:
                    self.on_sink_closed()

    def read(self) -> int | None:
        """One byte for SBI getchar, or None when nothing was received: read
        through the UART's registers, as OpenSBI's uart8250_getc."""
        u = self.uart
        if u is None or not u.read(UART_LSR, 1) & LSR_DR:
            return None
        return u.read(UART_RBR, 1)

    def poll_stdin(self, timeout: float | None) -> None:
        """Feed bytes waiting on host stdin to the UART; wait at most
        `timeout` seconds (None: until input or EOF). EOF stops polling."""
        fd = self.stdin_fd
        if fd is None or self.uart is None:
            return
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            data = os.read(fd, 4096)
            if data:
                self.uart.feed(data)
            else:
                self.stdin_fd = None    # EOF: a pipe that ended is not an error
                if self.peers is not None:
                    self.peers.remove("stdin")
