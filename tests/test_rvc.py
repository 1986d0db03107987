"""Compressed instructions (RV64GC) and the instruction count: blocks of
mixed 2- and 4-byte instructions count what they hold, a fault mid-block
uncounts exactly the instructions that did not retire, a one-instruction
compressed loop still ends at --max-insns - and an interrupt unicorn takes
by itself (a mip bit software wrote) is seen, counted and logged."""

from __future__ import annotations

import pytest

from emu.core import isa
from tests.conftest import IMPLS
from tests.conftest import boot as boot_machine

MLINK = """
OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS { . = 0x80000000; .text : { *(.text*) } . = ALIGN(8); .data : { *(.data*) } }
"""
RVC = ("-mcpu=generic_rv64+m+a+c+zicsr",)
TWINS = IMPLS          # the budget twins (the pure one only under EMU_PURE=1)

# Translated blocks: the reset vector's 6 instructions at 0x1000, then
# [c.li, c.addi, addi, c.bnez] (4 instructions, 10 bytes), then
# [c.addi, addi, c.bnez] (3 instructions, 8 bytes) per further pass, then
# [c.j] forever (1 instruction, 2 bytes).
LOOP = r"""
.section .text
.globl _start
_start:
.option rvc
    c.li s0, 10
loop:
    c.addi s0, -1
.option norvc
    addi t1, t1, 1
.option rvc
    c.bnez s0, loop
1:  c.j 1b
"""

# A load access fault after two compressed instructions: they retire, the
# load does not; the handler ends the run through the test finisher.
FAULT = r"""
.section .text
.globl _start
_start:
.option norvc
    la t1, handler
    csrw mtvec, t1
.option rvc
    c.li a0, 1
    c.li a1, 2
.option norvc
    ld a2, 0(zero)
.align 4
handler:
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
"""

# M-mode raises SSIP itself (as xv6's timervec does) and returns to S with
# SIE set: unicorn delivers the interrupt on its own, no hook called.
NATIVE = r"""
.section .text
.globl _start
_start:
    li t1, 2
    csrw mideleg, t1                # SSI to S
    csrw mie, t1                    # SSIE
    la t1, strap
    csrw stvec, t1
    li t1, 0x1800
    csrc mstatus, t1
    li t1, 0x0802                   # MPP = S, SIE
    csrs mstatus, t1
    li t1, -1                       # PMP: all memory to S and U (as xv6 and
    csrw pmpaddr0, t1               # OpenSBI do; without an entry QEMU 7.2
    li t1, 0x1f                     # denies S everything)
    csrw pmpcfg0, t1
    la t1, smode
    csrw mepc, t1
    li t1, 2
    csrs mip, t1                    # SSIP, pending from now on
    mret
smode:
    j smode                         # the interrupt comes before this runs twice
.align 4
strap:
    csrr t2, scause
    li t3, (1 << 63) | 1
    bne t2, t3, fail
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
fail:
    li t0, 0x100000
    li t1, 0x13333                  # FAIL, code 1
    sw t1, 0(t0)
2:  j 2b
"""


@pytest.mark.parametrize("budget", TWINS)
def test_mixed_blocks_count_what_they_hold(asm, budget):
    elf = asm(LOOP, ld=MLINK, extra=RVC)
    m = boot_machine(elf, bios="none", budget=budget, max_insns=20)
    # 6 + 4 + 3k >= 20 first at k = 4: the hook stops before the 7th block
    # (counted as size / 4 it would be 6 + 2 + 2k, stopping at k = 6)
    assert m.exit_status == 124 and m.icount == 22
    assert m.cpu.reg("t1") == 5 and m.cpu.reg("s0") == 5


@pytest.mark.parametrize("budget", TWINS)
def test_a_one_instruction_compressed_loop_ends_at_max_insns(asm, budget):
    """c.j . is a 2-byte block: counted as 0 (size / 4) it would never stop."""
    elf = asm(LOOP, ld=MLINK, extra=RVC)
    m = boot_machine(elf, bios="none", budget=budget, max_insns=100)
    assert m.exit_status == 124 and m.icount == 100
    assert m.cpu.reg("t1") == 10 and m.cpu.reg("s0") == 0


@pytest.mark.parametrize("budget", TWINS)
def test_a_fault_uncounts_only_what_did_not_retire(asm, budget):
    elf = asm(FAULT, ld=MLINK, extra=RVC)
    m = boot_machine(elf, bios="none", budget=budget, max_insns=1000)
    assert m.exit_status == 0, m.stop_reason
    assert m.stats.traps == {isa.CAUSE_LOAD_ACCESS: 1}
    # the reset vector's 6 + [auipc, addi, csrw] 3 + [c.li, c.li] 2 (the ld
    # faulted) + the handler's block [lui, lui, addiw, sw, j] 5, counted when
    # it starts
    assert m.icount == 16


@pytest.mark.parametrize("budget", TWINS)
def test_an_interrupt_unicorn_takes_itself_is_counted_and_logged(asm, budget, tmp_path):
    elf = asm(NATIVE, ld=MLINK)
    log = tmp_path / "int.log"
    m = boot_machine(elf, bios="none", budget=budget, max_insns=10_000, debug=("int",),
                     debug_file=str(log))
    assert m.exit_status == 0, m.stop_reason           # the S handler saw scause = SSI
    assert m.stats.interrupts == {isa.IRQ_S_SOFT: 1}
    assert "cause:0000000000000001" in log.read_text() and "s_software" in log.read_text()


def test_the_debugger_disassembles_compressed_code_with_targets(asm):
    from elftools.elf.elffile import ELFFile

    from emu.debug.disasm import decode, is_call

    elf = asm(LOOP, ld=MLINK, extra=RVC)
    with open(elf, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code, base = text.data(), text["sh_addr"]
    out, a = [], base
    while a < base + len(code):
        ins = decode(a, int.from_bytes(code[a - base:a - base + 4].ljust(4, b"\0"), "little"))
        out.append((ins.mnemonic, ins.size, ins.target))
        a += ins.size
    loop = base + 2
    assert out == [("c.li", 2, None), ("c.addi", 2, None), ("addi", 4, None),
                   ("c.bnez", 2, loop), ("c.j", 2, base + 10)]
    assert is_call(0x9082) and not is_call(0x8082)       # c.jalr ra vs c.jr ra (ret)


def test_compressed_loads_and_stores_give_the_exact_fault_address(asm, tmp_path):
    """stval of a page fault is rs1 + offset, for the compressed forms too
    (xv6 is full of c.ld/c.sd): checked against the assembler's encodings."""
    from elftools.elf.elffile import ELFFile

    from emu.core.isa import access_address

    src = ("_start:\n c.ld a0, 16(a1)\n c.sd a2, 24(s1)\n c.ldsp ra, 40(sp)\n"
           " c.sdsp s0, 48(sp)\n c.lw a3, 4(a4)\n c.sw a3, 8(a4)\n c.lwsp a0, 12(sp)\n"
           " c.swsp a0, 20(sp)\n c.fld fa0, 136(a1)\n c.fsdsp fs0, 264(sp)\n c.addi a0, 1\n")
    elf = asm(".globl _start\n.option rvc\n" + src, ld=MLINK,
              extra=("-mcpu=generic_rv64+m+a+f+d+c+zicsr",))
    with open(elf, "rb") as f:
        code = ELFFile(f).get_section_by_name(".text").data()
    regs = {n: 0x1000 * n for n in range(32)}
    got = [access_address(int.from_bytes(code[i:i + 2], "little"), regs.__getitem__)
           for i in range(0, len(code), 2)]
    want = [(11, 16), (9, 24), (2, 40), (2, 48), (14, 4), (14, 8), (2, 12), (2, 20),
            (11, 136), (2, 264)]
    assert got == [regs[r] + off for r, off in want] + [None]
