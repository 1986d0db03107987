"""Reserve experiments: run a memory-exhaustion scenario with reserves on,
off, or with a given min watermark, and search the smallest
`min_free_kb` with which it still completes (`emu reserve-search`).

A scenario is a workload (the guest's init command line) on a machine of a
given size, swapping over the embedded AoE target through a lossy link with
junk traffic (`--noise`). A run *completes* when the guest exits 0 (memhog:
every page came back bit-identical); it *deadlocks* when the emulator's
detector stops it (exit status 3, emu/deadlock.py). The search bisects on
whole pages, assuming that more reserve never hurts; every probe is listed
so the assumption can be checked. Runs are independent processes (one per
seed and candidate), so they spread over the host's cores.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from emu import kstats
from emu.config import MachineConfig, parse_size
from emu.deadlock import EXIT_DEADLOCK, DeadlockWatch
from emu.net.network import NetConfig, parse_time_ns

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
    from emu.machine import Machine
    from emu.timeline import Timeline

    cfg = scenario.config(seed, min_kb, reserve_off)
    console = io.BytesIO()
    machine = Machine(cfg, console=console)
    watch = None
    if scenario.deadlock != "off":
        watch = DeadlockWatch(machine, parse_time_ns(scenario.deadlock))
        machine.after_slice.append(watch)
    timeline = None
    if sample_ns:
        timeline = Timeline(machine, period_ns=sample_ns)
        machine.after_slice.append(timeline)
    t0 = time.perf_counter()
    status = machine.run()
    wall = time.perf_counter() - t0
    if timeline is not None:
        timeline.sample()
    k = kstats.collect(machine)
    deadlocked = watch is not None and watch.diagnosis is not None
    out = Outcome(
        seed=seed, min_kb=min_kb, reserve_off=reserve_off, status=status,
        completed=status == 0, deadlocked=deadlocked and status == EXIT_DEADLOCK,
        reason=machine.stop_reason or f"exit status {status}",
        wall_s=wall, virtual_ms=machine.now() / 1e6,
        diagnosis=watch.diagnosis if watch is not None else None,
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
    if timeline is not None:
        out.samples = [(s.t_ns, s.values) for s in timeline.samples]
    return out


def _run_job(job: tuple[Any, ...]) -> Outcome:
    return run_once(*job)


def run_many(jobs: Sequence[tuple[Any, ...]], workers: int = 0) -> list[Outcome]:
    """Run jobs - run_once argument tuples (scenario, seed, min_kb,
    reserve_off[, sample_ns]) - in parallel processes when workers != 1 (0:
    one per core). Returns the outcomes in job order."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) == 1:
        return [_run_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_run_job, jobs))


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
           hi_kb: int | None = None, workers: int = 0,
           on_probe: Callable[[Probe], None] | None = None) -> SearchResult:
    """Bisect, on whole pages, for the smallest min_free_kb in [lo_kb, hi_kb]
    with which every seed completes. hi_kb defaults to the kernel's own min
    (Linux's rule on its managed memory), which is probed first (with no
    min_free_kb, so the default itself is what runs). Raises ConfigError on
    a bad scenario or range."""
    from emu.config import ConfigError

    seeds = tuple(seeds)
    if not seeds:
        raise ConfigError("reserve-search: no seeds")
    if lo_kb < MIN_KB_FLOOR or (hi_kb is not None and hi_kb < lo_kb) or lo_kb > 65536:
        raise ConfigError(f"reserve-search: bad range {lo_kb}..{hi_kb} KiB "
                          f"(the kernel takes {MIN_KB_FLOOR}..65536)")
    probes: list[Probe] = []

    def probe(min_kb: int | None) -> Probe:
        outs = run_many([(scenario, s, min_kb, False) for s in seeds], workers)
        kb = min_kb if min_kb is not None else (outs[0].min_pages * 4)
        p = Probe(kb, outs)
        probes.append(p)
        if on_probe:
            on_probe(p)
        return p

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


# -- `emu reserve-search` -------------------------------------------------------

def _add_scenario_flags(p: Any) -> None:
    p.add_argument("-kernel", metavar="ELF", help="kernel image (default: the built guest)")
    p.add_argument("-m", metavar="SIZE", default="16M", help="RAM size (default 16M)")
    p.add_argument("--workload", default=DEFAULT_WORKLOAD, metavar="CMD",
                   help=f"the guest's init command (default: {DEFAULT_WORKLOAD!r})")
    p.add_argument("--net", default=DEFAULT_NET, metavar="SPEC",
                   help=f"link impairments (default: {DEFAULT_NET!r})")
    p.add_argument("--noise", default=DEFAULT_NOISE, metavar="RATE[,SIZE]",
                   help=f"junk frames to the guest (default {DEFAULT_NOISE}/s; 'off': none)")
    p.add_argument("--target", default="mem:128M", metavar="SPEC", help="the AoE target")
    p.add_argument("--target-service", default="20us", metavar="TIME",
                   help="target service time per request")
    p.add_argument("--deadlock", default="2s", metavar="SPAN",
                   help="deadlock detector span (default 2s of virtual time)")
    p.add_argument("--max-insns", type=int, default=None, metavar="N",
                   help="instruction cap per run (exit 124 counts as a failure)")


def _scenario(args: Any) -> Scenario:
    return Scenario(ram=args.m, workload=args.workload, net=args.net,
                    noise=None if args.noise == "off" else args.noise, target=args.target,
                    target_service=args.target_service, deadlock=args.deadlock,
                    max_insns=args.max_insns, kernel=args.kernel)


def add_commands(sub: Any) -> None:
    """Add `emu reserve-search` and `emu reserve-compare` to the subparsers
    `sub`."""
    p = sub.add_parser(
        "reserve-search",
        help="find the smallest min_free_kb with which a memory-exhaustion scenario "
        "completes, and compare it with Linux's rule")
    _add_scenario_flags(p)
    p.add_argument("--seeds", default="1,2,3", metavar="LIST",
                   help="seeds every candidate must complete with (default 1,2,3)")
    p.add_argument("--lo", type=int, default=MIN_KB_FLOOR, metavar="KB",
                   help=f"smallest min_free_kb to try (default {MIN_KB_FLOOR})")
    p.add_argument("--hi", type=int, default=None, metavar="KB",
                   help="largest (default: the kernel's own, Linux's rule)")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="parallel runs (default: one per core)")
    p.add_argument("--json", metavar="FILE", help="write every probe as JSON")
    p.set_defaults(func=cmd_reserve_search)
    c = sub.add_parser(
        "reserve-compare",
        help="run a memory-exhaustion scenario with reserve=off and with reserves, "
        "side by side: the deadlock and its diagnosis, then the run that survives")
    _add_scenario_flags(c)
    c.add_argument("--seed", type=int, default=1, help="seed of both runs (default 1)")
    c.add_argument("--plot", metavar="FILE.png",
                   help="draw free memory, reserve usage and drops over virtual time")
    c.set_defaults(func=cmd_reserve_compare)


def _seeds(text: str) -> tuple[int, ...]:
    from emu.config import ConfigError
    try:
        seeds = tuple(int(s, 0) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: a comma-separated list of integers") from None
    if not seeds:
        raise ConfigError("--seeds: at least one seed")
    return seeds


def cmd_reserve_search(args: Any) -> int:
    """Run the search, print every probe and the verdict. Returns 0 when a
    smallest min_free_kb was found, 1 when even the largest failed."""
    import json
    import sys

    from rich.console import Console
    from rich.table import Table

    from emu.config import ConfigError

    if args.jobs < 0:
        raise ConfigError("--jobs must be 0 (one per core) or more")
    scenario = _scenario(args)
    seeds = _seeds(args.seeds)
    scenario.config(seeds[0], None, False)       # bad flags: one line, before any run
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True,
                  width=None if sys.stdout.isatty() else 132)
    out.print(f"reserve-search: {args.workload!r} on {args.m}, net {args.net!r}, noise "
              f"{scenario.noise or 'off'}, seeds {','.join(map(str, seeds))}")

    def show(p: Probe) -> None:
        verdict = "completes" if p.completed else "fails"
        out.print(f"  min_free_kb {p.min_kb:>5}: {verdict}")
        for o in p.outcomes:
            out.print(f"    {o.summary()}")

    res = search(scenario, seeds, args.lo, args.hi, args.jobs, on_probe=show)
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
        out.print(f"the kernel's default (Linux's rule on its {args.m} less the kernel): "
                  f"{default_kb} KB = {default_kb / res.smallest_kb:.2f}x the smallest; "
                  f"Linux's rule on {args.m}: {res.linux_kb} KB = "
                  f"{res.linux_kb / res.smallest_kb:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.to_json(), f, indent=1)
    return 0 if res.smallest_kb is not None else 1


def cmd_reserve_compare(args: Any) -> int:
    """Run the scenario with reserve=off, then with reserves, same seed;
    print both outcomes and the first run's diagnosis, optionally plot.
    Returns 0 when the story holds (off deadlocks, on completes), else 1."""
    import sys

    from emu.config import ConfigError

    scenario = _scenario(args)
    scenario.config(args.seed, None, False)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ConfigError(f"--plot {args.plot!r}: the plot is a PNG file (FILE.png)")
    sample_ns = 1_000_000 if args.plot else 0
    jobs = [(scenario, args.seed, None, True, sample_ns), (scenario, args.seed, None, False,
                                                            sample_ns)]
    off, on = run_many(jobs)
    print(f"reserve=off  {off.summary()}")
    print(f"reserves on  {on.summary()}; reserve pages {on.reserve_allocs:,}, "
          f"pfmemalloc drops {on.pfmemalloc_drop:,}")
    if off.diagnosis:
        print(off.diagnosis, file=sys.stderr)
    if args.plot:
        from emu.plot import plot_reserve_compare
        stalls = {lbl: o.stall_ns for lbl, o in (("reserve=off", off), ("reserves on", on))
                  if o.stall_ns is not None}
        title = (f"{args.workload} on {args.m}, net {args.net!r}, "
                 f"noise {scenario.noise or 'off'}, seed {args.seed}")
        plot_reserve_compare([("reserve=off", off.samples), ("reserves on", on.samples)],
                             args.plot, stalls=stalls, title=title)
        print(f"plot: {args.plot}")
    return 0 if off.deadlocked and on.completed else 1
