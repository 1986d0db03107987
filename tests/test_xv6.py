"""xv6-riscv, unmodified (../shared/guests/xv6-riscv, built by `make xv6`
with Debian's cross compiler), on emu with its own QEMU command line: it
boots to the shell, runs programs, prints what QEMU prints for the same
typed session, runs the same twice, and - `make xv6-usertests`, run by
.ci/run after make test - passes its own test suite."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from emu.core import twins
from tests.conftest import IN_CI, REPO, need_tool

XV6_SRC = REPO.parent / "shared" / "guests" / "xv6-riscv"
BUILD = REPO / "build" / "xv6"
# xv6's Makefile (qemu target) with CPUS=1, as ../shared/guests/README.md runs it.
BOARD = ["-machine", "virt", "-bios", "none", "-m", "128M", "-smp", "1", "-nographic",
         "-global", "virtio-mmio.force-legacy=false"]


def command(kernel: Path, fs: Path) -> list[str]:
    """xv6's command line, the same for emu and QEMU."""
    return [*BOARD, "-kernel", str(kernel), "-drive", f"file={fs},if=none,format=raw,id=x0",
            "-device", "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0"]


@pytest.fixture(scope="module")
def xv6() -> tuple[Path, Path]:
    """(kernel, fs.img), built by `make xv6`; skip outside CI without the
    sources or the cross compiler, fail in CI."""
    if not XV6_SRC.is_dir():
        if IN_CI:
            pytest.fail(f"{XV6_SRC} is missing in CI")
        pytest.skip(f"needs the xv6-riscv sources at {XV6_SRC}; not in CI, so skipping")
    need_tool("riscv64-linux-gnu-gcc")
    r = subprocess.run(["make", "-s", "xv6"], cwd=REPO, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return BUILD / "kernel" / "kernel", BUILD / "fs.img"


def emu_session(kernel: Path, fs: Path, sends: list[str], until: str, tmp: Path,
                *extra: str, marks: list[tuple[float, int]] | None = None) -> tuple[str, dict]:
    """Run xv6 on emu with a console script; return (console, stats).
    `marks` (if given) gets (wall seconds since start, console bytes so far)
    as the output arrives."""
    n = len(list(tmp.iterdir()))
    stats, err = tmp / f"stats{n}.json", tmp / f"stderr{n}.txt"
    script = [a for s in sends for a in ("--send", s)]
    with err.open("wb") as err_file:    # a file, not a pipe nobody reads while it runs
        p = subprocess.Popen(["emu", "run", *command(kernel, fs), "-snapshot", *script,
                              "--until", until, "--stats-json", str(stats), "-q", *extra],
                             stdout=subprocess.PIPE, stderr=err_file,
                             env={**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:"
                                  f"{os.environ['PATH']}"})
        try:
            out = _read_console(p, [], "", 1800, marks)
            assert p.wait(timeout=60) == 0, err.read_text()
        finally:
            p.kill()
            p.wait()
    return out.decode(), json.loads(stats.read_text())


def _read_console(p: subprocess.Popen, sends: list[str], until: str, timeout: float,
                  marks: list[tuple[float, int]] | None) -> bytes:
    """Read `p`'s console until it ends or, once every line of `sends` has
    been typed (each when the console shows the prompt), until `until`
    appears; returns the console up to there."""
    assert p.stdout is not None
    out, mark, todo = b"", 0, list(sends)
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 1.0)
        if not ready:
            continue
        data = os.read(p.stdout.fileno(), 4096)
        if not data:
            return out
        out += data
        if marks is not None:
            marks.append((time.monotonic() - t0, len(out)))
        if todo and b"$ " in out[mark:]:
            assert p.stdin is not None
            p.stdin.write(todo.pop(0).encode() + b"\n")
            p.stdin.flush()
            mark = len(out)
        elif until and not todo and until.encode() in out[mark:]:
            return out[:out.index(until.encode(), mark) + len(until)]
    raise AssertionError(f"no {until!r} within {timeout} s:\n{out.decode()[-2000:]}")


def qemu_session(kernel: Path, fs: Path, sends: list[str], until: str,
                 timeout: float = 300, *extra: str,
                 marks: list[tuple[float, int]] | None = None) -> str:
    """The same session on QEMU (`extra`: more flags, e.g. -icount): each
    line typed once the console shows the prompt, the run ended when `until`
    appears after the last one. `marks` as emu_session's."""
    qemu = need_tool("qemu-system-riscv64")
    p = subprocess.Popen([qemu, *command(kernel, fs), "-snapshot", *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out = _read_console(p, sends, until, timeout, marks)
        assert until.encode() in out, f"QEMU ended without {until!r}:\n{out.decode()[-2000:]}"
        return out.decode()
    finally:
        p.kill()
        p.wait()


def usertest_seconds(console: str, marks: list[tuple[float, int]]) -> dict[str, float]:
    """Wall seconds of each usertests test ("test NAME: " to its "OK"), from
    the arrival times `marks` of the console's bytes."""
    def arrived(offset: int) -> float:
        return next(t for t, n in marks if n >= offset)
    return {m.group(1): arrived(m.end()) - arrived(m.start() + 1)
            for m in re.finditer(r"test (\w+): (?:(?!test \w+: ).)*?OK", console, re.S)}


SESSION = ["ls", "echo hi | wc", "cat README | grep -c xv6", "mkdir d", "ln README d/r",
           "ls d", "rm d/r", "forktest"]


PURE_TOO_SLOW = pytest.mark.skipif(
    twins.pure_forced(), reason="EMU_PURE=1: xv6's boot is ~450 M instructions, most of an "
    "hour on the pure block budget; make test runs it (and the pure Sv39 walker with it)")


@PURE_TOO_SLOW
def test_xv6_boots_and_runs_programs_as_on_qemu_and_twice_the_same(xv6, tmp_path):
    kernel, fs = xv6
    out, stats = emu_session(kernel, fs, SESSION, "$ ", tmp_path)
    assert "xv6 kernel is booting" in out and "init: starting sh" in out
    assert "\nREADME         2 2 2305\n" in out and "\n1 1 3 \n" in out
    assert "fork test OK" in out
    assert stats["exit_status"] == 0 and stats["interrupts"]["software"] > 0
    assert stats["interrupts"]["m_timer"] >= stats["interrupts"]["software"]
    again, stats2 = emu_session(kernel, fs, SESSION, "$ ", tmp_path)
    assert again == out and stats2["instructions"] == stats["instructions"]
    assert qemu_session(kernel, fs, SESSION, "$ ") == out


@PURE_TOO_SLOW
def test_emus_clock_is_qemus_icount_shift0_sleep_off(xv6, tmp_path):
    """emu's default clock is QEMU's -icount shift=0,sleep=off (one
    instruction per virtual ns, idle time jumping to the next deadline):
    the flag changes nothing in emu's run, and QEMU with it prints the
    same session. (The benchmark compares the two at that clock.)"""
    kernel, fs = xv6
    out, stats = emu_session(kernel, fs, ["echo hi | wc"], "$ ", tmp_path)
    flagged, stats2 = emu_session(kernel, fs, ["echo hi | wc"], "$ ", tmp_path,
                                  "-icount", "shift=0,sleep=off")
    assert flagged == out and stats2["instructions"] == stats["instructions"]
    assert stats2["virtual_ns"] == stats["virtual_ns"] and stats2["clock"]["mode"] == "virtual"
    assert qemu_session(kernel, fs, ["echo hi | wc"], "$ ", 300,
                        "-icount", "shift=0,sleep=off") == out


def test_usertest_seconds_reads_each_test_from_the_arrival_times():
    console = ("usertests starting\ntest copyin: OK\ntest preempt: kill... wait... OK\n"
               "test sbrkfail: \nsome output\nOK\n")
    first_ok = console.index("OK") + 2
    marks = [(0.5, 19), (1.0, 30), (1.75, first_ok), (2.0, 50), (4.0, 66), (4.5, 75),
             (7.0, len(console))]
    # a test starts when its first byte arrives and ends with the bytes of its OK
    # (and its OK may come lines later)
    assert usertest_seconds(console, marks) == {"copyin": 0.75, "preempt": 2.5, "sbrkfail": 2.5}


@PURE_TOO_SLOW
def test_xv6_on_the_pure_sv39_twin(xv6, tmp_path):
    """The boot and a few programs with the pure Sv39 walker
    (the block budget compiled: xv6 boots through 450 M instructions)."""
    kernel, fs = xv6
    out, stats = emu_session(kernel, fs, ["echo hi | wc", "ls d"], "$ ", tmp_path,
                             "--mmu", "python")
    assert "\n1 1 3 \n" in out and "ls: cannot open d" in out
    assert stats["mmu"] == "python"


@PURE_TOO_SLOW
@pytest.mark.skipif(os.environ.get("EMU_XV6_USERTESTS") != "1",
                    reason="xv6's usertests take minutes: `make xv6-usertests` (.ci/run) runs it")
def test_xv6_usertests_pass(xv6, tmp_path):
    kernel, fs = xv6
    out, stats = emu_session(kernel, fs, ["usertests -q"], "ALL TESTS PASSED", tmp_path)
    assert "ALL TESTS PASSED" in out and "FAILED" not in out, out[-3000:]


@PURE_TOO_SLOW
def test_real_gdb_on_xv6_breaks_steps_compressed_code_and_reads_m_mode_csrs(xv6, tmp_path):
    """gdb-multiarch on xv6's own ELF (double-float ABI: the stub must
    describe the FPU), as docs/guests.md shows: break usertrap, bt, x/i,
    stepi over 2-byte instructions, an M-mode CSR."""
    import socket

    gdb = need_tool("gdb-multiarch")
    kernel, fs = xv6
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu_p = subprocess.Popen(["emu", "run", *command(kernel, fs), "-snapshot", "-S", "-gdb",
                              f"tcp::{port}", "-q"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE,
                             env={**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:"
                                  f"{os.environ['PATH']}"})
    try:
        time.sleep(1.5)
        r = subprocess.run([gdb, "-batch", "-nx", str(kernel), "-ex", "set confirm off",
                            "-ex", f"target remote :{port}", "-ex", "b usertrap", "-ex", "c",
                            "-ex", "bt 1", "-ex", "x/2i $pc", "-ex", "stepi", "-ex", "p $pc",
                            "-ex", "p/x $mtvec", "-ex", "kill"],
                           capture_output=True, text=True, timeout=120, check=False)
    finally:
        emu_p.kill()
        emu_p.wait()
    out = r.stdout
    assert "Breakpoint 1, usertrap () at kernel/trap.c" in out, out + r.stderr
    assert "#0  usertrap () at kernel/trap.c" in out
    assert re.search(r"=> 0x[0-9a-f]+ <usertrap>:\tadd\tsp,sp,-32", out), out
    # one stepi over a compressed instruction moves pc by 2
    start = int(re.search(r"=> (0x[0-9a-f]+) <usertrap>", out).group(1), 16)
    assert f"= (void (*)()) {start + 2:#x} <usertrap+2>" in out, out
    assert re.search(r"\$\d+ = 0x8000[0-9a-f]{4}\n", out), out         # mtvec: timervec
