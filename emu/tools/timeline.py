"""Figures over virtual time: periodic samples of the machine's and the
guest kernel's counters, for `--plot` and the experiments' plots.

Samples are taken at slice boundaries once virtual time has moved past the
next sampling point (no clock events: sampling must never keep an idle
guest awake or change when anything happens). Each sample flattens the
counters into "dotted.keys" -> int, so any counter the kernel adds to
kstats appears here without changes.

Layer: tools.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from emu.guestview import kstats


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, int]:
    """Return the int leaves of nested dict `d` as {"a.b.c": value}."""
    out: dict[str, int] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int):
            out[key] = v
    return out


@dataclass
class Sample:
    """Counters at one virtual instant."""

    t_ns: int
    wall_s: float
    values: dict[str, int] = field(default_factory=dict)


class Timeline:
    """Samples `machine` every `period_ns` of virtual time (at slice ends);
    past MAX_SAMPLES samples it keeps every other one and doubles the period,
    so memory stays bounded on long runs."""

    MAX_SAMPLES = 4000

    def __init__(self, machine: Any, period_ns: int = 1_000_000) -> None:
        self.machine = machine
        self.period_ns = period_ns
        self.samples: list[Sample] = []
        self._next = 0
        self._wall0 = time.perf_counter()

    def __call__(self) -> None:
        """Slice-end observer: sample if virtual time passed the next point."""
        now = self.machine.now()
        if now >= self._next:
            self.sample()
            if len(self.samples) > self.MAX_SAMPLES:   # long run: halve the resolution
                self.samples = self.samples[::2]
                self.period_ns *= 2
            self._next = now - now % self.period_ns + self.period_ns

    def sample(self) -> Sample:
        """Take a sample now and return it."""
        m = self.machine
        values = {
            "instructions": m.icount,
            "page_faults": sum(m.cpu.mmu.faults_by_cause.values()),
            "traps": sum(m.stats.traps.values()),
            "interrupts": sum(m.stats.interrupts.values()),
        }
        values.update(flatten(m.nic.stats(), "nic."))
        seg = m.network.segment.stats() if m.network is not None else {}
        values.update(flatten(seg, "net."))
        values.update(flatten(kstats.collect(m), "kernel."))
        s = Sample(m.now(), time.perf_counter() - self._wall0, values)
        self.samples.append(s)
        return s

    def keys(self) -> list[str]:
        """Every counter name seen in the samples."""
        seen: dict[str, None] = {}
        for s in self.samples:
            seen.update(dict.fromkeys(s.values))
        return list(seen)

    def rate(self, key: str, window_ns: int = 0) -> tuple[list[float], list[float]]:
        """Return (t in ms, per-virtual-second rate of `key`) at each sample,
        over the `window_ns` before it (window_rate); 0: since the previous
        sample."""
        return window_rate([s.t_ns for s in self.samples],
                           [s.values.get(key, 0) for s in self.samples], window_ns)

    def level(self, key: str) -> tuple[list[float], list[int]]:
        """Return (t in ms, value of `key`) at each sample."""
        return ([s.t_ns / 1e6 for s in self.samples],
                [s.values.get(key, 0) for s in self.samples])


def window_rate(ts: list[int], vs: list[int], window_ns: int) -> tuple[list[float], list[float]]:
    """Rates of the counter `vs` sampled at virtual times `ts` (ns): at each
    sample, (increase since the last sample at least `window_ns` earlier) /
    (time between them), per virtual second. Samples less than a window
    after the first have no rate. Returns (t in ms, rates)."""
    out_t: list[float] = []
    out_r: list[float] = []
    j = 0
    for i in range(1, len(ts)):
        while j + 1 < i and ts[j + 1] <= ts[i] - window_ns:
            j += 1
        dt = ts[i] - ts[j]
        if dt <= 0 or dt < window_ns:
            continue
        out_t.append(ts[i] / 1e6)
        out_r.append((vs[i] - vs[j]) / (dt / 1e9))
    return out_t, out_r


def window_level(ts: list[int], vs: list[int],
                 window_ns: int) -> tuple[list[float], list[float], list[float]]:
    """The gauge `vs` sampled at virtual times `ts` (ns), seen through a
    window: at each sample at t, the (mean, min, max) of the samples in
    (t - window_ns, t]."""
    mean: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    j = 0
    for i in range(len(ts)):
        while ts[j] <= ts[i] - window_ns and j < i:
            j += 1
        part = vs[j:i + 1]
        mean.append(sum(part) / len(part))
        lo.append(min(part))
        hi.append(max(part))
    return mean, lo, hi
