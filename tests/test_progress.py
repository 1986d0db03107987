"""The progress display (emu/tools/progress.py): on stderr, a live bar at the
terminal's width with the console's lines intact above it, plain periodic
lines when stderr is not a terminal, and nothing on stdout but the console."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from types import SimpleNamespace

import pytest

from emu.core import twins
from emu.tools.progress import PLAIN_PERIOD_S, Progress, live_terminal, same_terminal

# ~1.5 wall s of compute whose last console lines come after the bar was drawn
# (the pure twins, EMU_PURE=1, run ~30x slower: the same wall time, less work).
SCALE = 20 if twins.pure_forced() else 1
RUN = ["run", "-append", f"init=forktest workers=8 work={60_000_000 // SCALE}"]
COLUMNS = 132
BAR = re.compile(rb"\r\x1b\[2K((?:\x1b\[[0-9;]*m|[^\r\n\x1b])*MIPS(?:\x1b\[[0-9;]*m|[^\r\n\x1b])*)")
SGR = re.compile(rb"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    """rich takes FORCE_COLOR / TTY_COMPATIBLE as "this is a terminal"."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


def _pty() -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    return master, slave


def run_on_ptys(args: list[str], shared: bool) -> tuple[int, bytes, bytes]:
    """Run `emu ARGS` with stdout and stderr on one pty (`shared`) or on two;
    returns (status, what stdout's pty got, what stderr's pty got)."""
    m1, s1 = _pty()
    m2, s2 = (m1, s1) if shared else _pty()
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    p = subprocess.Popen([sys.executable, "-m", "emu", *args], stdout=s1, stderr=s2,
                         stdin=subprocess.DEVNULL, close_fds=True, env=env)
    for fd in {s1, s2}:
        os.close(fd)
    got = {m1: b"", m2: b""}
    live = set(got)
    while live:
        ready, _, _ = select.select(list(live), [], [], 5)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:          # EIO: the child closed its end
                chunk = b""
            if chunk:
                got[fd] += chunk
            else:
                live.discard(fd)
    status = p.wait(timeout=120)
    for fd in {m1, m2}:
        os.close(fd)
    return status, got[m1], got[m2]


@pytest.fixture(scope="module")
def console_lines(kernel) -> list[bytes]:
    """The console of RUN without progress: what every variant must show."""
    r = subprocess.run([sys.executable, "-m", "emu", *RUN, "-q", "--progress", "off"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln.replace(b"\r", b"") for ln in r.stdout.splitlines()]
    assert len(lines) > 10
    return lines


def assert_intact(lines: list[bytes], out: bytes) -> None:
    """Every console line appears whole, in order, in `out`, from the first
    column: after a newline or after the bar was erased (carriage returns
    aside: the pty adds them; and rich's hiding of the cursor)."""
    text, at = re.sub(rb"\x1b\[\?25[lh]", b"", out.replace(b"\r", b"")), 0
    for ln in lines:
        i = text.find(ln + b"\n", at)
        assert i >= 0, f"console line cut or missing: {ln!r}"
        assert i == 0 or text[i - 1:i] == b"\n" or text[:i].endswith(b"\x1b[2K"), \
            f"console line drawn after something else: {text[max(0, i - 80):i + len(ln)]!r}"
        at = i + len(ln)


def test_live_bar_on_a_shared_terminal_keeps_console_lines_whole(console_lines):
    status, out, _ = run_on_ptys(RUN + ["-q"], shared=True)
    assert status == 0
    assert_intact(console_lines, out)
    bars = [SGR.sub(b"", m.group(1)) for m in BAR.finditer(out)]
    assert bars, "the bar was never drawn"
    assert out.rstrip().endswith(b"\x1b[2K")                   # and erased at the end


def test_live_bar_goes_to_stderr_at_the_terminal_width(console_lines):
    status, out, err = run_on_ptys(RUN, shared=False)
    assert status == 0
    assert b"\x1b" not in out and b"MIPS" not in out           # stdout: the console only
    assert_intact(console_lines, out)
    bars = [SGR.sub(b"", m.group(1)) for m in BAR.finditer(err)]
    assert bars and b"swap out 0 in 0" in bars[-1] and b"free" in bars[-1]
    widths = {len(b.decode()) for b in bars}
    assert max(widths) > 80 and max(widths) <= COLUMNS          # not cut at 80 columns
    assert b"instructions" in err                              # the report follows


def test_progress_on_into_a_pipe_prints_plain_lines_on_stderr(kernel):
    r = subprocess.run([sys.executable, "-m", "emu", "run", "-append",
                        f"init=forktest workers=8 work={150_000_000 // SCALE}", "--progress",
                        "on"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0
    lines = [ln for ln in r.stderr.splitlines() if b"MIPS" in ln and b"faults/s" in ln]
    assert lines and all(ln.startswith(b"emu: virtual ") for ln in lines)
    assert b"\x1b" not in r.stderr and b"MIPS" not in r.stdout
    auto = subprocess.run([sys.executable, "-m", "emu", *RUN, "-q"], capture_output=True,
                          timeout=120)
    assert auto.stderr == b""                # auto: no progress when stderr is not a terminal


class FakeMachine:
    """What Progress reads of a machine."""

    def __init__(self) -> None:
        self.icount, self.t = 0, 0
        self.cpu = SimpleNamespace(mmu=SimpleNamespace(faults_by_cause={13: 0}))

    def now(self) -> int:
        return self.t


def test_plain_lines_come_every_period_and_never_cut_a_console_line():
    m, clock = FakeMachine(), [0.0]
    err, out = io.StringIO(), io.BytesIO()
    values = {"kernel.swap.swap_outs": 1234, "kernel.swap.swap_ins": 5}
    p = Progress(m, err, out, counters=lambda _: values, wall=lambda: clock[0])
    assert not p.live_mode and not live_terminal(err) and not same_terminal(out, err)
    with p:
        clock[0] = PLAIN_PERIOD_S - 0.1
        p()
        assert err.getvalue() == ""
        clock[0], m.icount, m.t = PLAIN_PERIOD_S, 100_000_000, 250_000_000
        m.cpu.mmu.faults_by_cause[13] = 4000
        p()
        assert err.getvalue() == ("emu: virtual 0.250 s, 50.0 MIPS, 2,000 faults/s, "
                                  "swap out 1,234 in 5\n")
        p.console_write(b"half a li")
        assert out.getvalue() == b"half a li"             # passed on at once
        clock[0] = 2 * PLAIN_PERIOD_S + 1
        p()
        assert err.getvalue().count("\n") == 1            # mid-line: the line waits
        p.console_write(b"ne\n")
        p()
        assert err.getvalue().count("\n") == 2 and out.getvalue() == b"half a line\n"


def test_figures_show_free_memory_and_reserve_use():
    """The figures name free pages against min and, once the reserve is in
    use, how many reserve pages are charged."""
    values = {"kernel.swap.swap_outs": 3, "kernel.swap.swap_ins": 1,
              "kernel.memory.pages_free": 117, "kernel.memory.watermarks.min": 118,
              "kernel.reserve.aoe_rx.usage": 20, "kernel.reserve.swap_io.usage": 1,
              "kernel.reserve.aoe_rx.peak": 25}
    p = Progress(FakeMachine(), io.StringIO(), counters=lambda _: values)
    line = ", ".join(p.figures(1.0))
    assert "free 117/min 118" in line and "reserve 21 pages" in line
    values["kernel.reserve.aoe_rx.usage"] = values["kernel.reserve.swap_io.usage"] = 0
    assert "reserve" not in ", ".join(p.figures(2.0))
