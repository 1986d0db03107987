"""`emu experiment swapoff`: the quick sweep (CI runs it) gives the same
figures on one worker and on two, brings every page back through each
strategy, and its command prints the table, the walk/scan comparison and
the wall-clock lines, writes the CSV and the plot, and refuses bad values
with one line."""

from __future__ import annotations

import csv
import subprocess

import pytest

from emu.core import twins
from emu.tools.experiments import swapoff
from tests.conftest import REPO

EMU = str(REPO / ".venv" / "bin" / "emu")
COMPILED_ONLY = pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: tests/test_swapoff.py "
                                   "runs swapoff on the pure twins; make test runs the sweeps")


def quick_cases() -> list[swapoff.Case]:
    q = swapoff.QUICK
    return swapoff.cases(swapoff.MODES, q["sizes"], q["procs"], q["free"], q["disks"],
                         q["links"])


@COMPILED_ONLY
def test_quick_sweep_same_on_one_and_two_workers(kernel):
    todo = quick_cases()
    one = swapoff.sweep(kernel, todo, jobs=1)
    two = swapoff.sweep(kernel, todo, jobs=2)
    strip = [(r.case, r.pages, r.ptes, r.mms, r.reads, r.sectors, r.virtual_ns) for r in one]
    assert strip == [(r.case, r.pages, r.ptes, r.mms, r.reads, r.sectors, r.virtual_ns)
                     for r in two]                      # wall time differs, nothing else
    by = {r.case.mode: r for r in one}
    assert set(by) == set(swapoff.MODES)
    for r in one:
        assert r.out_pages >= 500 and r.pages >= r.out_pages - 10
        assert r.sectors >= 8 * r.pages and r.wall_s > 0
    assert by["walk"].ptes * 5 < by["scan"].ptes
    assert by["scan"].reads >= by["scan"].pages > 4 * by["batch"].reads
    assert by["hint"].hint_hits == by["hint"].pages


@COMPILED_ONLY
def test_command_prints_writes_csv_and_plot(kernel, tmp_path):
    out_csv, out_png = tmp_path / "s.csv", tmp_path / "s.png"
    r = subprocess.run([EMU, "experiment", "swapoff", "-kernel", kernel, "--quick", "--csv",
                        str(out_csv), "--plot", str(out_png), "-j", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "PTEs read" in r.stdout and "as fast as scan" in r.stdout and "fewer PTEs" in r.stdout
    assert r.stdout.count("\nwall  ") == 4
    assert "swapoff: 4/4 runs" in r.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert [row["mode"] for row in rows] == list(swapoff.MODES)
    assert all(int(row["pages"]) > 500 for row in rows)
    assert out_png.stat().st_size > 10_000


@pytest.mark.parametrize("flags, word", [
    (["--modes", "scan,zap"], "--modes"), (["--disks", "tape"], "--disks"),
    (["--sizes", "0"], "--sizes"), (["--procs", "40"], "--procs"),
    (["--sizes", "x"], "--sizes"), (["--links", "loss9"], "--links"),
])
def test_bad_values_get_one_line(flags, word):
    r = subprocess.run([EMU, "experiment", "swapoff", *flags], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert word in r.stderr
