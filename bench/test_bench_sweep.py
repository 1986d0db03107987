"""The experiments' runner (issue "Runs in parallel on an existing engine"):
wall seconds of one sweep on one worker, on two local workers (loky, `-j
2`) and on a Dask cluster of two local worker processes (`--cluster`, a
distributed.LocalCluster started before the clock runs, as a user's
cluster is), in the same run. Each figure is a whole `emu` command started
as a user types it, so interpreter start-up and the pool's own start are
in it; the outputs must be identical (the runs are deterministic).

Two sweeps, to show where parallel runs pay:
- `emu experiment kmem --quick`: 3 boots of about 0.1 s each, so the
  workers' start dominates;
- a reserve-search pinned to one candidate (`--lo 304 --hi 304`, 4 seeds):
  2 probes of 4 memhog runs on 8 MiB, about 1.5 s each;
- `emu experiment swapoff --modes scan,walk --sizes 16 --disks ram,hdd`: 4
  runs of 2-4 s each (its wall-clock lines are left out of the comparison).

`pytest bench/test_bench_sweep.py --benchmark-only` (or `make bench`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench import summary
from tests.conftest import REPO

SWEEPS = {
    "kmem": ["experiment", "kmem", "--quick"],
    "memhog": ["reserve-search", "-m", "8M", "--workload", "memhog pages=2048 passes=1 procs=2",
               "--target", "mem:64M", "--deadlock", "500ms", "--seeds", "1,2,3,4",
               "--lo", "304", "--hi", "304"],
    "swapoff": ["experiment", "swapoff", "--modes", "scan,walk", "--sizes", "16", "--disks",
                "ram,hdd"],
}
ROWS = {"kmem": ("Sweep kmem --quick (3 boots), 2 workers",
                 "Sweep kmem --quick (3 boots), Dask"),
        "memhog": ("Sweep 8 memhog runs, 2 workers", "Sweep 8 memhog runs, Dask"),
        "swapoff": ("Sweep swapoff 4 runs (16 MiB out), 2 workers",
                    "Sweep swapoff 4 runs (16 MiB out), Dask")}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Dask scheduler and two single-threaded worker processes on this host."""
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as c:
        yield c.scheduler_address


def _emu(kernel: str, argv: list[str]) -> tuple[float, str]:
    """Wall seconds and stdout of one `emu` command."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "emu", *argv, "-kernel", kernel],
                       capture_output=True, text=True, timeout=900, cwd=REPO)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    return wall, "".join(line for line in r.stdout.splitlines(True)
                         if not line.startswith("wall "))   # (swapoff's host wall times)


@pytest.mark.parametrize("sweep", list(SWEEPS))
@pytest.mark.benchmark(group="sweep-workers")
def test_sweep_one_worker_two_workers_dask(benchmark, kernel, cluster, sweep):
    argv = SWEEPS[sweep]
    out: dict = {}

    def once():
        out["one"] = _emu(kernel, [*argv, "-j", "1"])
        out["two"] = _emu(kernel, [*argv, "-j", "2"])
        out["dask"] = _emu(kernel, [*argv, "--cluster", cluster])

    benchmark.pedantic(once, rounds=1, iterations=1)
    (one, text), (two, text2), (dask, text3) = out["one"], out["two"], out["dask"]
    assert text == text2 == text3                   # where runs go changes no result
    benchmark.extra_info.update(one_s=round(one, 2), two_s=round(two, 2),
                                dask_s=round(dask, 2), two_over_one=round(two / one, 2),
                                dask_over_one=round(dask / one, 2))
    local, on_dask = ROWS[sweep]
    summary.record(local, "reference", one)
    summary.record(local, "compiled", two)
    summary.record(on_dask, "reference", one)
    summary.record(on_dask, "compiled", dask)
    print(f"\nsweep {sweep}: -j 1 {one:.2f} s, -j 2 {two:.2f} s ({two / one:.2f} x), "
          f"Dask 2 workers {dask:.2f} s ({dask / one:.2f} x)")
