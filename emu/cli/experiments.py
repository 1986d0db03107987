"""`emu reserve-search` and `emu reserve-compare`: a memory-exhaustion
scenario from the flags, handed to the reserve experiments
(emu/tools/experiments/reserves.py); `emu experiment NAME`: the seed
questions' experiments (emu/tools/experiments/: kmem, swapoff, prefetch,
linux-vs-emu).

Every experiment whose runs go through the runner takes the same two
flags, `-j/--jobs N` (local processes) and `--cluster ADDRESS` (a Dask
scheduler): add them with add_spread_flags(), read them with spread().

Layer: face.
"""

from __future__ import annotations

from typing import Any

from emu.core.units import ConfigError
from emu.tools import flags
from emu.tools.experiments import kmem
from emu.tools.experiments import linuxvsemu as lvex
from emu.tools.experiments import prefetch as prefetchx
from emu.tools.experiments import swapoff as swapoffx
from emu.tools.experiments.kmem import QUICK as KMEM_QUICK
from emu.tools.experiments.kmem import SIZES as KMEM_SIZES
from emu.tools.experiments.reserves import (
    DEFAULT_NET,
    DEFAULT_NOISE,
    DEFAULT_WORKLOAD,
    MIN_KB_FLOOR,
    Scenario,
    compare_command,
    search_command,
)
from emu.tools.experiments.runner import Spread


def _add_scenario_flags(p: Any) -> None:
    p.add_argument("-kernel", metavar="ELF",
                   help="kernel image (default: $EMU_KERNEL, else the built guest: "
                   "guest/build/kernel.elf in a checkout, the packaged one when installed)")
    p.add_argument("-m", metavar="SIZE", default="16M", help="RAM size (default: %(default)s)")
    p.add_argument("--workload", default=DEFAULT_WORKLOAD, metavar="CMD",
                   help="the guest's init command (default: %(default)r)")
    p.add_argument("--net", default=DEFAULT_NET, metavar="SPEC",
                   help="link impairments (default: %(default)r)")
    p.add_argument("--noise", default=DEFAULT_NOISE, metavar="RATE[,SIZE]",
                   help="junk frames per second to the guest, 'off' for none "
                   "(default: %(default)s)")
    p.add_argument("--target", default="mem:128M", metavar="SPEC",
                   help="the AoE target (default: %(default)s)")
    p.add_argument("--target-service", default="20us", metavar="TIME",
                   help="target service time per request (default: %(default)s)")
    p.add_argument("--deadlock", default="2s", metavar="SPAN",
                   help="deadlock detector span in virtual time (default: %(default)s)")
    p.add_argument("--max-insns", type=int, default=None, metavar="N",
                   help="instruction cap per run, exit 124 counts as a failure "
                   "(default: no cap)")


def add_spread_flags(p: Any) -> None:
    """Add `-j/--jobs` and `--cluster` to the subparser `p`: where its runs
    go (spread(args) reads them)."""
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="parallel runs on this host, 0 for one per core (default: %(default)s)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="send the runs to the Dask scheduler at ADDRESS (tcp://HOST:8786; "
                   "start one with `dask scheduler` and workers with `dask worker "
                   "ADDRESS`); its workers run them, -j is not used")


def spread(args: Any) -> Spread:
    """Where the runs go, from add_spread_flags()' flags. Raises ConfigError
    for a negative --jobs (the cluster is reached when the command starts)."""
    return Spread(args.jobs, args.cluster)


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
                   help="seeds every candidate must complete with (default: %(default)s)")
    p.add_argument("--lo", type=int, default=MIN_KB_FLOOR, metavar="KB",
                   help="smallest min_free_kb to try (default: %(default)s)")
    p.add_argument("--hi", type=int, default=None, metavar="KB",
                   help="largest (default: the kernel's own, Linux's rule)")
    add_spread_flags(p)
    p.add_argument("--json", metavar="FILE", help="write every probe as JSON")
    p.set_defaults(func=cmd_reserve_search)
    c = sub.add_parser(
        "reserve-compare",
        help="run a memory-exhaustion scenario with reserve=off and with reserves, "
        "side by side: the deadlock and its diagnosis, then the run that survives")
    _add_scenario_flags(c)
    c.add_argument("--seed", type=int, default=1, help="seed of both runs (default: %(default)s)")
    c.add_argument("--plot", metavar="FILE.png",
                   help="draw free memory, reserve usage and drops over virtual time")
    c.set_defaults(func=cmd_reserve_compare)
    e = sub.add_parser("experiment", help="run one of the seed questions' experiments: "
                       "kmem (the kernel's own memory by kind as RAM grows), swapoff (four "
                       "ways to bring swap back), prefetch (the morning after), linux-vs-emu "
                       "(our kernel and Linux on the same link)")
    esub = e.add_subparsers(dest="experiment", metavar="NAME", required=True)
    k = esub.add_parser("kmem", help="the kernel's own memory by kind at RAM sizes from "
                        "4 MiB to 1 GiB: is what grows with memory under 1 %% of it?")
    k.add_argument("-kernel", metavar="ELF",
                   help="kernel image (default: $EMU_KERNEL, else the built guest)")
    k.add_argument("--sizes", metavar="LIST", default=",".join(KMEM_SIZES),
                   help="RAM sizes, comma-separated (default: %(default)s)")
    k.add_argument("--quick", action="store_true",
                   help=f"the smallest meaningful sweep: {','.join(KMEM_QUICK)}")
    k.add_argument("--csv", metavar="FILE", help="write the pages by kind per size as CSV")
    k.add_argument("--plot", metavar="FILE.png", help="plot each kind's share against RAM")
    add_spread_flags(k)
    k.set_defaults(func=cmd_experiment_kmem)
    s = esub.add_parser("swapoff", help="swapoff's four strategies (scan, batch, hint, walk) "
                        "against how much is out, processes, free memory, disk and link")
    s.add_argument("-kernel", metavar="ELF",
                   help="kernel image (default: $EMU_KERNEL, else the built guest)")
    s.add_argument("--modes", metavar="LIST", default=",".join(swapoffx.MODES),
                   help="strategies (default: %(default)s)")
    s.add_argument("--sizes", metavar="LIST", default=",".join(map(str, swapoffx.SIZES)),
                   help="MiB out on swap (default: %(default)s)")
    s.add_argument("--procs", metavar="LIST", default=",".join(map(str, swapoffx.PROCS)),
                   help="processes holding it (default: %(default)s)")
    s.add_argument("--free", metavar="LIST", default=",".join(swapoffx.FREE),
                   help="free memory at the start: low (only the high watermark will be "
                   "left) or plenty (default: %(default)s)")
    s.add_argument("--disks", metavar="LIST", default=",".join(swapoffx.DISKS),
                   help="the target's disk: ram, flash, hdd (default: %(default)s)")
    s.add_argument("--links", metavar="LIST", default=",".join(swapoffx.LINKS),
                   help="clean or loss1 (1%% loss) (default: %(default)s)")
    s.add_argument("--quick", action="store_true",
                   help="the smallest meaningful sweep: the four strategies, 2 MiB out by "
                   "4 processes, low free memory, RAM disk, clean link")
    s.add_argument("--csv", metavar="FILE", help="write one line per run as CSV")
    s.add_argument("--plot", metavar="FILE.png",
                   help="plot MB/s and PTEs read against MiB out, one line per strategy")
    add_spread_flags(s)
    s.set_defaults(func=cmd_experiment_swapoff)
    pf = esub.add_parser("prefetch", help="the morning after: an interactive working set "
                         "pushed out by a batch job, an idle night, the morning's touches - "
                         "swap prefetch off and on, cluster and VMA read-ahead")
    pf.add_argument("-kernel", metavar="ELF",
                    help="kernel image (default: $EMU_KERNEL, else the built guest)")
    pf.add_argument("--nights", metavar="LIST", default=",".join(map(str, prefetchx.NIGHTS)),
                    help="lengths of the idle night, ms of virtual time (default: %(default)s)")
    pf.add_argument("--ws", type=int, default=prefetchx.WS, metavar="PAGES",
                    help="the interactive working set (default: %(default)s)")
    pf.add_argument("--batch", type=int, default=prefetchx.BATCH, metavar="PAGES",
                    help="the batch job (default: %(default)s)")
    pf.add_argument("--ram", type=int, default=prefetchx.RAM_MIB, metavar="MIB",
                    help="RAM (default: %(default)s)")
    pf.add_argument("--quick", action="store_true",
                    help="the smallest meaningful sweep: 8 MiB of RAM, a 1 MiB working set, "
                    "one 3 s night")
    pf.add_argument("--csv", metavar="FILE", help="write one line per run as CSV")
    pf.add_argument("--plot", metavar="FILE.png", help="plot free memory, prefetch activity "
                    "and slow touches over virtual time")
    add_spread_flags(pf)
    pf.set_defaults(func=cmd_experiment_prefetch)
    lv = esub.add_parser("linux-vs-emu", help="our kernel and Debian's Linux (its own aoe "
                         "driver) swapping over the same link to the same target: completion, "
                         "MB/s, retransmits, round trips and window from the capture")
    lv.add_argument("-kernel", metavar="ELF",
                    help="our kernel's image (default: $EMU_KERNEL, else the built guest)")
    lv.add_argument("--linux", metavar="DIR", default=lvex.default_bundle(),
                    help="the Linux bundle, Image and initrd.gz (default: %(default)s, "
                    "from make linux-guest)")
    lv.add_argument("--guests", metavar="LIST", default=",".join(lvex.DEFAULT_GUESTS),
                    help="emu (our kernel), emu-noreserve (its memory reserves off), linux "
                    "(its aoe driver), linux-nfs (swap to a file over NFS: needs root and "
                    "nfs-ganesha) (default: %(default)s)")
    lv.add_argument("--noise", metavar="RATE[,SIZE]",
                    help="junk frames on the link, as emu run's --noise (exhaustion runs)")
    lv.add_argument("--minfree", type=int, default=lvex.MINFREE_KB, metavar="KB",
                    help="Linux's vm.min_free_kbytes (default: %(default)s)")
    lv.add_argument("--links", metavar="LIST", default=",".join(lvex.LINKS),
                    help=f"links: {lvex.links_help()} (default: %(default)s)")
    lv.add_argument("--pages", type=int, default=lvex.PAGES, metavar="N",
                    help="memhog's pages (default: %(default)s)")
    lv.add_argument("--passes", type=int, default=lvex.PASSES, metavar="P",
                    help="memhog's verifying passes (default: %(default)s)")
    lv.add_argument("--quick", action="store_true",
                    help="the smallest meaningful sweep: both guests on the clean link, one pass")
    lv.add_argument("--csv", metavar="FILE", help="write one line per run as CSV")
    lv.add_argument("--plot", metavar="FILE.png",
                    help="plot MB/s, retransmits and the window per link, both guests")
    add_spread_flags(lv)
    lv.set_defaults(func=cmd_experiment_linux_vs_emu)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s, 0) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: a comma-separated list of integers") from None
    if not seeds:
        raise ConfigError("--seeds: at least one seed")
    return seeds




def cmd_reserve_search(args: Any) -> int:
    """Run the search and print it. Returns 0 when a smallest min_free_kb
    was found, 1 when even the largest failed."""
    return search_command(_scenario(args), _seeds(args.seeds), args.lo, args.hi,
                          spread(args), args.json)


def cmd_experiment_kmem(args: Any) -> int:
    """Run the kmem sweep and print its table. Returns 0."""
    sizes = KMEM_QUICK if args.quick else tuple(s.strip() for s in args.sizes.split(",")
                                                if s.strip())
    return kmem.command(args.kernel, sizes, spread(args), args.csv, flags.plot_path(args.plot))


def _list(text: str, what: str, kind: type = str) -> tuple[Any, ...]:
    try:
        return tuple(kind(s.strip()) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--{what} {text!r}: a comma-separated list of numbers") from None


def cmd_experiment_swapoff(args: Any) -> int:
    """Run the swapoff sweep and print its table. Returns 0."""
    q = swapoffx.QUICK if args.quick else {}
    todo = swapoffx.cases(_list(args.modes, "modes"),
                          q.get("sizes") or _list(args.sizes, "sizes", int),
                          q.get("procs") or _list(args.procs, "procs", int),
                          q.get("free") or _list(args.free, "free"),
                          q.get("disks") or _list(args.disks, "disks"),
                          q.get("links") or _list(args.links, "links"))
    return swapoffx.command(args.kernel, todo, spread(args), args.csv,
                            flags.plot_path(args.plot))


def cmd_experiment_prefetch(args: Any) -> int:
    """Run the prefetch sweep and print its table and answer. Returns 0."""
    if args.quick:
        q = prefetchx.QUICK
        todo = prefetchx.cases(q["nights"], q["ws"], q["batch"], q["ram"])
    else:
        todo = prefetchx.cases(_list(args.nights, "nights", int), args.ws, args.batch, args.ram)
    return prefetchx.command(args.kernel, todo, spread(args), args.csv,
                             flags.plot_path(args.plot), readahead=not args.quick)


def cmd_experiment_linux_vs_emu(args: Any) -> int:
    """Run our kernel and Linux on the same links and print the table. Returns 0."""
    q = lvex.QUICK if args.quick else {}
    todo = lvex.cases(_list(args.guests, "guests"), q.get("links") or _list(args.links, "links"),
                      args.pages, q.get("passes") or args.passes, args.noise, args.minfree)
    return lvex.command(args.kernel, args.linux, todo, spread(args), args.csv,
                        flags.plot_path(args.plot))


def cmd_reserve_compare(args: Any) -> int:
    """Run reserve=off and reserves on side by side. Returns 0 when off
    deadlocks and on completes, else 1."""
    scenario = _scenario(args)
    scenario.config(args.seed, None, False)
    return compare_command(scenario, args.seed, flags.plot_path(args.plot))
