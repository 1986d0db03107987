"""`emu experiment kmem` and the runner under it: the kernel's own memory
by kind at several RAM sizes, the same on one worker and on two (joblib),
and the command's table, CSV and plot."""

from __future__ import annotations

import csv
import subprocess

from emu.tools.experiments import kmem, runner
from tests.conftest import REPO


def _square(x: int) -> int:
    return x * x


def test_the_runner_returns_results_in_job_order_whatever_runs_them():
    jobs = [(i,) for i in range(12)]
    ticks: list[object] = []
    serial = runner.run_all(_square, jobs, workers=1, on_done=ticks.append)
    assert serial == [i * i for i in range(12)] and len(ticks) == 12
    ticks.clear()
    assert runner.run_all(_square, jobs, workers=2, on_done=ticks.append) == serial
    assert len(ticks) == 12


def test_kmem_sweep_is_the_same_on_one_and_two_workers(kernel):
    one = kmem.sweep(kernel, kmem.QUICK, jobs=1)
    two = kmem.sweep(kernel, kmem.QUICK, jobs=2)
    assert one == two
    for r in one:
        assert sum(r.by_use.values()) == r.pages
        assert 0.7 < r.share("frametable") < 1.0          # 32 bytes a 4 KiB page
    # what does not grow with memory shrinks as a share of it
    kernel_share = [r.kernel_pages / r.pages for r in one]
    assert kernel_share == sorted(kernel_share, reverse=True)
    grows = kmem.growth_text(one).splitlines()[1]
    assert grows.startswith("  grows with RAM: frame table (") and ";" not in grows


def test_kmem_command_prints_writes_csv_and_plot(kernel, tmp_path):
    out_csv, out_png = tmp_path / "k.csv", tmp_path / "k.png"
    r = subprocess.run([str(REPO / ".venv" / "bin" / "emu"), "experiment", "kmem", "-kernel",
                        kernel, "--sizes", "4M,8M", "--csv", str(out_csv), "--plot",
                        str(out_png), "-j", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "frame table" in r.stdout and "kernel, all" in r.stdout and "4M" in r.stdout
    assert "kmem: 2/2 runs" in r.stderr                     # progress, not a terminal
    rows = list(csv.DictReader(out_csv.open()))
    assert [row["ram"] for row in rows] == ["4M", "8M"] and int(rows[1]["pages"]) == 2048
    assert out_png.stat().st_size > 10_000
    bad = subprocess.run([str(REPO / ".venv" / "bin" / "emu"), "experiment", "kmem",
                          "--sizes", "4Q"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
