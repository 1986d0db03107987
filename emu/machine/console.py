"""The console: what the guest prints (kept as the run's transcript and
copied to a sink, e.g. the terminal) and what it reads (bytes queued in the
UART, from host stdin in interactive runs).

Reading host stdin is the one input that makes a run depend on the outside
world; the report says so (`deterministic: false`). A console script
(`ConsoleScript`: --send, --prompt, --until) is the deterministic way to
type: each line goes in when the guest has printed its prompt, at that
point of virtual time, so the same run types at the same instruction.

Layer: machine.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import IO

from emu.devices.uart import LSR_DR, UART_LSR, UART_RBR, Uart
from emu.machine.peers import RealPeers


class ConsoleScript:
    """Lines to type and a text to wait for, as `expect` would: after each
    `prompt` the guest prints, the next of `sends` is typed (with a newline);
    once every line is typed, `until` appearing in what the guest prints
    after the last line calls `on_until` (the machine ends the run, status 0).
    Without `until`, the run goes on after the last line."""

    def __init__(self, sends: tuple[str, ...], prompt: str, until: str | None,
                 type_: Callable[[bytes], None], on_until: Callable[[str], None]) -> None:
        if not prompt and sends:
            raise ValueError("a console script needs a non-empty prompt")
        self.sends = [t.encode() + b"\n" for t in sends]
        self.prompt = prompt.encode()
        self.until = until.encode() if until else None
        self.type_ = type_
        self.on_until = on_until
        self.mark = 0           # transcript length when the last line was typed
        self.done = False

    def printed(self, transcript: bytearray, new: int) -> None:
        """The guest printed `new` more bytes, now at the end of `transcript`."""
        if self.done:
            return
        if self.sends:
            start = max(self.mark, len(transcript) - new - len(self.prompt) + 1)
            if transcript.find(self.prompt, start) >= 0:
                self.mark = len(transcript)
                self.type_(self.sends.pop(0))
            return
        if self.until is not None:
            start = max(self.mark, len(transcript) - new - len(self.until) + 1)
            if transcript.find(self.until, start) >= 0:
                self.done = True
                self.on_until(self.until.decode(errors="replace"))


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
        self.script: ConsoleScript | None = None

    def type_(self, data: bytes) -> None:
        """Queue `data` for the UART's receiver, as if typed."""
        if self.uart is not None:
            self.uart.feed(data)

    def attach_stdin(self, fd: int) -> None:
        """Feed host stdin (`fd`) to the UART: a real peer."""
        self.stdin_fd = fd
        if self.peers is not None:
            self.peers.add("stdin", fd)

    def write(self, data: bytes) -> None:
        """The guest printed `data` (UART THR or SBI console)."""
        self.transcript += data
        if self.script is not None:
            self.script.printed(self.transcript, len(data))
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
