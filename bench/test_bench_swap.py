"""Swap throughput: MB of guest swap traffic (pages written out + read back,
from the kernel's counters) per wall second, for memhog on 4 MiB of RAM
with a working set of 4x RAM, on the fast paths (every compiled twin)
and the pure paths (MachineConfig with mmu, budget, traps and io
"python", as EMU_PURE=1), at 0% and 5% loss. One table: `make bench` or
`pytest bench/test_bench_swap.py --benchmark-only`. Each run's figure is
in extra_info (swap_mb_per_wall_s); the goal is >= 20 MB/s at 0% loss on
the fast paths.
"""

from __future__ import annotations

import time

import pytest

from bench import summary
from emu.core import twins
from emu.guestview import kstats
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.net.network import NetConfig

APPEND = "init=memhog pages=1024 passes=2 procs=4"
PATHS = {"fast": {}, "pure": {"mmu": "python", "budget": "python", "traps": "python",
                           "io": "python"}}


def _run(kernel: str, net: str, impl: dict) -> tuple[float, dict]:
    m = Machine(MachineConfig(kernel=kernel, append=APPEND, ram_size=4 << 20, seed=1,
                              max_insns=20_000_000_000,
                              net=NetConfig(net=net, seed=1, target_service="20us"), **impl))
    t0 = time.perf_counter()
    m.run()
    wall = time.perf_counter() - t0
    assert m.exit_status == 0, m.console.decode(errors="replace")[-2000:]
    assert b"mismatches=0" in m.console
    return wall, kstats.collect(m)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("loss", [0, 5])
@pytest.mark.benchmark(group="swap-throughput")
def test_swap_throughput(benchmark, kernel, path, loss):
    if path == "fast" and twins.pure_forced():
        pytest.skip("EMU_PURE=1: the compiled twins are not loaded")
    net = f"loss {loss}%" if loss else ""
    out: dict = {}

    def once():
        out["wall"], out["k"] = _run(kernel, net, PATHS[path])

    benchmark.pedantic(once, rounds=1, iterations=1)
    k = out["k"]
    mb = (k["swap"]["bytes_out"] + k["swap"]["bytes_in"]) / 1e6
    benchmark.extra_info.update(
        swap_mb=round(mb, 1), swap_mb_per_wall_s=round(mb / out["wall"], 2),
        swap_outs=k["swap"]["swap_outs"], swap_ins=k["swap"]["swap_ins"],
        retransmits=k["aoe"]["retransmits"])
    summary.record("Swap, clean link" if not loss else "Swap, 5% loss",
                   "compiled" if path == "fast" else "pure", mb / out["wall"])
    print(f"\nswap throughput {path} loss {loss}%: {mb:.1f} MB in {out['wall']:.2f} s = "
          f"{mb / out['wall']:.2f} MB/s, retransmits {k['aoe']['retransmits']}")
