"""Disassembly for the debugger: capstone (RV64) plus symbols, with branch
and jump targets shown as absolute addresses `<name+off>`.

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
_CS = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64)


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: address, raw word, text and control target."""

    addr: int
    word: int
    mnemonic: str
    op_str: str
    target: int | None   # absolute target of jal / conditional branches

    @property
    def text(self) -> str:
        """`mnemonic operands`."""
        return f"{self.mnemonic} {self.op_str}".strip()


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def control_target(addr: int, word: int) -> int | None:
    """Return the absolute target of a JAL or conditional branch at `addr`,
    or None for any other instruction."""
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
    """True for JAL/JALR that link through ra (x1): a call `next` steps over."""
    op, rd = word & 0x7F, (word >> 7) & 31
    return op in (0x6F, 0x67) and rd == 1


def decode(addr: int, word: int) -> Insn:
    """Decode the 32-bit `word` at `addr`. Unknown encodings give `.word`."""
    for ins in _CS.disasm(word.to_bytes(4, "little"), addr):
        return Insn(addr, word, ins.mnemonic, ins.op_str, control_target(addr, word))
    return Insn(addr, word, ".word", f"0x{word:08x}", None)


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
