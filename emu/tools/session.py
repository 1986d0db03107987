"""One run of the machine with its observers, assembled in one place for
every tool that runs a guest: `emu run`, the experiments and the gdb-served
run. A RunSession builds the Machine, attaches the deadlock watch, the
timeline and the progress display as slice observers (in that order),
runs it, and ends with the figures: the deadlock diagnosis, the report,
--stats-json and --plot.

Layer: tools.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import IO, Any

from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.tools import report
from emu.tools.deadlock import DeadlockWatch
from emu.tools.swapoffclock import SwapoffClock
from emu.tools.timeline import Timeline

EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_PIPE = 128 + signal.SIGPIPE
SIGNAL_ENDS = {signal.SIGINT: (EXIT_INTERRUPTED, "interrupted (SIGINT)"),
               signal.SIGTERM: (EXIT_TERMINATED, "terminated (SIGTERM)")}


@contextmanager
def ending_signals(machine: Machine) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM end `machine`'s run at the
    next slice boundary (status 128 + signal) instead of raising inside it.
    Only the main thread may install handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        machine.loop.end(*SIGNAL_ENDS[signal.Signals(signum)])

    old = {s: signal.signal(s, handler) for s in SIGNAL_ENDS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Writer:
    """A file-like console sink that hands bytes to a callable."""

    def __init__(self, fn) -> None:
        self.write = fn


class RunSession:
    """A Machine and its observers.

    `deadlock_ns`: stop a stalled run after that much virtual time (None:
    no watch). `sample_ns`: sample a Timeline that often (None: no
    Timeline). `progress`: the text stream (stderr)
    to show progress on, a live bar on a terminal, plain lines elsewhere
    (emu/tools/progress.py); the guest console then goes through it to
    `console`. `stdin`: feed host stdin to the UART.
    """

    def __init__(self, cfg: MachineConfig, console: IO[bytes] | None = None, *,
                 deadlock_ns: int | None = None, sample_ns: int | None = None,
                 progress: IO[str] | None = None, stdin: bool = False) -> None:
        self.machine = m = Machine(cfg, console=console)
        if stdin:
            m.console_io.attach_stdin(sys.stdin.fileno())
        self.watch: DeadlockWatch | None = None
        if deadlock_ns is not None:
            self.watch = DeadlockWatch(m, deadlock_ns)
            m.after_slice.append(self.watch)
        self.swapoff_clock = SwapoffClock(m)
        if self.swapoff_clock.addr is not None:
            m.after_slice.append(self.swapoff_clock)
        self.timeline: Timeline | None = None
        if sample_ns is not None:
            self.timeline = Timeline(m, period_ns=sample_ns)
            m.after_slice.append(self.timeline)
        self.progress = None
        if progress is not None:
            from emu.tools.progress import Progress
            self.progress = Progress(m, progress, console)
            m.console_io.sink = _Writer(self.progress.console_write)   # type: ignore[assignment]
            m.after_slice.append(self.progress)

    def run(self, interruptible: bool = False) -> int:
        """Run to the end; returns the exit status. With `interruptible`,
        SIGINT and SIGTERM end the run at the next slice boundary with
        status 130 / 143 (the report, pcap and --stats-json then come out
        whole), and a console pipe whose reader left (`emu run | head`)
        ends it with 141, quietly, as SIGPIPE ends a Unix tool."""
        m = self.machine
        if interruptible:
            m.console_io.on_sink_closed = lambda: m.loop.end(EXIT_PIPE, "console pipe closed")
        if self.progress is not None:
            self.progress.__enter__()
        try:
            with ending_signals(m) if interruptible else nullcontext():
                status = m.run()
        finally:
            if self.progress is not None:
                self.progress.__exit__(None, None, None)
        if self.timeline is not None:
            self.timeline.sample()
        return status

    @property
    def diagnosis(self) -> str | None:
        """The deadlock watch's explanation, if it stopped the run."""
        return self.watch.diagnosis if self.watch is not None else None

    def figures(self) -> dict[str, Any]:
        """The run's figures (emu/tools/report.py) with the deadlock diagnosis."""
        return figures(self.machine, self.diagnosis)

    def finish(self, *, stats_json: str | None = None, quiet: bool = False,
               plot: str | None = None, plot_title: str = "",
               err: IO[str] | None = None) -> dict[str, Any]:
        """After run(): draw --plot, then end_of_run(). Returns the figures."""
        if plot:
            from emu.tools.plot import plot_timeline
            assert self.timeline is not None, "plot needs sample_ns"
            plot_timeline(self.timeline, plot, title=plot_title)
        return end_of_run(self.machine, self.diagnosis, stats_json=stats_json, quiet=quiet,
                          err=err)


def figures(machine: Machine, diagnosis: str | None = None) -> dict[str, Any]:
    """The figures of `machine`'s run (emu/tools/report.py), with the deadlock
    diagnosis (None when no watch stopped it)."""
    stats = report.collect(machine)
    stats["deadlock"] = diagnosis
    return stats


def end_of_run(machine: Machine, diagnosis: str | None = None, *,
               stats_json: str | None = None, quiet: bool = False,
               err: IO[str] | None = None) -> dict[str, Any]:
    """What every run ends with: the diagnosis and the report on `err`
    (stderr), --stats-json written. Returns the figures."""
    err = err if err is not None else sys.stderr
    stats = figures(machine, diagnosis)
    if diagnosis:
        print(diagnosis, file=err)
    if stats_json:
        report.write_json(stats, stats_json)
    if not quiet:
        report.print_report(stats, err)
    return stats
