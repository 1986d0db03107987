"""Registers as gdb numbers them, and the target description (target.xml)
the stub serves through qXfer:features:read.

Numbering follows gdb's own RISC-V numbering (gdb/riscv-tdep.h): x0..x31 are
0..31, pc is 32, CSR n is 65 + n, and the virtual `priv` register is 4161
(65 + 4096), f0..f31 are 33..64 with fflags, frm and fcsr as CSRs 1..3.
The `g` packet carries only x0..x31 and pc, as QEMU's does; gdb fetches
the rest one by one with `p`. The FPU feature (org.gnu.gdb.riscv.fpu) is
described for a kernel built for a hardware-float ABI: gdb refuses a target
without it for such an ELF (xv6's: "bfd requires flen 8, but target has
flen 0"); our soft-float kernel gets none, as before. The M-mode CSRs are
described when the hart boots in M (-bios none or a firmware: xv6, OpenSBI).

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from unicorn import riscv_const as R

from emu.core.isa import GPR_NAMES

PC_REGNUM = 32
FP_BASE = 33
CSR_BASE = 65
PRIV_REGNUM = CSR_BASE + 4096
NUM_G_REGS = 33   # x0..x31, pc

# The S-mode CSRs the stub exposes (privileged spec numbers).
CSRS = {"sstatus": 0x100, "sie": 0x104, "stvec": 0x105, "scounteren": 0x106,
        "sscratch": 0x140, "sepc": 0x141, "scause": 0x142, "stval": 0x143,
        "sip": 0x144, "satp": 0x180,
        "mstatus": 0x300, "misa": 0x301, "medeleg": 0x302, "mideleg": 0x303,
        "mie": 0x304, "mtvec": 0x305, "mcounteren": 0x306, "mscratch": 0x340,
        "mepc": 0x341, "mcause": 0x342, "mtval": 0x343, "mip": 0x344, "mhartid": 0xF14}
_CSR_BY_NUM = {CSR_BASE + n: name for name, n in CSRS.items()}
# The FPU's CSRs (unprivileged spec, "F" chapter) and their unicorn ids.
FP_CSRS = {"fflags": (1, R.UC_RISCV_REG_FFLAGS), "frm": (2, R.UC_RISCV_REG_FRM),
           "fcsr": (3, R.UC_RISCV_REG_FCSR)}
_FP_CSR_BY_NUM = {CSR_BASE + n: rid for n, rid in FP_CSRS.values()}

_TYPES = {"ra": "code_ptr", "sp": "data_ptr", "gp": "data_ptr", "tp": "data_ptr"}


S_CSRS = ("sstatus", "sie", "stvec", "scounteren", "sscratch", "sepc", "scause", "stval",
          "sip", "satp")


def target_xml(fpu: bool = False, mmode: bool = False) -> str:
    """The target description: riscv:rv64 with the cpu, csr and virtual
    features; the fpu feature with `fpu`, the M-mode CSRs with `mmode`."""
    cpu = [f'    <reg name="{n}" bitsize="64" type="{_TYPES.get(n, "int")}" regnum="{i}"/>'
           for i, n in enumerate(GPR_NAMES)]
    cpu.append(f'    <reg name="pc" bitsize="64" type="code_ptr" regnum="{PC_REGNUM}"/>')
    csr = [f'    <reg name="{n}" bitsize="64" type="int" regnum="{CSR_BASE + num}" '
           'group="system"/>' for n, num in CSRS.items() if mmode or n in S_CSRS]
    fpu_regs = [f'    <reg name="f{i}" bitsize="64" type="ieee_double" regnum="{FP_BASE + i}" '
           'group="float"/>' for i in range(32)]
    fpu_regs += [f'    <reg name="{n}" bitsize="32" type="int" regnum="{CSR_BASE + num}" '
                 'group="float"/>' for n, (num, _) in FP_CSRS.items()]
    fpu_feature = (['  <feature name="org.gnu.gdb.riscv.fpu">', *fpu_regs, '  </feature>']
                   if fpu else [])
    return "\n".join([
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        '<target version="1.0">',
        '  <architecture>riscv:rv64</architecture>',
        '  <feature name="org.gnu.gdb.riscv.cpu">', *cpu, '  </feature>',
        *fpu_feature,
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
    if FP_BASE <= n < FP_BASE + 32:
        return cpu.uc.reg_read(R.UC_RISCV_REG_F0 + n - FP_BASE)
    if n in _FP_CSR_BY_NUM:
        return cpu.uc.reg_read(_FP_CSR_BY_NUM[n])
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
    if FP_BASE <= n < FP_BASE + 32:
        cpu.uc.reg_write(R.UC_RISCV_REG_F0 + n - FP_BASE, value)
        return True
    if n in _FP_CSR_BY_NUM:
        cpu.uc.reg_write(_FP_CSR_BY_NUM[n], value)
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
