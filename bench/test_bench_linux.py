"""Debian's riscv64 Linux on emu against QEMU 7.2 (issue "A real Linux
guest", goal emu <= 2 x QEMU): wall seconds from start to power-off of the
bundle `make linux-guest` builds, booting to busybox's /init, loading the
virtio/aoe/nfs modules and running memhog (1,024 pages, 2 passes), with
the same command line on both. Each side is a whole process, started as a
user types it. Needs what tests/test_linux.py needs.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench import summary
from emu.core import twins
from emu.tools import hostprofile
from tests.conftest import REPO, need_tool
from tests.test_linux import APPEND, bundle

ROW = "Linux boot to /init + memhog"


def emu_args(image: str, initrd: str) -> list[str]:
    """The emu command line of the benchmark (QEMU's spelling)."""
    return ["run", "-q", "-kernel", image, "-initrd", initrd, "-m", "256M", "-append", APPEND]


@pytest.mark.benchmark(group="linux-vs-qemu")
def test_linux_emu_vs_qemu(benchmark):
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: Linux on the pure twins takes minutes")
    qemu = need_tool("qemu-system-riscv64")
    image, initrd = bundle()
    out: dict = {}

    def once():
        t0 = time.perf_counter()
        q = subprocess.run([qemu, "-machine", "virt", "-m", "256M", "-nographic", "-no-reboot",
                            "-kernel", image, "-initrd", initrd, "-append", APPEND],
                           capture_output=True, text=True, timeout=600)
        t1 = time.perf_counter()
        e = subprocess.run([sys.executable, "-m", "emu", *emu_args(image, initrd)],
                           capture_output=True, text=True, timeout=600, cwd=REPO)
        out.update(qemu=q, emu=e, wall=(t1 - t0, time.perf_counter() - t1))

    benchmark.pedantic(once, rounds=1, iterations=1)
    qemu_s, emu_s = out["wall"]
    for side in ("qemu", "emu"):
        r = out[side]
        assert r.returncode == 0 and "mismatches=0" in r.stdout, (side, r.stdout[-2000:])
    benchmark.extra_info.update(qemu_s=round(qemu_s, 2), emu_s=round(emu_s, 2),
                                ratio=round(emu_s / qemu_s, 2))
    summary.record(ROW, "reference", qemu_s)
    summary.record(ROW, "compiled", emu_s)
    print(f"\nLinux: QEMU {qemu_s:.2f} s, emu {emu_s:.2f} s = {emu_s / qemu_s:.2f} x")


@pytest.mark.benchmark(group="linux-vs-qemu")
def test_linux_boot_profile(benchmark):
    """Where the same run's host time goes, by layer (emu/tools/hostprofile.py:
    py-spy --native at 200 Hz); docs/benchmarks.md shows it."""
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: Linux on the pure twins takes minutes")
    image, initrd = bundle()
    out: dict = {}

    def once():
        out["profile"] = hostprofile.profile(emu_args(image, initrd), rate_hz=200, cwd=REPO)

    benchmark.pedantic(once, rounds=1, iterations=1)
    result, status = out["profile"]
    assert status == 0 and result.total > 0
    summary.record_profile(ROW, result.to_json())
    print("\n" + hostprofile.markdown(result))
