"""The machine's speed against raw unicorn, measured in one run.

An ALU-bound loop runs (a) on raw unicorn with no hooks at all and (b) on the
emu machine with the block-budget clock and 1 kHz timer interrupts active.
Issue target: (b) >= 50% of (a)'s MIPS. The ratio is printed and stored in
the benchmark's extra_info; benchmarks never assert on time.
"""

from __future__ import annotations

import time

import pytest
import unicorn as U
from unicorn import riscv_const as R

from emu.config import MachineConfig
from emu.loader import load_elf
from emu.machine import Machine
from emu.memory import PhysMem

ITERS = 20_000_000
LOOP = r"""
.section .text.entry
.globl _start
_start:
    la t0, handler
    csrw stvec, t0
    li t0, 0x20
    csrs sie, t0
    csrsi sstatus, 2
    rdtime a0
    li t1, 1000000
    add a0, a0, t1
    li a7, 0x54494D45
    li a6, 0
    ecall
.globl loop_start
loop_start:
    li s2, ITERS
    li s3, 0
    li s4, 7
1:  add s3, s3, s4
    xor s3, s3, s2
    slli s5, s3, 3
    sub s3, s3, s5
    addi s2, s2, -1
    bnez s2, 1b
.globl loop_end
loop_end:
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
handler:
    rdtime a0
    li t1, 1000000
    add a0, a0, t1
    li a7, 0x54494D45
    li a6, 0
    ecall
    sret
""".replace("ITERS", str(ITERS))
INSNS = 6 * ITERS


@pytest.fixture(scope="module")
def loop_elf(tmp_path_factory):
    from tests.conftest import assemble
    return assemble(tmp_path_factory.mktemp("alu"), LOOP, name="alu")


def _raw_mips(elf: str) -> float:
    mem = PhysMem(0x8000_0000, 16 << 20)
    img = load_elf(elf, mem)
    uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
    uc.mem_map_ptr(mem.base, mem.size, U.UC_PROT_ALL, mem.address)
    start, end = img.symbols.by_name["loop_start"], img.symbols.by_name["loop_end"]
    uc.reg_write(R.UC_RISCV_REG_PRIV, 1)
    t0 = time.perf_counter()
    uc.emu_start(start, end)
    return INSNS / (time.perf_counter() - t0) / 1e6


def _emu_mips(elf: str, mmu: str) -> tuple[float, Machine]:
    m = Machine(MachineConfig(kernel=elf, mmu=mmu, budget=mmu))
    t0 = time.perf_counter()
    status = m.run()
    dt = time.perf_counter() - t0
    assert status == 0
    return m.icount / dt / 1e6, m


@pytest.mark.benchmark(group="alu-loop")
def test_alu_loop_machine_vs_raw_unicorn(benchmark, loop_elf):
    """One table row per run; extra_info holds raw MIPS, emu MIPS and the ratio."""
    raw = max(_raw_mips(loop_elf) for _ in range(3))
    result = {}

    def run():
        mips, m = _emu_mips(loop_elf, "fast")
        result["mips"] = max(result.get("mips", 0.0), mips)
        result["irqs"] = sum(m.stats.interrupts.values())

    benchmark.pedantic(run, rounds=3, iterations=1)
    ratio = result["mips"] / raw
    benchmark.extra_info.update(raw_mips=round(raw, 1), emu_mips=round(result["mips"], 1),
                                ratio=round(ratio, 3), timer_interrupts=result["irqs"])
    print(f"\nALU loop: raw unicorn {raw:,.0f} MIPS, emu (fast twins, clock + "
          f"{result['irqs']} timer irqs) {result['mips']:,.0f} MIPS, ratio {ratio:.2f}")
    assert result["irqs"] > 50   # the clock and the timer really were active
