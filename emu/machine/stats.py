"""Counters of a run, kept by the machine; emu/tools/report.py turns them
into the report and the --stats-json figures.

Layer: machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Stats:
    """What the machine counted while it ran."""

    traps: dict[int, int] = field(default_factory=dict)
    interrupts: dict[int, int] = field(default_factory=dict)
    page_faults: dict[int, int] = field(default_factory=dict)
    sbi_calls: int = 0
    user_slices: int = 0       # slices that ended with the hart in U-mode
    user_traps: int = 0        # traps taken from U-mode
    emulated_csr_reads: int = 0
    wfi: int = 0
    code_changes: int = 0      # code pages found rewritten at a fetch fill (translations dropped)
    idle_ns: int = 0
    slices: int = 0
    wall_s: float = 0.0
