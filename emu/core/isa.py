"""RISC-V facts every layer shares: trap causes, interrupt numbers, status
bits, register names, and the one decoder of the address a load, store or
AMO accesses.

Layer: core (imports nothing from emu). Numbers are the privileged spec's
(v1.12, "Machine Cause Register" and "Supervisor Cause Register" tables,
"Supervisor Status Register"); instruction fields the unprivileged spec's
(section 2.6 "Load and Store Instructions"; AMOs address memory through rs1
alone, section 8.4).
"""

from __future__ import annotations

from collections.abc import Callable

MASK64 = (1 << 64) - 1

# Exception causes (scause/mcause with the interrupt bit clear).
CAUSE_MISALIGNED_FETCH = 0
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL_INSN = 2
CAUSE_BREAKPOINT = 3
CAUSE_MISALIGNED_LOAD = 4
CAUSE_LOAD_ACCESS = 5
CAUSE_MISALIGNED_STORE = 6
CAUSE_STORE_ACCESS = 7
CAUSE_ECALL_U = 8
CAUSE_ECALL_S = 9
CAUSE_ECALL_M = 11
CAUSE_FETCH_PAGE_FAULT = 12
CAUSE_LOAD_PAGE_FAULT = 13
CAUSE_STORE_PAGE_FAULT = 15
INTERRUPT_BIT = 1 << 63
# Interrupt numbers (bit positions in sip/sie; cause with INTERRUPT_BIT set).
IRQ_S_SOFT = 1
IRQ_M_SOFT = 3
IRQ_S_TIMER = 5
IRQ_M_TIMER = 7
IRQ_S_EXT = 9
IRQ_M_EXT = 11
# Privilege levels (the PRIV register's values).
PRIV_U, PRIV_S, PRIV_M = 0, 1, 3

CAUSE_NAMES = {
    CAUSE_MISALIGNED_FETCH: "misaligned fetch",
    CAUSE_FETCH_ACCESS: "fetch access fault",
    CAUSE_ILLEGAL_INSN: "illegal instruction",
    CAUSE_BREAKPOINT: "breakpoint",
    CAUSE_MISALIGNED_LOAD: "misaligned load",
    CAUSE_LOAD_ACCESS: "load access fault",
    CAUSE_MISALIGNED_STORE: "misaligned store",
    CAUSE_STORE_ACCESS: "store access fault",
    CAUSE_ECALL_U: "ecall from U",
    CAUSE_ECALL_S: "ecall from S",
    CAUSE_ECALL_M: "ecall from M",
    CAUSE_FETCH_PAGE_FAULT: "fetch page fault",
    CAUSE_LOAD_PAGE_FAULT: "load page fault",
    CAUSE_STORE_PAGE_FAULT: "store page fault",
}
INTERRUPT_NAMES = {IRQ_S_SOFT: "supervisor software", IRQ_S_TIMER: "supervisor timer",
                   IRQ_S_EXT: "supervisor external", IRQ_M_SOFT: "machine software",
                   IRQ_M_TIMER: "machine timer", IRQ_M_EXT: "machine external"}
# Interrupts taken into M-mode, highest priority first (privileged spec
# 3.1.9: MEI, MSI, MTI, SEI, SSI, STI); into S-mode: SEI, SSI, STI.
M_IRQ_PRIORITY = (IRQ_M_EXT, IRQ_M_SOFT, IRQ_M_TIMER, IRQ_S_EXT, IRQ_S_SOFT, IRQ_S_TIMER)
S_IRQ_PRIORITY = (IRQ_S_EXT, IRQ_S_SOFT, IRQ_S_TIMER)

# sstatus bits.
SSTATUS_SIE = 1 << 1
SSTATUS_SPIE = 1 << 5
SSTATUS_SPP = 1 << 8
SSTATUS_SUM = 1 << 18
SSTATUS_MXR = 1 << 19
# mstatus bits beyond sstatus's (3.1.6).
MSTATUS_MIE = 1 << 3
MSTATUS_MPIE = 1 << 7
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPRV = 1 << 17
# mip/mie bits (sip/sie are the S ones).
SIP_SSIP = 1 << IRQ_S_SOFT
SIP_STIP = 1 << IRQ_S_TIMER
SIP_SEIP = 1 << IRQ_S_EXT
MIP_MSIP = 1 << IRQ_M_SOFT
MIP_MTIP = 1 << IRQ_M_TIMER
MIP_MEIP = 1 << IRQ_M_EXT

# Whole instruction words the machine and the debugger look for.
INSN_WFI = 0x1050_0073
INSN_EBREAK = 0x0010_0073
INSN_SRET = 0x1020_0073
INSN_MRET = 0x3020_0073
CSR_TIME = 0xC01
COUNTEREN_TM = 1 << 1              # mcounteren/scounteren: time readable below


def rdtime_rd(insn: int) -> int | None:
    """The destination register if `insn` is `csrr rd, time` (csrrs rd,
    time, x0; privileged spec "Zicsr"), else None."""
    if insn & 0x7F != 0x73 or (insn >> 12) & 7 != 2 or (insn >> 15) & 31 or insn >> 20 != CSR_TIME:
        return None
    return (insn >> 7) & 31

GPR_NAMES = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
             "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
             "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
             "t3", "t4", "t5", "t6")

OP_LOAD, OP_LOAD_FP, OP_STORE, OP_STORE_FP, OP_AMO = 0x03, 0x07, 0x23, 0x27, 0x2F


def sext(v: int, bits: int) -> int:
    """Sign-extend the low `bits` bits of `v`."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _c_access(h: int) -> tuple[int, int] | None:
    """(base register, offset) of a compressed load or store (RVC, RV64:
    C.FLD C.LW C.LD C.FSD C.SW C.SD, and the sp-relative C.*SP forms), else
    None. Offsets per the unprivileged spec's "Load and Store Instructions"
    of the C chapter (scaled, zero-extended)."""
    quadrant, f3 = h & 3, h >> 13 & 7
    if quadrant == 0 and f3 in (1, 2, 3, 5, 6, 7):
        rs1 = 8 + (h >> 7 & 7)
        if f3 in (2, 6):                   # C.LW / C.SW: uimm[5:3|2|6]
            return rs1, ((h >> 10 & 7) << 3) | ((h >> 6 & 1) << 2) | ((h >> 5 & 1) << 6)
        return rs1, ((h >> 10 & 7) << 3) | ((h >> 5 & 3) << 6)   # 8-byte: uimm[5:3|7:6]
    if quadrant == 2 and f3 in (1, 3):     # C.FLDSP / C.LDSP: uimm[5], uimm[4:3|8:6]
        return 2, ((h >> 12 & 1) << 5) | ((h >> 5 & 3) << 3) | ((h >> 2 & 7) << 6)
    if quadrant == 2 and f3 == 2:          # C.LWSP: uimm[5], uimm[4:2|7:6]
        return 2, ((h >> 12 & 1) << 5) | ((h >> 4 & 7) << 2) | ((h >> 2 & 3) << 6)
    if quadrant == 2 and f3 in (5, 7):     # C.FSDSP / C.SDSP: uimm[5:3|8:6]
        return 2, ((h >> 10 & 7) << 3) | ((h >> 7 & 7) << 6)
    if quadrant == 2 and f3 == 6:          # C.SWSP: uimm[5:2|7:6]
        return 2, ((h >> 9 & 15) << 2) | ((h >> 7 & 3) << 6)
    return None


def access_address(word: int, reg: Callable[[int], int]) -> int | None:
    """Return the virtual address the load, store, FP load/store or AMO
    `word` accesses (a compressed one in its low 16 bits too), given
    `reg(n)` -> the value of xN (before the instruction ran); None for any
    other instruction."""
    if word & 3 != 3:
        c = _c_access(word & 0xFFFF)
        if c is None:
            return None
        return (reg(c[0]) + c[1]) & MASK64
    op = word & 0x7F
    rs1 = (word >> 15) & 31
    if op in (OP_LOAD, OP_LOAD_FP):        # I-type immediate
        imm = sext(word >> 20, 12)
    elif op in (OP_STORE, OP_STORE_FP):    # S-type immediate
        imm = sext(((word >> 25) << 5) | ((word >> 7) & 31), 12)
    elif op == OP_AMO:                     # AMO / LR / SC: the address is rs1
        imm = 0
    else:
        return None
    base = reg(rs1) if rs1 else 0
    return (base + imm) & MASK64


def is_amo_store(word: int) -> bool:
    """True for an AMO or SC (everything in the AMO opcode but LR): its
    faults are store/AMO faults even when the read half faults."""
    return word & 0x7F == OP_AMO and word >> 27 != 0b00010
