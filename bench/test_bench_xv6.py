"""xv6-riscv on emu against QEMU 7.2, the same image and command line in the
same run (issue "Real guest images"): wall seconds to boot to the shell and
run `echo hi | wc`, and for `usertests -q` to print ALL TESTS PASSED. Both
sides are whole processes started the same way (emu through its CLI, as a
user types it); the goal is emu <= 1.5 x QEMU. Needs what tests/test_xv6.py
needs (the xv6 sources, Debian's cross compiler and qemu-system-riscv64).
"""

from __future__ import annotations

import time

import pytest

from bench import summary
from emu.core import twins
from tests.test_xv6 import emu_session, qemu_session, xv6  # noqa: F401  (fixture)

CASES = {"boot": (["echo hi | wc"], "$ "), "usertests": (["usertests -q"], "ALL TESTS PASSED")}
ROWS = {"boot": "xv6 boot to the shell + echo hi | wc", "usertests": "xv6 usertests -q"}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.benchmark(group="xv6-vs-qemu")
def test_xv6_emu_vs_qemu(benchmark, xv6, tmp_path, case):  # noqa: F811
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: xv6 on the pure twins takes most of an hour")
    kernel, fs = xv6
    sends, until = CASES[case]
    out: dict = {}

    def once():
        t0 = time.perf_counter()
        out["qemu"] = qemu_session(kernel, fs, sends, until, timeout=1800)
        t1 = time.perf_counter()
        out["emu"], out["stats"] = emu_session(kernel, fs, sends, until, tmp_path)
        out["wall"] = (t1 - t0, time.perf_counter() - t1)

    benchmark.pedantic(once, rounds=1, iterations=1)
    qemu_s, emu_s = out["wall"]
    assert until in out["emu"] and until in out["qemu"]
    benchmark.extra_info.update(qemu_s=round(qemu_s, 2), emu_s=round(emu_s, 2),
                                ratio=round(emu_s / qemu_s, 2),
                                instructions=out["stats"]["instructions"])
    summary.record(ROWS[case], "reference", qemu_s)
    summary.record(ROWS[case], "compiled", emu_s)
    print(f"\nxv6 {case}: QEMU {qemu_s:.2f} s, emu {emu_s:.2f} s = {emu_s / qemu_s:.2f} x "
          f"({out['stats']['instructions']:,} instructions)")
