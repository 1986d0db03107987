"""swapoff in the guest kernel (docs/swapoff.md): every page out on the AoE
swap device comes back bit-identical and into its PTE, by each of the four
strategies (swapoff=scan|batch|hint|walk), over the loss x duplicate x
reorder x corrupt matrix, while the workers run and fault; the strategies
leave the same memory contents and differ where they should (PTEs read,
address-space searches, reads); a process that exits meanwhile has its
pages freed; swapon turns swap on again; running out of memory fails the
call without a deadlock; misuse gets a one-line refusal.

Workload: `swapofftest` (guest/user/swapofftest.c) - workers fill pages
with memhog's pattern, a memhog pushes them out, `swapoff` runs, the workers
verify every page and print a checksum.
"""

from __future__ import annotations

import functools
import re

import pytest

from emu.core import twins
from emu.guestview import kstats
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.net.network import NetConfig

MODES = ("scan", "batch", "hint", "walk")
# 8 MiB of RAM, three workers of 300 pages, a hog that pushes them all out.
WORKLOAD = "procs=3 pages=300 hog=1500"
CELLS = {                        # netem spec of each cell of the impairment matrix
    "clean": "",
    "loss5": "loss 5% delay 200us 150us",
    "dup5-reorder25": "duplicate 5% reorder 25% delay 200us 150us",
    "corrupt1": "corrupt 1% delay 200us 150us",
    "all": "loss 5% duplicate 5% reorder 25% corrupt 1% delay 200us 150us",
}
PURE = twins.pure_forced()       # EMU_PURE=1: ~30x slower, fewer cells
PURE_CELLS = ("clean",)
COMPILED_ONLY = pytest.mark.skipif(PURE, reason="EMU_PURE=1: the pure twins run the clean "
                                   "cell and the strategy comparisons; make test runs this")
SUM = re.compile(rb"swapofftest\[(\d+)\]: (\d+) pages, (\d+) mismatches, sum ([0-9a-f]+)")
RESULT = re.compile(rb"swapofftest: procs=(\d+) pages=(\d+) out=(\d+) mismatches=(\d+)")


@functools.cache
def run(kernel: str, mode: str, cell: str = "clean", extra: str = "", ram: int = 8 << 20,
        seed: int = 1, workload: str = WORKLOAD) -> Machine:
    """Boot with swapoff=MODE and run swapofftest WORKLOAD EXTRA on the cell's
    link; the finished machine (shared by the tests that ask the same)."""
    append = f"swapoff={mode} init=swapofftest {workload} {extra}".strip()
    m = Machine(MachineConfig(kernel=kernel, append=append, ram_size=ram, seed=seed,
                              max_insns=6_000_000_000,
                              net=NetConfig(net=CELLS[cell], seed=seed, targets=("mem:64M",),
                                            target_service="20us")))
    m.run()
    return m


def console(m: Machine) -> str:
    return m.console.decode(errors="replace")


def sums(m: Machine) -> dict[int, bytes]:
    """Worker -> checksum of its pages, each verified with 0 mismatches."""
    found = SUM.findall(m.console)
    assert all(int(mism) == 0 for _, _, mism, _ in found), console(m)[-3000:]
    return {int(w): s for w, _, _, s in found}


def assert_done(m: Machine) -> dict:
    """swapofftest finished: swapoff worked, every page verified, nothing
    left on swap. Returns the kernel's figures."""
    out = console(m)
    assert m.exit_status == 0, f"{m.stop_reason}\n{out[-3000:]}"
    found = RESULT.findall(m.console)
    assert found and int(found[-1][3]) == 0, out[-3000:]
    k = kstats.collect(m)
    so = k["swapoff"]
    assert so["calls"] == 1 and so["failed"] == 0, so
    assert k["swap"]["slots_used"] == 0
    assert k["swap"]["read_errors"] == 0
    out_pages = int(found[-1][2])
    assert out_pages > 800, "the hog did not push the workers out"
    # What was out came back through swapoff, except the few pages the
    # polling workers faulted in themselves meanwhile.
    assert so["pages"] + so["freed"] <= out_pages
    assert so["pages"] >= out_pages - 20, (so, out_pages)
    return k


def cells() -> list[tuple[str, str]]:
    names = PURE_CELLS if PURE else tuple(CELLS)
    return [(mode, cell) for cell in names for mode in MODES]


@pytest.mark.parametrize("mode, cell", cells(), ids=[f"{m}-{c}" for m, c in cells()])
def test_every_page_comes_back_identical(kernel, mode, cell):
    m = run(kernel, mode, cell)
    assert_done(m)
    got = sums(m)
    assert sorted(got) == [0, 1, 2]
    # Same contents whatever the strategy and the link: the clean walk's.
    assert got == sums(run(kernel, "walk")), "the workers' memory differs"
    if cell != "clean":                                 # the link really did its worst
        aoe = kstats.collect(m)["aoe"]
        assert aoe["retransmits"] + aoe["stale_replies"] > 0, aoe


def test_walk_reads_far_fewer_ptes_than_scan(kernel):
    """Linux 5.1's argument: one walk of every address space instead of a
    search per slot."""
    scan, walk = (assert_done(run(kernel, m))["swapoff"] for m in ("scan", "walk"))
    assert walk["ptes_read"] * 20 < scan["ptes_read"], (walk, scan)
    assert walk["mm_searches"] <= 8 < scan["pages"] <= scan["mm_searches"]
    assert walk["reads"] * 4 < scan["reads"]           # read-ahead: runs of slots
    assert scan["reads"] >= scan["pages"]               # one read per slot
    assert walk["virtual_ns"] < scan["virtual_ns"]


def test_hint_goes_straight_to_the_address_space(kernel):
    hint = assert_done(run(kernel, "hint"))["swapoff"]
    scan = assert_done(run(kernel, "scan"))["swapoff"]
    assert hint["hint_misses"] == 0 and hint["hint_hits"] == hint["pages"]
    assert hint["mm_searches"] == hint["pages"]        # one search per slot, never a second
    assert scan["mm_searches"] > scan["pages"]          # start_mm guesses wrong sometimes
    assert scan["hint_hits"] == scan["hint_misses"] == 0


def test_batch_reads_runs_and_searches_once_per_run(kernel):
    batch = assert_done(run(kernel, "batch"))["swapoff"]
    scan = assert_done(run(kernel, "scan"))["swapoff"]
    assert batch["reads"] * 4 < scan["reads"]
    assert batch["ptes_read"] < scan["ptes_read"]
    assert batch["sectors"] == scan["sectors"]          # the same pages, fewer requests


@COMPILED_ONLY
@pytest.mark.parametrize("mode", MODES)
def test_one_process_alone(kernel, mode):
    """A single worker (its poll and the test's never see each other asleep:
    the readiness check must not depend on that)."""
    m = run(kernel, mode, workload="procs=1 pages=900 hog=1500")
    k = assert_done(m)
    assert list(sums(m)) == [0]
    so = k["swapoff"]
    # scan and hint search once per slot, batch once per run of slots, walk once per space
    assert so["mm_searches"] >= {"scan": so["pages"], "hint": so["pages"],
                                 "batch": so["pages"] / 16, "walk": 1}[mode]


@COMPILED_ONLY
def test_pages_of_a_process_that_exits_meanwhile_are_freed(kernel):
    m = run(kernel, "batch", extra="die=1")
    out = console(m)
    assert m.exit_status == 0, out[-3000:]
    k = kstats.collect(m)
    assert k["swapoff"]["failed"] == 0 and k["swap"]["slots_used"] == 0
    assert k["swapoff"]["freed"] > 0                    # read for it, then its PTE was gone
    assert sorted(sums(m)) == [0, 2]                    # worker 1 left without verifying
    assert k["memory"]["pages_by_use"]["user"] < 400    # and nothing of it stayed behind


@COMPILED_ONLY
def test_swapon_turns_swap_on_again(kernel):
    m = run(kernel, "walk", extra="again=1")
    out = console(m)
    assert m.exit_status == 0, out[-3000:]
    assert "swapon: swap is on" in out
    k = kstats.collect(m)
    first = int(RESULT.findall(m.console)[-1][2])
    assert k["swap"]["swap_outs"] > first + 500          # the second memhog swapped


@COMPILED_ONLY
def test_out_of_memory_fails_the_call_and_swap_stays_on(kernel):
    """take=1250 leaves less free memory than what is out: swapoff brings
    back what fits, waits for more, gives up (ENOMEM) - no deadlock - and
    swap is on again, so the workers' remaining pages come back by fault."""
    m = run(kernel, "walk", extra="take=1250")
    out = console(m)
    assert "swapoff: failed: out of memory" in out, out[-3000:]
    assert m.stop_reason and "shutdown" in m.stop_reason, m.stop_reason
    assert "panic" not in out
    k = kstats.collect(m)
    assert k["swapoff"]["calls"] == 1 and k["swapoff"]["failed"] == 1
    assert 0 < k["swapoff"]["pages"] < 800
    assert k["swap"]["swap_outs"] > int(RESULT.findall(m.console)[-1][2])  # swapping again
    for w, s in sums(m).items():                        # survivors verified their pages
        assert s == sums(run(kernel, "walk"))[w]


@pytest.mark.parametrize("append, status, line", [
    ("swap=off init=swapoff", 1, "swapoff: failed: swap is not on"),
    ("init=swapon", 1, "swapon: swap is not off"),
    ("init=swapoff", 0, "swapoff: walk: 0 pages (0 MiB) back"),   # configured, never used
    ("swapoff=bogus init=hello", 0, "param: bad value 'bogus' for swapoff"),
])
def test_misuse_gets_one_line(kernel, append, status, line):
    m = Machine(MachineConfig(kernel=kernel, append=append, ram_size=8 << 20, seed=1,
                              max_insns=2_000_000_000,
                              net=NetConfig(targets=("mem:16M",))))
    m.run()
    out = console(m)
    assert line in out, out[-2000:]
    assert m.exit_status == status, out[-2000:]
