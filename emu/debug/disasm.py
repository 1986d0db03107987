"""Disassembly for the debugger: capstone (RV64GC: 4-byte and compressed
2-byte instructions) plus symbols, with branch and jump targets shown as
absolute addresses `<name+off>`.

Capstone prints B/J-type immediates relative to the instruction; students
read absolute targets, so the few control-transfer encodings are decoded
here (RISC-V unprivileged spec, chapter 2, "Control Transfer Instructions").

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from dataclasses import dataclass

import capstone

from emu.machine.loader import Symbols

MASK64 = (1 << 64) - 1
_CS = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: address, raw word, text and control target."""

    addr: int
    word: int            # the instruction's bits (16 of them when compressed)
    mnemonic: str
    op_str: str
    target: int | None   # absolute target of jal / conditional branches
    size: int = 4        # 2 for a compressed instruction

    @property
    def text(self) -> str:
        """`mnemonic operands`."""
        return f"{self.mnemonic} {self.op_str}".strip()


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def insn_size(word: int) -> int:
    """2 if `word` (its low 16 bits) is a compressed instruction, else 4: a
    parcel whose low two bits are not 11 (unprivileged spec, "Expanded
    Instruction-Length Encoding")."""
    return 2 if word & 3 != 3 else 4


def _c_target(addr: int, h: int) -> int | None:
    """Target of C.J / C.BEQZ / C.BNEZ (RVC quadrant 1), else None."""
    if h & 3 != 1:
        return None
    f3 = h >> 13 & 7
    if f3 == 5:      # C.J: imm[11|4|9:8|10|6|7|3:1|5]
        imm = ((h >> 12 & 1) << 11) | ((h >> 11 & 1) << 4) | ((h >> 9 & 3) << 8) \
            | ((h >> 8 & 1) << 10) | ((h >> 7 & 1) << 6) | ((h >> 6 & 1) << 7) \
            | ((h >> 3 & 7) << 1) | ((h >> 2 & 1) << 5)
        return (addr + _sext(imm, 12)) & MASK64
    if f3 in (6, 7):  # C.BEQZ / C.BNEZ: imm[8|4:3] ... imm[7:6|2:1|5]
        imm = ((h >> 12 & 1) << 8) | ((h >> 10 & 3) << 3) | ((h >> 5 & 3) << 6) \
            | ((h >> 3 & 3) << 1) | ((h >> 2 & 1) << 5)
        return (addr + _sext(imm, 9)) & MASK64
    return None


def control_target(addr: int, word: int) -> int | None:
    """Return the absolute target of a JAL or conditional branch at `addr`
    (compressed ones too), or None for any other instruction."""
    if insn_size(word) == 2:
        return _c_target(addr, word & 0xFFFF)
    op = word & 0x7F
    if op == 0x6F:   # JAL: imm[20|10:1|11|19:12]
        imm = ((word >> 31) << 20) | (((word >> 12) & 0xFF) << 12) \
            | (((word >> 20) & 1) << 11) | (((word >> 21) & 0x3FF) << 1)
        return (addr + _sext(imm, 21)) & MASK64
    if op == 0x63:   # BRANCH: imm[12|10:5] ... imm[4:1|11]
        imm = ((word >> 31) << 12) | (((word >> 7) & 1) << 11) \
            | (((word >> 25) & 0x3F) << 5) | (((word >> 8) & 0xF) << 1)
        return (addr + _sext(imm, 13)) & MASK64
    return None


def is_call(word: int) -> bool:
    """True for JAL/JALR that link through ra (x1), and C.JALR (which
    always does): a call `next` steps over."""
    if insn_size(word) == 2:
        h = word & 0xFFFF
        return h & 0xF07F == 0x9002 and h >> 7 & 31 != 0     # c.jalr rs1
    op, rd = word & 0x7F, (word >> 7) & 31
    return op in (0x6F, 0x67) and rd == 1


def decode(addr: int, word: int) -> Insn:
    """Decode the instruction at `addr` whose first bytes are `word` (32
    bits read; a compressed one uses the low 16). Unknown encodings give
    `.word`/`.half`."""
    size = insn_size(word)
    if size == 2:
        word &= 0xFFFF
    for ins in _CS.disasm(word.to_bytes(size, "little"), addr):
        return Insn(addr, word, ins.mnemonic, ins.op_str, control_target(addr, word), size)
    return Insn(addr, word, ".half" if size == 2 else ".word",
                f"0x{word:0{2 * size}x}", None, size)


def format_insn(ins: Insn, symbols: Symbols, marker: str = " ") -> str:
    """One listing line: `marker 0xADDR <sym+off>:  text  [-> target <sym>]`."""
    hit = symbols.lookup(ins.addr)
    where = f" <{hit[0]}+{hit[1]}>" if hit else ""
    text = ins.text
    if ins.target is not None:
        # Replace capstone's relative immediate by the absolute target.
        ops = ins.op_str.rsplit(",", 1)
        text = (f"{ins.mnemonic} {ops[0]}, 0x{ins.target:x}" if len(ops) == 2
                else f"{ins.mnemonic} 0x{ins.target:x}")
        if symbols.lookup(ins.target):
            text += f"  <{symbols.describe(ins.target)}>"
    return f"{marker} 0x{ins.addr:x}{where}:  {text}"
