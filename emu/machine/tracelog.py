"""The -d log: one line per event of an enabled topic, stamped with virtual
time, to -D FILE or stderr (QEMU's -d/-D).

Layer: machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO


class TraceLog:
    """Writes lines for the topics in `topics`; `now()` gives the stamp."""

    def __init__(self, topics: tuple[str, ...], path: str | None,
                 now: Callable[[], int]) -> None:
        self.topics = topics
        self.now = now
        self.out: IO[str] | None = None
        if topics:
            self.out = open(path, "w") if path else sys.stderr

    def __call__(self, topic: str, msg: str) -> None:
        """Write a line for `topic` if that topic is enabled."""
        if self.out is not None and topic in self.topics:
            self.out.write(f"[{self.now():>14}ns] {topic}: {msg}\n")

    def close(self) -> None:
        """Flush a -D file (stderr is left alone)."""
        if self.out is not None and self.out is not sys.stderr:
            self.out.flush()
