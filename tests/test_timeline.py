"""Timeline sampling and the --plot PNG."""

from __future__ import annotations

import subprocess
import sys

from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.tools.timeline import Timeline, flatten


def test_flatten_keeps_int_leaves():
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}, "f": "x", "g": True}) == \
        {"a": 1, "b.c": 2, "b.d.e": 3}


def test_timeline_samples_in_virtual_time_and_bounds_memory(kernel):
    m = Machine(MachineConfig(kernel=kernel))
    tl = Timeline(m, period_ns=100_000)
    tl.MAX_SAMPLES = 8
    m.after_slice.append(tl)
    m.run()
    assert 4 <= len(tl.samples) <= 9
    ts = [s.t_ns for s in tl.samples]
    assert ts == sorted(ts)
    assert tl.period_ns > 100_000           # halved resolution at least once
    t, r = tl.rate("instructions")
    assert len(t) == len(tl.samples) - 1 and all(v >= 0 for v in r)
    assert any(k.startswith("kernel.") for k in tl.keys())


def test_plot_writes_a_png(kernel, tmp_path):
    out = tmp_path / "run.png"
    r = subprocess.run([sys.executable, "-m", "emu", "run", "-q", "-append", "init=demo",
                        "--plot", str(out)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
