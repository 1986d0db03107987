"""The guest kernel boots to a clean shutdown on each MMU, deterministically:
SBI and UART output, Sv39 on, timer interrupts, U-mode system calls and
page faults the kernel resolves (the default demo; tests/test_kernel.py
tests the kernel itself)."""

from __future__ import annotations

import pytest

from emu.machine.devicetree import fdt_address
from emu.tools import report
from tests.conftest import IMPLS, boot

EXPECTED_LINES = [
    b"emu: hello from S-mode through the SBI console",   # SBI legacy putchar
    b"emu kernel: hart 0",                               # the UART from here on
    b"vm: Sv39 on, satp 0x80000000000",
    b"boot: starting init",
    b"hello: hello from pid 2",                          # a U-mode write() system call
    b"memtouch: 64 pages touched and verified",          # demand-zero page faults
    b"init: exited with status 0",
    b"boot: all good, powering off",
]


@pytest.mark.parametrize("mmu", IMPLS)
def test_default_guest_boots_and_shuts_down_cleanly(kernel, mmu):
    m = boot(kernel, mmu=mmu)
    assert m.exit_status == 0, m.stop_reason + m.console.decode(errors="replace")
    pos = 0
    for line in EXPECTED_LINES:
        at = m.console.find(line, pos)
        assert at >= 0, f"missing {line!r} in console:\n{m.console.decode()}"
        pos = at
    st = report.collect(m)
    assert st["mmu"] == mmu
    assert m.cpu.csr("satp") >> 60 == 8   # still Sv39 at shutdown
    assert st["traps"]["ecall_u"] > 10
    # U-mode page faults, all resolved but the demo's one deliberate segfault.
    assert st["page_faults"]["store"] >= 64 and st["page_faults"]["fetch"] >= 1
    assert m.console.count(b"segfault at") == 1
    assert st["interrupts"]["timer"] >= 2
    assert st["tlb_fills"] > 10


def test_same_flags_same_run(kernel):
    a, b = boot(kernel, mmu="python"), boot(kernel, mmu="python")
    sa, sb = report.collect(a), report.collect(b)
    for s in (sa, sb):
        for key in report.HOST_DEPENDENT:      # docs/stats.md
            s.pop(key)
    assert a.console == b.console
    assert sa == sb


@pytest.mark.skipif(len(IMPLS) < 2, reason="EMU_PURE=1: only the pure twins are loaded")
def test_mmu_twins_give_the_same_run(kernel):
    a, b = boot(kernel, mmu="python"), boot(kernel, mmu="fast")
    assert a.console == b.console
    assert a.icount == b.icount
    assert a.stats.traps == b.stats.traps and a.stats.page_faults == b.stats.page_faults
    assert a.stats.interrupts == b.stats.interrupts


@pytest.mark.skipif(len(IMPLS) < 2, reason="EMU_PURE=1: only the pure twins are loaded")
def test_budget_twins_count_the_same_instructions(kernel):
    """Differential gate of the block-budget twin: identical instruction
    counts at every trap of a full boot."""
    seen = {}
    for impl in ("python", "fast"):
        from emu.machine.config import MachineConfig
        from emu.machine.machine import Machine
        m = Machine(MachineConfig(kernel=kernel, budget=impl, mmu="python"))
        log = seen.setdefault(impl, [])
        m.on_trap.append(lambda c, t, e, i, m=m, log=log: log.append((m.icount, c, e, i)))
        m.run()
        assert m.cpu.budget_impl == impl
        log.append((m.icount, m.now()))
    assert seen["python"] == seen["fast"]
    assert len(seen["python"]) > 5


def test_the_kernel_takes_ram_cmdline_and_devices_from_the_device_tree(kernel):
    """-bios default hands the kernel QEMU's a0/a1: the hart id and a tree
    at QEMU 7.2's address, whose RAM, bootargs, timebase and devices the
    kernel reports as it found them."""
    m = boot(kernel, append="hello=world", ram_size=32 << 20)
    assert m.exit_status == 0
    dtb_size = int.from_bytes(m.mem.read(m.fdt + 4, 4), "big")
    assert m.mem.read(m.fdt, 4) == bytes.fromhex("d00dfeed")
    assert m.fdt == fdt_address(m.mem.base, 32 << 20, dtb_size) == 0x81e0_0000
    assert b"cmdline: 'hello=world'" in m.console
    assert b"dt: timebase 10000000 Hz; uart 0x10000000 irq 10; plic 0xc000000, 96 sources, " \
        b"S context 1" in m.console
    assert b"dt: eNIC 0x4000000 irq 64" in m.console
    assert f"dt: reserved 0x{m.fdt:x} + 0x{dtb_size:x}".encode() in m.console
    assert b"param: unknown key 'hello' (value 'world'), ignored" in m.console
    assert b"RAM 0x0000000080000000 + 32 MiB" in m.console


def test_guest_panic_gives_nonzero_status(kernel):
    m = boot(kernel, append="panic")
    assert m.exit_status == 1
    assert b"panic: main: panic requested" in m.console
