"""Our kernel on QEMU's virt board, the reference machine: booted by OpenSBI
(QEMU's own, and Debian's fw_dynamic), it finds everything in QEMU's device
tree, runs its in-kernel tests (the network ones skipped with the reason:
QEMU has no eNIC), the demo, and the swap demo's clear refusal to run.

Each boot is qemu-system-riscv64 as a subprocess with a time limit; the
console is its stdout. OpenSBI 1.1 powers off with status 0 whatever the
kernel asks, so results are read from the console, not the exit status.
Skipped, saying why, outside CI when qemu-system-riscv64 (Debian's
qemu-system-misc) is missing; a failure in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import IN_CI, REPO

QEMU = "qemu-system-riscv64"
DEBIAN_OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
TIME_LIMIT = 120   # seconds per boot; a whole `-append test` run takes about 1 s here
KTEST_SRC = (REPO / "guest" / "kernel" / "ktest.c").read_text()
KTEST_NAMES = re.findall(r'^\s*\{"(\w+)", t_\w+(?:, \w+)?\},', KTEST_SRC, re.M)
# The tests that need the eNIC (the runner brings up the NIC and swap first).
NET_TESTS = re.findall(r'^\s*\{"(\w+)", t_\w+, NEEDS_SWAP\},', KTEST_SRC, re.M)
RESULT = re.compile(r"^(PASS|FAIL|SKIP) ([^\s:]+)(?:: ([^\r\n]*))?\r?$", re.M)
NO_ENIC = "no eNIC in the device tree"
FIRMWARES = ["qemu-opensbi", "debian-opensbi"]


def qemu_or_skip() -> str:
    """Path of qemu-system-riscv64; skip (outside CI) or fail (in CI) without it."""
    path = shutil.which(QEMU)
    if path is None:
        msg = f"needs {QEMU} (Debian: apt-get install qemu-system-misc)"
        if IN_CI:
            pytest.fail(f"{msg}: CI must install it")
        pytest.skip(f"{msg}; not in CI, so skipping")
    return path


def boot(kernel: str, firmware: str = "qemu-opensbi", append: str | None = None,
         mem: str = "64M", dtb: Path | None = None) -> str:
    """Boot `kernel` on QEMU virt with one hart and return its console
    (stdout) once QEMU exits. `firmware` is QEMU's bundled OpenSBI or
    Debian's fw_dynamic (skipped outside CI if that is not installed);
    `dtb` replaces QEMU's device tree."""
    cmd = [qemu_or_skip(), "-machine", "virt", "-m", mem, "-smp", "1", "-nographic"]
    if dtb is not None:
        cmd += ["-dtb", str(dtb)]
    if firmware == "debian-opensbi":
        if not DEBIAN_OPENSBI.exists():
            if IN_CI:
                pytest.fail(f"{DEBIAN_OPENSBI} missing: CI must install opensbi")
            pytest.skip(f"needs {DEBIAN_OPENSBI} (apt-get install opensbi); not in CI")
        cmd += ["-bios", str(DEBIAN_OPENSBI)]
    cmd += ["-kernel", kernel]
    if append is not None:
        cmd += ["-append", append]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIME_LIMIT, env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        pytest.fail(f"QEMU still running after {TIME_LIMIT} s: {' '.join(cmd)}\n{out[-3000:]}")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr.decode()}"
    return out


def in_order(out: str, lines: list[str]) -> None:
    """Assert each of `lines` appears in `out`, each after the one before."""
    pos = 0
    for line in lines:
        at = out.find(line, pos)
        assert at >= 0, f"missing {line!r} after offset {pos} in:\n{out}"
        pos = at + len(line)


@pytest.fixture(scope="module")
def ktest_run(kernel) -> Callable[[str], str]:
    """firmware -> the console of one `-append test` boot (once per module)."""
    runs: dict[str, str] = {}

    def get(firmware: str) -> str:
        if firmware not in runs:
            runs[firmware] = boot(kernel, firmware, append="test")
        return runs[firmware]

    return get


def test_the_table_has_network_tests():
    assert NET_TESTS and set(NET_TESTS) < set(KTEST_NAMES)


@pytest.mark.parametrize("firmware", FIRMWARES)
@pytest.mark.parametrize("name", KTEST_NAMES)
def test_in_kernel_on_qemu(ktest_run, firmware, name):
    """Every test runs once: the network ones are skipped with the reason,
    every other one passes."""
    lines = [(s, why) for s, n, why in RESULT.findall(ktest_run(firmware)) if n == name]
    assert len(lines) == 1, f"test {name!r} reported {len(lines)} times"
    status, why = lines[0]
    if name in NET_TESTS:
        assert (status, why) == ("SKIP", NO_ENIC)
    else:
        assert status == "PASS", f"{status} {name}: {why}"


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_ktest_runs_to_its_end_on_qemu(ktest_run, firmware):
    out = ktest_run(firmware)
    assert [n for _, n, _ in RESULT.findall(out)] == KTEST_NAMES
    passed = len(KTEST_NAMES) - len(NET_TESTS)
    assert f"ktest: {passed} passed, 0 failed, {len(NET_TESTS)} skipped" in out


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_boot_reads_qemus_device_tree(ktest_run, firmware):
    """RAM, bootargs, timebase, UART, PLIC (96 sources, S-mode context 1),
    no eNIC, and the reserved memory (the tree itself; OpenSBI's region)."""
    in_order(ktest_run(firmware), [
        "emu kernel: hart 0, RAM 0x0000000080000000 + 64 MiB, SBI v",
        "dt: timebase 10000000 Hz; uart 0x10000000 irq 10; plic 0xc000000, 96 sources, "
        "S context 1",
        "dt: no eNIC",
        "dt: reserved 0x83e00000 + 0x",   # QEMU puts the tree in the last 2 MiB of RAM
        "dt: reserved 0x80000000 + 0x",   # OpenSBI's /reserved-memory
        "cmdline: 'test'",
    ])


def test_memory_size_and_bootargs_come_from_the_tree(kernel):
    out = boot(kernel, append="init=hello from the tree", mem="128M")
    in_order(out, ["RAM 0x0000000080000000 + 128 MiB",
                   "cmdline: 'init=hello from the tree'",
                   "kalloc: ", "of 32768 pages free",
                   "hello: hello from pid 2 from the tree",
                   "init: exited with status 0"])


def test_no_bootargs_is_an_empty_command_line(kernel):
    out = boot(kernel)
    in_order(out, ["cmdline: ''", "init: demo done", "boot: all good, powering off"])


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_demo_on_qemu(kernel, firmware):
    """The demo runs whole without a network, saying there is none."""
    out = boot(kernel, firmware, append="init=demo")
    in_order(out, [
        "vm: Sv39 on",
        f"net: {NO_ENIC}",
        "boot: starting init demo",
        "hello: hello from pid 2 world",
        "forktest: ok, 3 children",
        "memtouch: 64 pages touched and verified",
        "pid 8 (segv): segfault at 0x0 cause 13",
        "init: segv was killed; the kernel and init carry on",
        "init: demo done",
        "init: exited with status 0",
        "boot: all good, powering off",
    ])
    assert "swap: off (no network)" in out


def test_swap_demo_says_it_cannot_swap(kernel):
    """No eNIC, no swap: the swap demo ends at once with status 6, and the
    machine powers off (OpenSBI refuses emu's exit-status reason; the
    kernel falls back to "system failure")."""
    out = boot(kernel, append="init=swapdemo")
    in_order(out, [
        "swap: off (no network)",
        "init: swap demo: no swap device (no eNIC in the device tree, or swap=off), "
        "cannot swap; exit status 6",
        "init: exited with status 6",
        "boot: init failed, powering off",
    ])
    assert "memhog" not in out


def test_a_tree_without_what_the_kernel_needs_is_a_panic_naming_it(kernel, tmp_path):
    """QEMU's own tree with the PLIC's S-mode entry (cause 9) made cause 5:
    the kernel stops at once, saying why, through the SBI console (the
    UART is not known yet)."""
    qemu = qemu_or_skip()
    dumped = tmp_path / "virt.dtb"
    subprocess.run([qemu, "-machine", f"virt,dumpdtb={dumped}", "-m", "64M", "-smp", "1",
                    "-nographic"], check=True, capture_output=True, timeout=TIME_LIMIT)
    blob = dumped.read_bytes()
    # interrupts-extended = <&cpu0_intc 11 &cpu0_intc 9> (phandle 2: the hart's controller)
    s_entry = bytes.fromhex("00000002" "0000000b" "00000002" "00000009")
    assert blob.count(s_entry) == 1
    patched = tmp_path / "no-s-context.dtb"
    patched.write_bytes(blob.replace(s_entry, s_entry[:-1] + b"\x05"))
    out = boot(kernel, append="test", dtb=patched)
    in_order(out, ["emu: hello from S-mode through the SBI console",
                   "panic: platform: the PLIC has no S-mode context for this hart"])
    assert "emu kernel:" not in out and "PASS" not in out


@pytest.mark.slow
def test_debian_opensbi_boots_our_kernel_on_emu_to_its_whole_test_table(kernel):
    """The same fw_dynamic QEMU's tests use, as emu's -bios: OpenSBI runs in
    M-mode on emu's virt board and hands over to the kernel in S-mode, which
    passes every test - the network ones too, since emu's tree has the eNIC."""
    if not DEBIAN_OPENSBI.exists():
        if IN_CI:
            pytest.fail(f"{DEBIAN_OPENSBI} missing: CI must install opensbi")
        pytest.skip(f"needs {DEBIAN_OPENSBI} (apt-get install opensbi); not in CI")
    r = subprocess.run([sys.executable, "-m", "emu", "run", "-bios", str(DEBIAN_OPENSBI),
                        "-kernel", kernel, "-m", "64M", "-append", "test", "-q"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode() + out[-3000:]
    assert "OpenSBI v" in out and "Domain0 Next Mode         : S-mode" in out
    results = RESULT.findall(out)
    assert [n for _, n, _ in results] == KTEST_NAMES
    assert all(s == "PASS" for s, _, _ in results), [r for r in results if r[0] != "PASS"]
