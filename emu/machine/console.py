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
from typing import IO

from emu.devices.uart import Uart


class ConsoleIO:
    """Routes console bytes. `transcript` holds everything printed; `sink`
    (file-like with write(bytes), or None) gets a copy as it is printed;
    `stdin_fd`, when set, feeds the UART."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        self.transcript = bytearray()
        self.sink = sink
        self.uart: Uart | None = None          # set by the machine once wired
        self.stdin_fd: int | None = None

    def write(self, data: bytes) -> None:
        """The guest printed `data` (UART THR or SBI console)."""
        self.transcript += data
        if self.sink is not None:
            self.sink.write(data)

    def read(self) -> int | None:
        """One byte for SBI getchar, or None when nothing is queued."""
        rx = self.uart.rx if self.uart is not None else None
        return rx.popleft() if rx else None

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
                self.stdin_fd = None    # EOF
