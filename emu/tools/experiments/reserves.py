"""Reserve experiments: run a memory-exhaustion scenario with reserves on,
off, or with a given min watermark, and search the smallest
`min_free_kb` with which it still completes (`emu reserve-search`).

A scenario is a workload (the guest's init command line) on a machine of a
given size, swapping over the embedded AoE target through a lossy link with
junk traffic (`--noise`). A run *completes* when the guest exits 0 (memhog:
every page came back bit-identical); it *deadlocks* when the emulator's
detector stops it (exit status 3, emu/tools/deadlock.py). The search bisects on
whole pages, assuming that more reserve never hurts; every probe is listed
so the assumption can be checked. Runs are independent (one per seed and
candidate) and go through the experiments' runner (runner.py).

Layer: tools.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from emu.core.units import parse_size, parse_time_ns
from emu.guestview import kstats
from emu.machine.config import MachineConfig
from emu.net.network import NetConfig
from emu.tools.deadlock import EXIT_DEADLOCK
from emu.tools.experiments import runner
from emu.tools.session import RunSession

# The default scenario: the swap demo's 64 MiB working set on 16 MiB of RAM,
# the demo's lossy link, and 20,000 junk frames per second.
DEFAULT_WORKLOAD = "memhog pages=4096 passes=2 procs=4"
DEFAULT_NET = "loss 1% delay 50us 20us"
DEFAULT_NOISE = "20000"
MIN_KB_FLOOR = 16      # the kernel's smallest min_free_kb (param.c)


@dataclass(frozen=True)
class Scenario:
    """One memory-exhaustion experiment, minus the seed and the reserve."""

    ram: str = "16M"
    workload: str = DEFAULT_WORKLOAD
    net: str = DEFAULT_NET
    noise: str | None = DEFAULT_NOISE
    target: str = "mem:128M"
    target_service: str = "20us"
    deadlock: str = "2s"
    max_insns: int | None = None
    kernel: str | None = None

    def append(self, min_kb: int | None, reserve_off: bool) -> str:
        """The kernel command line for one run."""
        words = []
        if reserve_off:
            words.append("reserve=off")
        if min_kb is not None:
            words.append(f"min_free_kb={min_kb}")
        return " ".join(words + [f"init={self.workload}"])

    def config(self, seed: int, min_kb: int | None, reserve_off: bool) -> MachineConfig:
        """A validated MachineConfig for one run. Raises ConfigError."""
        cfg = MachineConfig(kernel=self.kernel, ram_size=parse_size(self.ram),
                            append=self.append(min_kb, reserve_off), seed=seed,
                            max_insns=self.max_insns)
        cfg.validate()
        cfg.net = NetConfig(net=self.net, noise=self.noise, targets=(self.target,),
                            target_service=self.target_service, seed=seed, mtu=cfg.mtu)
        cfg.net.validate()
        parse_time_ns(self.deadlock)
        return cfg


@dataclass
class Outcome:
    """What one run did."""

    seed: int
    min_kb: int | None
    reserve_off: bool
    status: int
    completed: bool
    deadlocked: bool
    reason: str
    min_pages: int = 0
    free_low: int = 0
    reserve: dict[str, dict[str, int]] = field(default_factory=dict)
    reserve_allocs: int = 0
    reserve_denied: int = 0
    pfmemalloc_drop: int = 0
    no_buffer_drops: int = 0
    swap_outs: int = 0
    virtual_ms: float = 0.0
    wall_s: float = 0.0
    diagnosis: str | None = None
    stall_ns: int | None = None      # virtual time the deadlock's stall began
    console: str = ""
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    def verdict(self) -> str:
        """A few words: how the run ended and when (virtual time)."""
        what = "completed" if self.completed else \
            "deadlock detected" if self.deadlocked else f"failed ({self.reason})"
        return f"{what} at {self.virtual_ms:,.0f} ms"

    def summary(self) -> str:
        """One line: what happened and the reserve figures."""
        peaks = " ".join(f"{n} {r['peak']}/{r['limit']}" for n, r in self.reserve.items())
        what = "completed" if self.completed else \
            "DEADLOCK" if self.deadlocked else f"failed ({self.reason})"
        return (f"seed {self.seed}: {what}; free low {self.free_low} (min {self.min_pages}); "
                f"reserve peak {peaks}; denied {self.reserve_denied}; "
                f"no-buffer drops {self.no_buffer_drops}; {self.virtual_ms:,.0f} ms virtual")


def run_once(scenario: Scenario, seed: int, min_kb: int | None = None,
             reserve_off: bool = False, sample_ns: int = 0) -> Outcome:
    """Run the scenario once. With sample_ns > 0 the outcome carries samples
    of the kernel's counters every sample_ns of virtual time (for plots).
    Raises ConfigError on a bad scenario."""
    cfg = scenario.config(seed, min_kb, reserve_off)
    console = io.BytesIO()
    deadlock_ns = None if scenario.deadlock == "off" else parse_time_ns(scenario.deadlock)
    session = RunSession(cfg, console, deadlock_ns=deadlock_ns, sample_ns=sample_ns or None)
    machine = session.machine
    t0 = time.perf_counter()
    status = session.run()
    wall = time.perf_counter() - t0
    k = kstats.collect(machine)
    watch = session.watch
    deadlocked = session.diagnosis is not None
    out = Outcome(
        seed=seed, min_kb=min_kb, reserve_off=reserve_off, status=status,
        completed=status == 0, deadlocked=deadlocked and status == EXIT_DEADLOCK,
        reason=machine.stop_reason or f"exit status {status}",
        wall_s=wall, virtual_ms=machine.now() / 1e6,
        diagnosis=session.diagnosis,
        stall_ns=watch.stall_start_ns if deadlocked and watch is not None else None,
        console=console.getvalue().decode("utf-8", "replace"))
    if k:
        out.min_pages = k["memory"]["watermarks"]["min"]
        out.free_low = k["memory"]["free_low"]
        out.reserve = k["reserve"]
        out.reserve_allocs = k["reserve_allocs"]
        out.reserve_denied = k["reserve_denied"]
        out.pfmemalloc_drop = k["pfmemalloc_drop"]
        out.no_buffer_drops = k["net"]["drops"]["no_buffer"]
        out.swap_outs = k["swap"]["swap_outs"]
    if session.timeline is not None:
        out.samples = [(s.t_ns, s.values) for s in session.timeline.samples]
    return out


def run_many(jobs: Sequence[tuple[Any, ...]], workers: int | runner.Spread = 0
             ) -> list[Outcome]:
    """Run jobs - run_once argument tuples (scenario, seed, min_kb,
    reserve_off[, sample_ns]) - on the experiments' runner (`workers`: local
    processes, 0 for one per core, or a runner.Spread). Returns the
    outcomes in job order."""
    return runner.run_all(run_once, jobs, workers)


def linux_min_free_kb(ram_bytes: int) -> int:
    """Linux's min_free_kbytes for `ram_bytes` of low memory:
    sqrt(lowmem_kb * 16), clamped to [128, 65536] (mm/page_alloc.c)."""
    kb = math.isqrt((ram_bytes // 1024) * 16)
    return max(128, min(65536, kb))


@dataclass
class Probe:
    """One candidate min_free_kb and how every seed did with it."""

    min_kb: int
    outcomes: list[Outcome]

    @property
    def completed(self) -> bool:
        """True if every seed completed."""
        return all(o.completed for o in self.outcomes)


@dataclass
class SearchResult:
    """The smallest min_free_kb that completed, and every probe made."""

    scenario: Scenario
    seeds: tuple[int, ...]
    smallest_kb: int | None          # None: even the largest tried failed
    largest_failing_kb: int | None   # None: even the floor completed
    default_min_pages: int           # the kernel's own min (Linux's rule on its memory)
    linux_kb: int                    # Linux's rule on the machine's RAM
    probes: list[Probe]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (outcomes without console text and samples)."""
        def slim(o: Outcome) -> dict[str, Any]:
            d = asdict(o)
            d.pop("console")
            d.pop("samples")
            return d
        return {"scenario": asdict(self.scenario), "seeds": list(self.seeds),
                "smallest_min_free_kb": self.smallest_kb,
                "largest_failing_min_free_kb": self.largest_failing_kb,
                "default_min_free_kb": self.default_min_pages * 4,
                "linux_rule_kb": self.linux_kb,
                "probes": [{"min_free_kb": p.min_kb, "completed": p.completed,
                            "runs": [slim(o) for o in p.outcomes]} for p in self.probes]}


def search(scenario: Scenario, seeds: Sequence[int], lo_kb: int = MIN_KB_FLOOR,
           hi_kb: int | None = None, workers: int | runner.Spread = 0,
           on_probe: Callable[[Probe], None] | None = None) -> SearchResult:
    """Bisect, on whole pages, for the smallest min_free_kb in [lo_kb, hi_kb]
    with which every seed completes. hi_kb defaults to the kernel's own min
    (Linux's rule on its managed memory), which is probed first (with no
    min_free_kb, so the default itself is what runs). Every probe's runs go
    to `workers` (local processes or a runner.Spread, held open - one
    cluster connection - for the whole search). Raises ConfigError on a bad
    scenario, range or cluster."""
    from emu.core.units import ConfigError

    seeds = tuple(seeds)
    if not seeds:
        raise ConfigError("reserve-search: no seeds")
    if lo_kb < MIN_KB_FLOOR or (hi_kb is not None and hi_kb < lo_kb) or lo_kb > 65536:
        raise ConfigError(f"reserve-search: bad range {lo_kb}..{hi_kb} KiB "
                          f"(the kernel takes {MIN_KB_FLOOR}..65536)")
    probes: list[Probe] = []
    spread = runner.Spread.of(workers)

    def probe(min_kb: int | None) -> Probe:
        outs = run_many([(scenario, s, min_kb, False) for s in seeds], spread)
        kb = min_kb if min_kb is not None else (outs[0].min_pages * 4)
        p = Probe(kb, outs)
        probes.append(p)
        if on_probe:
            on_probe(p)
        return p

    with spread:                                  # one cluster connection for all probes
        top = probe(hi_kb)
        default_pages = top.outcomes[0].min_pages
        linux_kb = linux_min_free_kb(parse_size(scenario.ram))
        if not top.completed:
            return SearchResult(scenario, seeds, None, top.min_kb, default_pages, linux_kb, probes)
        lo_pg, hi_pg = lo_kb // 4, top.min_kb // 4     # invariant: hi completes
        bottom = probe(lo_pg * 4)
        if bottom.completed:
            return SearchResult(scenario, seeds, bottom.min_kb, None, default_pages, linux_kb,
                                probes)
        while hi_pg - lo_pg > 1:                        # invariant: lo fails
            mid = (lo_pg + hi_pg) // 2
            if probe(mid * 4).completed:
                hi_pg = mid
            else:
                lo_pg = mid
        return SearchResult(scenario, seeds, hi_pg * 4, lo_pg * 4, default_pages, linux_kb, probes)


# -- the commands' output ------------------------------------------------------

def search_command(scenario: Scenario, seeds: Sequence[int], lo_kb: int = MIN_KB_FLOOR,
                   hi_kb: int | None = None, jobs: int | runner.Spread = 0,
                   json_path: str | None = None) -> int:
    """`emu reserve-search`: run the search (on `jobs`: local workers or a
    runner.Spread), print every probe and the verdict on stdout. Returns 0
    when a smallest min_free_kb was found, 1 when even the largest failed.
    Raises ConfigError before any run for a bad scenario, flags or
    cluster."""
    spread = runner.Spread.of(jobs)              # a negative --jobs: ConfigError
    scenario.config(seeds[0], None, False)       # bad flags: one line, before any run
    with spread:                                 # a bad --cluster: one line, before output
        return _search_report(scenario, seeds, lo_kb, hi_kb, spread, json_path)


def _search_report(scenario: Scenario, seeds: Sequence[int], lo_kb: int, hi_kb: int | None,
                   spread: runner.Spread, json_path: str | None) -> int:
    """search_command's search and output, on an open `spread`."""
    import json
    import sys

    from rich.console import Console
    from rich.table import Table

    out = Console(file=sys.stdout, highlight=False, soft_wrap=True,
                  width=None if sys.stdout.isatty() else 132)
    out.print(f"reserve-search: {scenario.workload!r} on {scenario.ram}, "
              f"net {scenario.net!r}, noise {scenario.noise or 'off'}, "
              f"seeds {','.join(map(str, seeds))}")

    def show(p: Probe) -> None:
        verdict = "completes" if p.completed else "fails"
        out.print(f"  min_free_kb {p.min_kb:>5}: {verdict}")
        for o in p.outcomes:
            out.print(f"    {o.summary()}")

    res = search(scenario, seeds, lo_kb, hi_kb, spread, on_probe=show)
    table = Table(title="probes (min_free_kb, every seed)")
    for col in ("min_free_kb", "pages", "result", "aoe_rx peak/limit", "denied",
                "no-buffer drops"):
        table.add_column(col, justify="right")
    for p in sorted(res.probes, key=lambda p: p.min_kb):
        rx = [o.reserve.get("aoe_rx", {}) for o in p.outcomes]
        table.add_row(str(p.min_kb), str(p.min_kb // 4),
                      "completes" if p.completed else
                      ", ".join("deadlock" if o.deadlocked else "ok" if o.completed else
                                f"exit {o.status}" for o in p.outcomes),
                      " ".join(f"{r.get('peak', 0)}/{r.get('limit', 0)}" for r in rx),
                      " ".join(str(o.reserve_denied) for o in p.outcomes),
                      " ".join(f"{o.no_buffer_drops:,}" for o in p.outcomes))
    out.print(table)
    default_kb = res.default_min_pages * 4
    if res.smallest_kb is None:
        out.print(f"even min_free_kb {res.largest_failing_kb} fails: no smallest found")
    else:
        out.print(f"smallest min_free_kb that completes: {res.smallest_kb} KB "
                  f"({res.smallest_kb // 4} pages)"
                  + (f"; {res.largest_failing_kb} KB fails" if res.largest_failing_kb else
                     "; the floor itself completes"))
        out.print(f"the kernel's default (Linux's rule on its {scenario.ram} less the kernel): "
                  f"{default_kb} KB = {default_kb / res.smallest_kb:.2f}x the smallest; "
                  f"Linux's rule on {scenario.ram}: {res.linux_kb} KB = "
                  f"{res.linux_kb / res.smallest_kb:.2f}x")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res.to_json(), f, indent=1)
    return 0 if res.smallest_kb is not None else 1


def compare_command(scenario: Scenario, seed: int = 1, plot: str | None = None) -> int:
    """`emu reserve-compare`: run the scenario with reserve=off, then with
    reserves, same seed; print both outcomes and the first run's diagnosis,
    optionally plot. Returns 0 when the story holds (off deadlocks, on
    completes), else 1. Raises ConfigError before any run for bad flags."""
    import sys

    scenario.config(seed, None, False)
    sample_ns = 1_000_000 if plot else 0
    jobs = [(scenario, seed, None, True, sample_ns), (scenario, seed, None, False,
                                                      sample_ns)]
    off, on = run_many(jobs)
    print(f"reserve=off  {off.summary()}")
    print(f"reserves on  {on.summary()}; reserve pages {on.reserve_allocs:,}, "
          f"pfmemalloc drops {on.pfmemalloc_drop:,}")
    if off.diagnosis:
        print(off.diagnosis, file=sys.stderr)
    if plot:
        from emu.tools.plot import plot_reserve_compare
        runs = [(f"{name}: {o.verdict()}", o) for name, o in (("reserve=off", off),
                                                              ("reserves on", on))]
        stalls = {lbl: o.stall_ns for lbl, o in runs if o.stall_ns is not None}
        title = (f"{scenario.workload} on {scenario.ram}, net {scenario.net!r}, "
                 f"noise {scenario.noise or 'off'}, seed {seed}")
        plot_reserve_compare([(lbl, o.samples) for lbl, o in runs], plot, stalls=stalls,
                             title=title)
        print(f"plot: {plot}")
    return 0 if off.deadlocked and on.completed else 1
