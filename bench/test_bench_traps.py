"""The trap path: its pure and compiled twins, per trap, in one run.

- Delivery: TrapCore.enter_trap + the interrupt check + the slice's
  pc/privilege read, as the run loop does them for one trap, called in a
  loop on a bare hart (the twins' own cost, nothing else).
- Round trip: a guest that makes 200,000 ecalls from U-mode, each taken by
  an S-mode handler that steps sepc and returns with sret - emu_start, the
  exit, the delivery and the return, per trap, on the whole machine with
  the trap path pure or compiled (everything else compiled).
"""

from __future__ import annotations

import time

import pytest
import unicorn as U
from unicorn import riscv_const as R

from bench import summary
from emu.core import isa, twins
from emu.machine.config import MachineConfig
from emu.machine.cpu import MIDELEG_S
from emu.machine.machine import Machine
from emu.machine.traps import S_MODE, TrapCore

IMPLS = ("pure", "compiled")
ECALLS = 200_000
GUEST = r"""
.globl _start
_start:
    la t0, handler
    csrw stvec, t0
    la t0, user
    csrw sepc, t0
    li t0, 0x100
    csrc sstatus, t0            # SPP = U
    sret
user:
    li s2, ECALLS
1:  ecall
    addi s2, s2, -1
    bnez s2, 1b
    ebreak                      # back in S through the handler: shutdown
.align 2
handler:
    csrr t1, scause
    li t2, 8
    bne t1, t2, done
    csrr t1, sepc
    addi t1, t1, 4
    csrw sepc, t1
    sret
done:
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
""".replace("ECALLS", str(ECALLS))


def _core(impl: str):
    uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
    uc.mem_map(0x8000_0000, 0x1_0000)
    cls = TrapCore if impl == "pure" else twins.compiled("traps").TrapCore
    core = cls(uc)
    core.set_csr(R.UC_RISCV_REG_MIDELEG, MIDELEG_S)
    core.set_csr(R.UC_RISCV_REG_STVEC, 0x8000_0000)
    return core, uc


@pytest.mark.benchmark(group="trap-delivery")
@pytest.mark.parametrize("impl", IMPLS)
def test_trap_delivery(benchmark, impl):
    if impl == "compiled" and not twins.available("traps"):
        pytest.skip("the compiled trap-path twin is not built")
    core, uc = _core(impl)
    n = 2_000 if impl == "pure" else 50_000

    def deliver():
        for i in range(n):
            uc.reg_write(R.UC_RISCV_REG_PRIV, 0)
            core.enter_trap(S_MODE, isa.CAUSE_ECALL_U, 0, 0x4000_0000 + 4 * i, False)
            core.deliverable_irq(0x20)
            core.pc_priv()

    benchmark.pedantic(deliver, rounds=5, warmup_rounds=1)
    us = benchmark.stats.stats.min / n * 1e6
    benchmark.extra_info["us_per_trap"] = round(us, 3)
    summary.record("Trap delivery", impl, us)


@pytest.mark.benchmark(group="trap-round-trip")
@pytest.mark.parametrize("impl", IMPLS)
def test_trap_round_trip(benchmark, asm, impl):
    if impl == "compiled" and not twins.available("traps"):
        pytest.skip("the compiled trap-path twin is not built")
    elf = asm(GUEST)
    result = {}

    def run():
        m = Machine(MachineConfig(kernel=elf, traps="python" if impl == "pure" else "fast"))
        t0 = time.perf_counter()
        assert m.run() == 0, m.stop_reason
        result["wall"] = time.perf_counter() - t0
        result["traps"] = sum(m.stats.traps.values())

    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    assert result["traps"] >= ECALLS
    us = benchmark.stats.stats.min / result["traps"] * 1e6
    benchmark.extra_info["us_per_trap"] = round(us, 3)
    summary.record("Trap round trip (ecall from U, handler, sret)", impl, us)
