"""TLB fill cost on a strided all-miss guest workload (pytest-benchmark).

Run: .venv/bin/pytest bench/test_bench_tlb.py --benchmark-only

The guest (S-mode, Sv39, 4 KiB pages) loads one doubleword from each of 128
consecutive pages, then executes sfence.vma (QEMU flushes its whole soft TLB)
and loops, so every load misses and is filled. One group, one row per
implementation:

- cython-FillHook   emu._fast.sv39.FillHook (C callback, our walker)
- pure-PyFillHook   emu.mmu.tlb.PyFillHook (ctypes callback, our walker)
- unicorn-builtin   UC_TLB_CPU mode: QEMU's own Sv39 walker
- hook-floor        emu._fast.sv39.NullFillHook: identity fill, no register
                    reads, no walk - unicorn's fixed cost for any fill hook

A second group, tlb-fill-umode, runs the same implementations on a U-mode
guest (which cannot execute sfence.vma) cycling through 1,024 pages, more
than QEMU's soft TLB holds, so every access misses there too.

The table's times are per round (the whole loop). Per-fill cost is
(miss-loop time - hit-loop time) / fills, where the hit loop is the same
program with a nop instead of sfence.vma (all hits after warm-up), timed
before each miss round; best rounds are used (medians in extra_info too).
It is stored in each row's extra_info (ns_per_fill) and in the benchmarks'
summary table (bench/summary.py) with its ratios to the built-in walker.
"""

from __future__ import annotations

import struct
import time

import pytest
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, UC_PROT_ALL, Uc
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_TLB_VIRTUAL

from bench import summary
from emu import mmu
from emu.core import twins
from emu.core.memory import PhysMem
from emu.mmu import pte as P

BASE = 0x8000_0000
SIZE = 8 << 20
NPAGES = 128  # fits QEMU's 256-entry soft TLB, so the hit loop never misses
DATA = BASE + 0x10_0000
CODE = BASE + 0x1_0000
T0, T1, T2, S0, A0, A1, A2 = 5, 6, 7, 8, 10, 11, 12
SFENCE_VMA, NOP = 0x1200_0073, 0x0000_0013
ITERS = {"cython-FillHook": 400, "pure-PyFillHook": 20, "unicorn-builtin": 400,
         "hook-floor": 400}
ROUNDS = {"cython-FillHook": 40, "pure-PyFillHook": 15, "unicorn-builtin": 40,
          "hook-floor": 40}
COLUMN = {"unicorn-builtin": "reference", "hook-floor": "floor",
          "pure-PyFillHook": "pure", "cython-FillHook": "compiled"}


def _i(op, f3, rd, rs1, imm):
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op


def _bne(rs1, rs2, off):
    o = off & 0x1FFF
    return ((o >> 12 & 1) << 31) | ((o >> 5 & 0x3F) << 25) | (rs2 << 20) | (rs1 << 15) \
        | (1 << 12) | ((o >> 1 & 0xF) << 8) | ((o >> 11 & 1) << 7) | 0x63


def program(flush: bool) -> list[int]:
    """s0 rounds of: touch a1 pages from a0 with stride a2, then flush (or nop)."""
    return [
        _i(0x13, 0, T0, A0, 0),           # outer: mv t0, a0
        _i(0x13, 0, T1, A1, 0),           #        mv t1, a1
        _i(0x03, 3, T2, T0, 0),           # inner: ld t2, 0(t0)
        (A2 << 20) | (T0 << 15) | (T0 << 7) | 0x33,  # add t0, t0, a2
        _i(0x13, 0, T1, T1, -1),          #        addi t1, t1, -1
        _bne(T1, 0, -12),                 #        bnez t1, inner
        SFENCE_VMA if flush else NOP,
        _i(0x13, 0, S0, S0, -1),          #        addi s0, s0, -1
        _bne(S0, 0, -32),                 #        bnez s0, outer
    ]


class Workload:
    """A Uc with RAM, an identity-mapped Sv39 table (VA == PA, so the
    hook-floor identity fill runs the very same program) and one fill
    implementation; the guest runs at privilege `priv` over `npages` pages."""

    def __init__(self, impl: str, priv: int, npages: int, flush: bool) -> None:
        self.npages = npages
        self.ram = PhysMem(BASE, SIZE)
        self.uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
        if impl != "unicorn-builtin":
            self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.uc.mem_map_ptr(BASE, SIZE, UC_PROT_ALL, self.ram.address)
        pt = P.PageTableBuilder(self.ram.buf, BASE, alloc_base=BASE, alloc_size=0x1_0000)
        user = P.U if priv == 0 else 0
        for i in range(npages):
            pa = DATA + i * P.PAGE_SIZE
            pt.map(pa, pa, P.R | P.W | P.A | P.D | user)
        pt.map(CODE, CODE, P.R | P.X | P.A | user)
        code = program(flush)
        self.ram.write(CODE, struct.pack(f"<{len(code)}I", *code))
        self.end = CODE + 4 * len(code)
        self.uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
        self.uc.reg_write(rc.UC_RISCV_REG_SATP, pt.satp())
        self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)
        self.hook = None
        if impl != "unicorn-builtin":
            cls = {"cython-FillHook": lambda: twins.compiled("sv39").FillHook,
                   "hook-floor": lambda: twins.compiled("sv39").NullFillHook,
                   "pure-PyFillHook": lambda: mmu.PyFillHook}[impl]()
            self.hook = cls(self.uc, self.ram.buf, BASE, SIZE)
            self.hook.install()

    def run(self, iters: int) -> None:
        self.uc.reg_write(rc.UC_RISCV_REG_S0, iters)
        self.uc.reg_write(rc.UC_RISCV_REG_A0, DATA)
        self.uc.reg_write(rc.UC_RISCV_REG_A1, self.npages)
        self.uc.reg_write(rc.UC_RISCV_REG_A2, P.PAGE_SIZE)
        self.uc.emu_start(CODE, self.end)


# name -> (group, priv, miss pages, miss loop flushes, hit pages). The hit loop
# makes as many loads as the miss loop (iterations scaled by the page ratio).
SCENARIOS = {
    "S-sfence": ("tlb-fill", 1, NPAGES, True, NPAGES),
    # U-mode cannot sfence.vma: 1,024 pages cycled through QEMU's 256-entry
    # direct-mapped TLB (+ 8-entry victim TLB) miss on every access instead.
    "U-capacity": ("tlb-fill-umode", 0, 1024, False, NPAGES),
}


def _bench(benchmark, scenario: str, impl: str) -> None:
    if impl in ("cython-FillHook", "hook-floor") and not twins.available("sv39"):
        pytest.skip("Cython twin not built")
    _, priv, miss_pages, flush, hit_pages = SCENARIOS[scenario]
    iters = ITERS[impl] * NPAGES // miss_pages
    hit_iters = iters * miss_pages // hit_pages
    miss = Workload(impl, priv, miss_pages, flush)
    hit = Workload(impl, priv, hit_pages, False)
    for w in (miss, hit):
        w.run(2)  # warm: translate the code, fill the TLB
        if w.hook is not None:
            w.hook.reset_counters()
    hit_times: list[float] = []

    def time_hit_loop():
        """Runs (untimed by the benchmark) before each miss round, so both
        loops see the same machine conditions."""
        t = time.perf_counter()
        hit.run(hit_iters)
        hit_times.append(time.perf_counter() - t)
        return (iters,), {}

    benchmark.pedantic(miss.run, setup=time_hit_loop, rounds=ROUNDS[impl], warmup_rounds=1)
    fills = miss_pages * iters
    if miss.hook is not None:
        # every load missed (warm-up round included), the hit loop never did
        per_run = miss.hook.fills / (ROUNDS[impl] + 1)
        assert abs(per_run - fills) <= 2, (per_run, fills)
        assert miss.hook.faults == 0 and hit.hook.fills == 0
    st = benchmark.stats.stats
    hit_min = min(hit_times)
    ns_min = (st.min - hit_min) / fills * 1e9
    ns_median = (st.median - sorted(hit_times)[len(hit_times) // 2]) / fills * 1e9
    benchmark.extra_info.update(scenario=scenario, fills_per_round=fills,
                                hit_loop_min_s=hit_min, ns_per_fill=round(ns_min, 1),
                                ns_per_fill_median=round(ns_median, 1))
    row = {"S-sfence": "TLB fill, S-mode", "U-capacity": "TLB fill, U-mode"}[scenario]
    summary.record(row, COLUMN[impl], ns_min)


@pytest.mark.benchmark(group="tlb-fill")
@pytest.mark.parametrize("impl", list(ITERS))
def test_tlb_fill(benchmark, impl):
    """S-mode, sfence.vma after every 128 pages: the issue's all-miss workload."""
    _bench(benchmark, "S-sfence", impl)


@pytest.mark.benchmark(group="tlb-fill-umode")
@pytest.mark.parametrize("impl", list(ITERS))
def test_tlb_fill_user_mode(benchmark, impl):
    """U-mode capacity misses: adds the hook's PRIV switch around CSR reads."""
    _bench(benchmark, "U-capacity", impl)
