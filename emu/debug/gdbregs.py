"""Registers as gdb numbers them, and the target description (target.xml)
the stub serves through qXfer:features:read.

Numbering follows gdb's own RISC-V numbering (gdb/riscv-tdep.h): x0..x31 are
0..31, pc is 32, CSR n is 65 + n, and the virtual `priv` register is 4161
(65 + 4096). The `g` packet carries only x0..x31 and pc, as QEMU's does;
gdb fetches CSRs and priv one by one with `p`. There is no FPU (the guest
is RV64IMA), so the org.gnu.gdb.riscv.fpu feature is absent.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.core.isa import GPR_NAMES

PC_REGNUM = 32
CSR_BASE = 65
PRIV_REGNUM = CSR_BASE + 4096
NUM_G_REGS = 33   # x0..x31, pc

# The S-mode CSRs the stub exposes (privileged spec numbers).
CSRS = {"sstatus": 0x100, "sie": 0x104, "stvec": 0x105, "scounteren": 0x106,
        "sscratch": 0x140, "sepc": 0x141, "scause": 0x142, "stval": 0x143,
        "sip": 0x144, "satp": 0x180}
_CSR_BY_NUM = {CSR_BASE + n: name for name, n in CSRS.items()}

_TYPES = {"ra": "code_ptr", "sp": "data_ptr", "gp": "data_ptr", "tp": "data_ptr"}


def target_xml() -> str:
    """The target description: riscv:rv64 with the cpu, csr and virtual features."""
    cpu = [f'    <reg name="{n}" bitsize="64" type="{_TYPES.get(n, "int")}" regnum="{i}"/>'
           for i, n in enumerate(GPR_NAMES)]
    cpu.append(f'    <reg name="pc" bitsize="64" type="code_ptr" regnum="{PC_REGNUM}"/>')
    csr = [f'    <reg name="{n}" bitsize="64" type="int" regnum="{CSR_BASE + num}" '
           'group="system"/>' for n, num in CSRS.items()]
    return "\n".join([
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        '<target version="1.0">',
        '  <architecture>riscv:rv64</architecture>',
        '  <feature name="org.gnu.gdb.riscv.cpu">', *cpu, '  </feature>',
        '  <feature name="org.gnu.gdb.riscv.csr">', *csr, '  </feature>',
        '  <feature name="org.gnu.gdb.riscv.virtual">',
        f'    <reg name="priv" bitsize="64" type="int" regnum="{PRIV_REGNUM}" '
        'group="system"/>',
        '  </feature>',
        '</target>',
    ]) + "\n"


def read_reg(cpu, n: int) -> int | None:
    """Value of gdb register `n`, or None if there is no such register."""
    if 0 <= n < 32:
        return cpu.gprs()[n]
    if n == PC_REGNUM:
        return cpu.pc
    if n == PRIV_REGNUM:
        return cpu.priv
    name = _CSR_BY_NUM.get(n)
    return cpu.csr(name) if name else None


def write_reg(cpu, n: int, value: int) -> bool:
    """Set gdb register `n`. Returns False for an unknown register or a
    privilege other than 0 (U), 1 (S) or 3 (M)."""
    if 0 <= n < 32:
        cpu.set_reg(f"x{n}", value)
        return True
    if n == PC_REGNUM:
        cpu.pc = value
        return True
    if n == PRIV_REGNUM:
        if value not in (0, 1, 3):
            return False
        cpu.priv = value
        return True
    name = _CSR_BY_NUM.get(n)
    if name is None:
        return False
    cpu.set_csr(name, value)
    if name in ("satp", "sstatus"):
        cpu.flush_tlb()   # cached translations depend on satp and SUM/MXR
    return True


def g_values(cpu) -> list[int]:
    """x0..x31 and pc, in `g` packet order."""
    return [*cpu.gprs(), cpu.pc]
