"""Benchmarks: run with `make bench` (pytest-benchmark, --benchmark-only).
Each starts with the garbage of the earlier ones collected (`_collected`).

Every benchmark also records its figures in bench/summary.py; at the end of
the session the summary table is printed and saved in .benchmarks/emu/ (the
history `make bench-compare` reads). `make bench` (EMU_BENCH_PUBLISH=1) also
makes it the run the docs show: bench/results/latest.json and
docs/img/bench-ratios.png - a partial run of a few benchmarks never does.
"""

import gc
import os

import pytest

from bench import summary
from tests.conftest import asm, assemble, kernel  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def _collected() -> None:
    """Start every benchmark with the earlier ones' garbage collected.

    A Machine is a web of cycles (hooks, devices and the run loop point at
    each other), so it is freed by the cycle collector, not when its last
    name goes. Freeing one (its unicorn instance and translation cache) took
    0.1-0.15 s, and a collection that fell inside a later benchmark's timed
    run charged it that: the swap demo measured 1.18, 1.25, 1.49 and 1.51 s
    in four runs in one process, and 1.16-1.18 s each with a collection
    before it (as timeit's and pyperf's fresh processes give)."""
    gc.collect()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    """Print the one summary table and save the run."""
    publish = os.environ.get("EMU_BENCH_PUBLISH") == "1"
    saved = summary.save(publish=publish)
    if saved is None:
        return
    from rich.console import Console

    data = summary.json.loads(saved.read_text())
    Console(file=terminalreporter._tw._file, width=160).print(summary.table(data))
    where = f"saved: {saved}"
    if publish:
        png = summary.HERE.parent / "docs" / "img" / "bench-ratios.png"
        summary.plot(data, str(png))
        where += f", {summary.LATEST} and the plot {png}"
    terminalreporter.write_line(f"{where}; `make bench-compare` compares with the previous run")
