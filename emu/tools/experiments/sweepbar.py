"""A sweep's progress on stderr: runs done of all, elapsed and ETA. A live
rich bar on a terminal; elsewhere one plain line per finished run, so a log
shows how far a sweep got.

Layer: tools.
"""

from __future__ import annotations

import time
from typing import IO

from emu.tools.progress import live_terminal


class SweepBar:
    """`with SweepBar(total, what, err) as bar:` ... `bar.done()` after each
    run (the runner's on_done)."""

    def __init__(self, total: int, what: str, err: IO[str]) -> None:
        self.total, self.what, self.err = total, what, err
        self.n = 0
        self.t0 = time.monotonic()
        self._bar = None
        self._task = None

    def __enter__(self) -> SweepBar:
        if live_terminal(self.err):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self._bar = Progress("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), "ETA",
                                 TimeRemainingColumn(), console=Console(file=self.err))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def done(self, *_: object) -> None:
        """One more run finished."""
        self.n += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.n)
            return
        spent = time.monotonic() - self.t0
        eta = spent / self.n * (self.total - self.n)
        print(f"{self.what}: {self.n}/{self.total} runs, {spent:.1f} s, ETA {eta:.1f} s",
              file=self.err, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
