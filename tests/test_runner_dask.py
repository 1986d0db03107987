"""The experiments' runner on a Dask cluster (`--cluster ADDRESS`, joblib's
dask backend): the same results as in this process, in job order, a run's
exception raised here, one connection per held Spread; and every way of
not reaching a scheduler is one line (ConfigError; exit 2 from the CLI),
quickly, never a traceback or a hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import distributed  # a dependency (pyproject.toml): no skip if it is missing
import pytest

from emu.core import twins
from emu.core.units import ConfigError
from emu.tools.experiments import kmem, runner, swapoff
from tests.conftest import REPO


def _square(x: int) -> int:
    return x * x


def _fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"run {x} failed")
    return x


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A scheduler and two single-threaded worker processes on this host."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as c:
        yield c.scheduler_address


def test_kmem_sweep_on_a_dask_cluster_is_the_same_as_in_this_process(kernel, cluster):
    sizes = ("4M", "8M")
    here = kmem.sweep(kernel, sizes, jobs=1)
    ticks: list[kmem.Row] = []
    there = runner.run_all(kmem.measure, [(kernel, s) for s in sizes], on_done=ticks.append,
                           cluster=cluster)
    assert there == here and ticks == here
    assert [r.ram for r in there] == list(sizes) and there[1].pages == 2048
    # the experiment's own entry point with a Spread gives the same rows
    assert kmem.sweep(kernel, sizes, runner.Spread(cluster=cluster)) == here


def test_swapoff_sweep_on_a_dask_cluster_is_the_same_as_in_this_process(kernel, cluster):
    if twins.pure_forced():
        pytest.skip("EMU_PURE=1: the kmem sweep checks the cluster on the pure twins")
    q = swapoff.QUICK
    todo = swapoff.cases(("scan", "walk"), q["sizes"], q["procs"], q["free"], q["disks"],
                         q["links"])
    here = swapoff.sweep(kernel, todo, jobs=1)
    there = swapoff.sweep(kernel, todo, runner.Spread(cluster=cluster))
    same = [(r.case, r.pages, r.ptes, r.mms, r.reads, r.sectors, r.virtual_ns) for r in here]
    assert same == [(r.case, r.pages, r.ptes, r.mms, r.reads, r.sectors, r.virtual_ns)
                    for r in there]                    # (wall time is the host's)


def test_the_cluster_returns_job_order_raises_a_runs_error_and_connects_once(cluster):
    jobs = [(i,) for i in range(20)]
    spread = runner.Spread(workers=1, cluster=cluster)
    with spread:
        client = spread.client
        assert client is not None
        assert runner.run_all(_square, jobs, spread) == [i * i for i in range(20)]
        with pytest.raises(ValueError, match="run 3 failed"):
            runner.run_all(_fail_on, [(i, 3) for i in range(6)], spread)
        assert spread.client is client                   # still the one connection
    assert spread.client is None and client.status == "closed"


def test_a_scheduler_without_workers_is_one_line_after_the_timeout():
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as c:
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="has no workers") as e:
            runner.run_all(_square, [(1,), (2,)],
                           runner.Spread(cluster=c.scheduler_address, connect_timeout=1))
        assert time.monotonic() - t0 < 10
    assert "\n" not in str(e.value) and c.scheduler_address in str(e.value)


def test_a_server_that_never_answers_is_one_line_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="no Dask scheduler answered within 1 s"):
            with runner.Spread(cluster=address, connect_timeout=1):
                pass
        assert time.monotonic() - t0 < 5


def _refusing_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"   # closed again: refuses


@pytest.mark.parametrize("argv", [
    ["experiment", "kmem", "--quick"],
    ["reserve-search", "--seeds", "1"],
    ["experiment", "swapoff", "--quick"],
    ["experiment", "prefetch", "--quick"],
])
def test_a_bad_cluster_address_is_one_line_and_exit_2(argv):
    for address, says in [(_refusing_address(), "connection refused"),
                          ("http://127.0.0.1:1", "not a scheduler address"),
                          ("127.0.0.1", "not a scheduler address")]:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "emu", *argv, "--cluster", address],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith(f"emu: --cluster {address}: ") and says in lines[0]
        assert r.stdout == ""
        assert time.monotonic() - t0 < 20                 # no connect timeout waited out
