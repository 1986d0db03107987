"""Timeline sampling, the --plot PNG and the progress line."""

from __future__ import annotations

import os
import pty
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


def test_progress_line_on_a_terminal_keeps_the_console(kernel):
    """On a pty the live line is drawn and removed; every console line survives."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "emu", "run", "-q", "-append", "init=demo"],
                         stdout=slave,
                         stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert p.wait(timeout=120) == 0
    os.close(master)
    text = out.decode(errors="replace")
    assert "boot: all good, powering off" in text
    assert "init: demo done" in text


def test_progress_line_shows_free_memory_and_reserve_use():
    """The live line names free pages against min and, once the reserve is
    in use, how many reserve pages are charged."""
    import io
    from types import SimpleNamespace

    from emu.tools.progress import ProgressLine
    from emu.tools.timeline import Sample

    m = SimpleNamespace(icount=10, now=lambda: 5_000_000,
                        cpu=SimpleNamespace(mmu=SimpleNamespace(faults_by_cause={})))
    values = {"kernel.swap.swap_outs": 3, "kernel.swap.swap_ins": 1,
              "kernel.memory.pages_free": 117, "kernel.memory.watermarks.min": 118,
              "kernel.reserve.aoe_rx.usage": 20, "kernel.reserve.swap_io.usage": 1,
              "kernel.reserve.aoe_rx.peak": 25}
    tl = SimpleNamespace(samples=[Sample(5_000_000, 0.0, values)])
    line = ProgressLine(m, tl, io.StringIO()).render(1.0).plain
    assert "free 117/min 118" in line and "reserve 21 pages" in line
    values["kernel.reserve.aoe_rx.usage"] = values["kernel.reserve.swap_io.usage"] = 0
    assert "reserve" not in ProgressLine(m, tl, io.StringIO()).render(1.0).plain
