"""xv6-riscv on emu against QEMU 7.2, the same image and command line in the
same run (issue "Real guest images"): wall seconds to boot to the shell and
run `echo hi | wc`, and for `usertests -q` to print ALL TESTS PASSED. Both
sides are whole processes started the same way (emu through its CLI, as a
user types it); the goal is emu <= 1.5 x QEMU. The boot is the best of 5
rounds on each machine, usertests one round.

QEMU runs twice: as xv6's Makefile starts it (its clock follows the host)
and with `-icount shift=0,sleep=off`, QEMU's deterministic clock - one
instruction per virtual ns, idle time jumping to the next deadline - which
is the clock emu always has (tests/test_xv6.py checks that emu's run with
that flag is the run without it). The difference matters wherever xv6 waits
for its timer while a process spins: a virtual second costs emu and
QEMU -icount a billion instructions, QEMU without -icount one wall second.
The usertests run also records each test's seconds on all three
(`bench/summary.py usertests`). Needs what tests/test_xv6.py needs (the
xv6 sources, Debian's cross compiler and qemu-system-riscv64).
"""

from __future__ import annotations

import time

import pytest

from bench import summary
from emu.core import twins
from emu.tools import hostprofile
from tests.test_xv6 import command, emu_session, qemu_session, usertest_seconds, xv6  # noqa: F401

CASES = {"boot": (["echo hi | wc"], "$ "), "usertests": (["usertests -q"], "ALL TESTS PASSED")}
ROWS = {"boot": "xv6 boot to the shell + echo hi | wc", "usertests": "xv6 usertests -q"}
ICOUNT = ("-icount", "shift=0,sleep=off")
ROUNDS = {"boot": 5, "usertests": 1}
PROFILE_ROW = "xv6 usertests killstatus, first 6 G instructions"
# the boot (0.43 G), usertests' count of free pages (about 0.9 G: a sbrk and
# two byte-wise page fills per page), then killstatus's getpid loop
PROFILE_INSNS = 6_000_000_000


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.benchmark(group="xv6-vs-qemu")
def test_xv6_emu_vs_qemu(benchmark, xv6, tmp_path, case):  # noqa: F811
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: xv6 on the pure twins takes most of an hour")
    kernel, fs = xv6
    sends, until = CASES[case]
    out: dict = {}
    marks: dict[str, list[tuple[float, int]]] = {"QEMU": [], "QEMU -icount": [], "emu": []}

    walls: dict[str, list[float]] = {machine: [] for machine in marks}

    def timed(machine: str, session, *args, **kwargs):
        marks[machine].clear()
        t0 = time.perf_counter()
        result = session(*args, **kwargs, marks=marks[machine])
        walls[machine].append(time.perf_counter() - t0)
        return result

    def once():
        out["QEMU"] = timed("QEMU", qemu_session, kernel, fs, sends, until, 1800)
        out["QEMU -icount"] = timed("QEMU -icount", qemu_session, kernel, fs, sends, until,
                                    3600, *ICOUNT)
        out["emu"], out["stats"] = timed("emu", emu_session, kernel, fs, sends, until,
                                         tmp_path)

    benchmark.pedantic(once, rounds=ROUNDS[case], iterations=1)
    # the best round of each: the first start of a process (QEMU's boot: 0.6
    # against 0.27 s) pays for loading it from disk
    qemu_s, icount_s, emu_s = (min(walls[m]) for m in ("QEMU", "QEMU -icount", "emu"))
    for machine in marks:
        assert until in out[machine], machine
    benchmark.extra_info.update(qemu_s=round(qemu_s, 2), qemu_icount_s=round(icount_s, 2),
                                emu_s=round(emu_s, 2), ratio=round(emu_s / qemu_s, 2),
                                ratio_icount=round(emu_s / icount_s, 2),
                                instructions=out["stats"]["instructions"])
    summary.record(ROWS[case], "reference", qemu_s)
    summary.record(ROWS[case], "compiled", emu_s)
    icount_row = f"{ROWS[case]}, QEMU -icount shift=0,sleep=off"
    summary.record(icount_row, "reference", icount_s)
    summary.record(icount_row, "compiled", emu_s)
    if case == "usertests":
        for machine, m in marks.items():
            summary.record_usertests(machine, usertest_seconds(out[machine], m))
    print(f"\nxv6 {case}: QEMU {qemu_s:.2f} s, QEMU -icount {icount_s:.2f} s, emu {emu_s:.2f} s "
          f"= {emu_s / qemu_s:.2f} x QEMU, {emu_s / icount_s:.2f} x QEMU -icount "
          f"({out['stats']['instructions']:,} instructions)")


@pytest.mark.benchmark(group="xv6-vs-qemu")
def test_xv6_killstatus_profile(benchmark, xv6):  # noqa: F811
    """Where emu's host time goes in the test that takes most of usertests'
    time on emu (`summary.py usertests`): a child calling getpid() in a loop
    while its parent sleeps a timer tick, a hundred times - two satp
    switches, two TLB flushes and a trap per call. py-spy --native at 100 Hz
    over the first 6 G instructions, three quarters of them in the loop
    (emu/tools/hostprofile.py)."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: xv6 on the pure twins takes most of an hour")
    kernel, fs = xv6
    args = ["run", *command(kernel, fs), "-snapshot", "--send", "usertests killstatus",
            "--max-insns", str(PROFILE_INSNS), "-q"]
    out: dict = {}

    def once():
        out["profile"] = hostprofile.profile(args, rate_hz=100)

    benchmark.pedantic(once, rounds=1, iterations=1)
    result, status = out["profile"]
    assert status == 124 and result.total > 0      # 124: --max-insns ended it
    summary.record_profile(PROFILE_ROW, result.to_json())
    print("\n" + hostprofile.markdown(result))
