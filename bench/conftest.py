"""Benchmarks: run with `make bench` (pytest-benchmark, --benchmark-only).

Every benchmark also records its figures in bench/summary.py; at the end of
the session the summary table is printed, saved (bench/results/latest.json
and .benchmarks/emu/) and drawn (docs/img/bench-ratios.png).
"""

from bench import summary
from tests.conftest import asm, assemble, kernel  # noqa: F401  (shared fixtures)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    """Print the one summary table and save the run."""
    saved = summary.save()
    if saved is None:
        return
    from rich.console import Console

    data = summary.json.loads(summary.LATEST.read_text())
    Console(file=terminalreporter._tw._file, width=160).print(summary.table(data))
    png = summary.HERE.parent / "docs" / "img" / "bench-ratios.png"
    summary.plot(data, str(png))
    terminalreporter.write_line(f"saved: {summary.LATEST} and {saved}; plot: {png}; "
                                "`make bench-compare` compares with the previous run")
