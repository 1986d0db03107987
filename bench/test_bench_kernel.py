"""The guest kernel's figures with each MMU, in one run: boot-to-shutdown
instructions and wall time of the default demo, and demand-zero faults per
wall second (memtouch touching fresh pages)."""

from __future__ import annotations

import time

import pytest

from emu.guestview.kstats import collect
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine

MMUS = ("python", "fast")


def _run(kernel: str, mmu: str, append: str = "") -> tuple[Machine, float]:
    m = Machine(MachineConfig(kernel=kernel, mmu=mmu, append=append))
    t0 = time.perf_counter()
    assert m.run() == 0, m.stop_reason
    return m, time.perf_counter() - t0


@pytest.mark.parametrize("mmu", MMUS)
@pytest.mark.benchmark(group="kernel-default-demo")
def test_default_demo(benchmark, kernel, mmu):
    out = {}

    def run():
        m, wall = _run(kernel, mmu)
        out.update(insns=m.icount, wall=wall)

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(instructions=out["insns"])
    print(f"\ndefault demo [{mmu}]: {out['insns']:,} instructions, {out['wall']:.3f} s wall")


@pytest.mark.parametrize("mmu", MMUS)
@pytest.mark.benchmark(group="kernel-demand-zero")
def test_demand_zero_faults_per_second(benchmark, kernel, mmu):
    out = {}

    def run():
        m, wall = _run(kernel, mmu, "init=memtouch pages=3000")
        dz = collect(m)["page_faults"]["demand_zero"]
        out.update(dz=dz, wall=wall)

    benchmark.pedantic(run, rounds=3, iterations=1)
    rate = out["dz"] / out["wall"]
    benchmark.extra_info.update(demand_zero_faults=out["dz"], faults_per_wall_s=round(rate))
    print(f"\ndemand-zero [{mmu}]: {out['dz']:,} faults, {rate:,.0f} faults per wall second")
    assert out["dz"] > 1000          # memtouch really faulted its pages in
