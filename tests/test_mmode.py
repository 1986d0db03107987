"""M-mode guests (-bios none, as xv6 boots on QEMU): the reset vector's
handover (a0 hart id, a1 the device tree, a2 fw_dynamic_info), trap
delegation between M and S, the CLINT's machine timer and software
interrupts, rdtime in M, and the test finisher ending the run."""

from __future__ import annotations

import struct

import pytest

from emu.core import isa
from emu.machine import boot
from emu.machine.devicetree import fdt_address
from tests.conftest import IMPLS
from tests.conftest import boot as boot_machine

MLINK = """
OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS { . = 0x80000000; .text : { *(.text*) } . = ALIGN(8); .data : { *(.data*) } }
"""

FINISH = r"""
.macro FINISH value
    li t0, 0x100000
    li t1, \value
    sw t1, 0(t0)
1:  j 1b
.endm
"""

HANDOVER_AND_DELEGATION = FINISH + r"""
.section .text
.globl _start
_start:
    la s1, rec
    sd a0, 0(s1)                    # hart id
    sd a1, 8(s1)                    # the device tree
    sd a2, 16(s1)                   # fw_dynamic_info
    la t1, mtrap
    csrw mtvec, t1
    li t1, (1 << 2) | (1 << 8)      # illegal instruction, ecall from U -> S
    csrw medeleg, t1
    la t1, strap
    csrw stvec, t1
    li t1, 0x1800
    csrc mstatus, t1
    li t1, 0x0800                   # MPP = S
    csrs mstatus, t1
    li t1, -1                       # PMP: all memory to S and U (as xv6 and
    csrw pmpaddr0, t1               # OpenSBI do; without an entry QEMU 7.2
    li t1, 0x1f                     # denies S everything)
    csrw pmpcfg0, t1
    la t1, smode
    csrw mepc, t1
    mret
smode:
    ecall                           # from S: to M (not delegated)
    .word 0                         # illegal: to S (delegated)
    la t1, umode
    csrw sepc, t1
    li t1, 0x100
    csrc sstatus, t1                # SPP = U
    sret
umode:
    ecall                           # from U: to S
1:  j 1b
.align 4
mtrap:
    csrr t2, mcause
    sd t2, 24(s1)
    csrr t2, mstatus
    sd t2, 32(s1)
    csrr t2, mepc
    addi t2, t2, 4
    csrw mepc, t2
    mret
.align 4
strap:
    csrr t2, scause
    ld t3, 40(s1)
    addi t3, t3, 1
    sd t3, 40(s1)
    slli t4, t3, 3
    add t4, t4, s1
    sd t2, 40(t4)
    li t5, 8
    beq t2, t5, done
    csrr t2, sepc
    addi t2, t2, 4
    csrw sepc, t2
    sret
done:
    FINISH 0x5555
.section .data
.align 3
.globl rec
rec: .space 96
"""


def _rec(m, n: int) -> list[int]:
    return list(struct.unpack(f"<{n}Q", m.mem.read(m.image.symbols.by_name["rec"], 8 * n)))


@pytest.mark.parametrize("traps", IMPLS)
def test_reset_vector_hands_over_and_traps_go_where_medeleg_says(asm, traps):
    elf = asm(HANDOVER_AND_DELEGATION, ld=MLINK)
    m = boot_machine(elf, bios="none", traps=traps, max_insns=100_000)
    assert m.exit_status == 0, m.stop_reason
    assert m.stop_reason == "guest shutdown (status 0)"
    hart, fdt, info, mcause, mstatus, n, *scauses = _rec(m, 8)
    assert hart == 0
    assert fdt == m.fdt == fdt_address(m.mem.base, m.mem.size, 4096) == 0x80e0_0000
    assert m.mem.read(fdt, 4) == bytes.fromhex("d00dfeed")
    assert info == boot.MROM_BASE + 0x28
    magic, version, next_addr, next_mode = struct.unpack(
        "<4Q", bytes(m.cpu.uc.mem_read(info, 32)))
    assert (magic, version, next_addr, next_mode) == (0x4942534F, 2, 0x8000_0000, 1)
    assert mcause == isa.CAUSE_ECALL_S
    assert (mstatus >> isa.MSTATUS_MPP_SHIFT) & 3 == isa.PRIV_S      # came from S
    assert n == 2 and scauses[:2] == [isa.CAUSE_ILLEGAL_INSN, isa.CAUSE_ECALL_U]


MACHINE_TIMER = FINISH + r"""
.section .text
.globl _start
_start:
    la s1, rec
    la t0, mtrap
    csrw mtvec, t0
    li s2, 0x2000000                # CLINT
    li t0, 0xbff8
    add s3, s2, t0                  # &mtime
    li t0, 0x4000
    add s4, s2, t0                  # &mtimecmp
    csrr t1, time                   # rdtime in M
    ld t2, 0(s3)                    # mtime through the CLINT
    sd t1, 0(s1)
    sd t2, 8(s1)
    addi t2, t2, 1000               # 100 us at 10 MHz
    sd t2, 16(s1)
    sd t2, 0(s4)
    li t0, 1 << 7
    csrs mie, t0                    # MTIE
    csrsi mstatus, 8                # MIE
1:  wfi
    ld t0, 24(s1)
    beqz t0, 1b
    li t0, 1                        # now a software interrupt through msip
    csrs mie, 8                     # MSIE
    sw t0, 0(s2)
2:  ld t0, 40(s1)
    beqz t0, 2b
    li t0, 0x30003333               # FINISHER_FAIL, code 0x3000
    li t1, 0x100000
    sw t0, 0(t1)
3:  j 3b
.align 4
mtrap:
    csrr t0, mcause
    li t1, (1 << 63) | 7
    beq t0, t1, timer
    sd t0, 40(s1)                   # the software interrupt
    sw zero, 0(s2)                  # msip = 0
    mret
timer:
    sd t0, 24(s1)
    ld t2, 0(s3)
    sd t2, 32(s1)                   # mtime at the interrupt
    li t0, -1
    sd t0, 0(s4)                    # mtimecmp = never: MTIP drops
    mret
.section .data
.align 3
.globl rec
rec: .space 64
"""


@pytest.mark.parametrize("traps", IMPLS)
def test_clint_timer_and_msip_interrupt_m_mode_and_the_finisher_fails_with_a_code(asm, traps):
    elf = asm(MACHINE_TIMER, ld=MLINK)
    m = boot_machine(elf, bios="none", traps=traps, max_insns=1_000_000)
    assert m.exit_status == 0x3000, m.stop_reason         # the finisher's code
    rdtime, mtime, cmp, mcause, at, soft = _rec(m, 6)
    assert 0 <= mtime - rdtime <= 1                       # both read the CLINT's time
    assert mcause == isa.INTERRUPT_BIT | isa.IRQ_M_TIMER
    assert cmp <= at <= cmp + 1                           # wfi skipped to the compare
    assert soft == isa.INTERRUPT_BIT | isa.IRQ_M_SOFT
    assert m.clint.fired == 1


def test_bios_none_refuses_to_share_the_kernel_place_with_no_firmware(asm, tmp_path):
    """-bios default wants a kernel above the firmware's 2 MiB; one linked at
    0x80000000 (an M-mode kernel such as xv6) is told to use -bios none."""
    from emu.machine.loader import LoadError
    elf = asm(HANDOVER_AND_DELEGATION, ld=MLINK)
    with pytest.raises(LoadError, match="needs -bios none"):
        boot_machine(elf)


STUCK = r"""
.section .text
.globl _start
_start:
    csrw mtvec, zero                # the trap vector at 0: nothing there
    .word 0                         # illegal instruction: trap to 0, fetch fault, ...
"""


@pytest.mark.parametrize("traps", IMPLS)
def test_a_hart_stuck_in_a_trap_loop_ends_the_run_with_one_line(asm, traps):
    elf = asm(STUCK, ld=MLINK)
    m = boot_machine(elf, bios="none", traps=traps, max_insns=1_000_000)
    assert m.exit_status == 126, m.stop_reason
    assert m.stop_reason.startswith("the hart is stuck: 10,000 traps in a row") \
        and "pc 0x0, M-mode" in m.stop_reason, m.stop_reason
    assert m.icount < 10
