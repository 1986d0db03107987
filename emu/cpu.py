"""The unicorn wrapper: registers, CSRs, privilege and S-mode trap entry.

Unicorn executes instructions; everything the RISC-V privileged spec says
happens *around* them for a supervisor - trap entry, interrupt delivery - is
done here, because unicorn hands exceptions to us instead of taking them.
The TLB is unicorn's (QEMU's), in UC_TLB_VIRTUAL mode, filled by our Sv39
walker (emu/mmu) through a fill hook.

Unicorn checks CSR accesses made through reg_read/reg_write against the
current privilege, so every CSR access from the host is made with PRIV
temporarily set to M (3).
"""

from __future__ import annotations

import unicorn as U
from unicorn import riscv_const as R

from emu import fastpath, platform
from emu.memory import PhysMem

UNTIL = 0  # emu_start end address: 0 means "no end" (a fetch at 0 faults first)

# sstatus bits (privileged spec, "Supervisor Status Register").
SSTATUS_SIE = 1 << 1
SSTATUS_SPIE = 1 << 5
SSTATUS_SPP = 1 << 8
SSTATUS_SUM = 1 << 18
SSTATUS_MXR = 1 << 19
# sie/sip bits.
SIP_SSIP = 1 << platform.IRQ_S_SOFT
SIP_STIP = 1 << platform.IRQ_S_TIMER
SIP_SEIP = 1 << platform.IRQ_S_EXT
# Interrupts go to S-mode (mideleg); exceptions raised by QEMU are ours anyway.
MIDELEG_S = SIP_SSIP | SIP_STIP | SIP_SEIP

GPR_NAMES = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
             "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
             "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
             "t3", "t4", "t5", "t6")
GPR_IDS = tuple(getattr(R, f"UC_RISCV_REG_X{i}") for i in range(32))
CSR_IDS = {
    "sstatus": R.UC_RISCV_REG_SSTATUS, "sie": R.UC_RISCV_REG_SIE,
    "stvec": R.UC_RISCV_REG_STVEC, "sscratch": R.UC_RISCV_REG_SSCRATCH,
    "sepc": R.UC_RISCV_REG_SEPC, "scause": R.UC_RISCV_REG_SCAUSE,
    "stval": R.UC_RISCV_REG_STVAL, "sip": R.UC_RISCV_REG_SIP,
    "satp": R.UC_RISCV_REG_SATP, "scounteren": R.UC_RISCV_REG_SCOUNTEREN,
    "mstatus": R.UC_RISCV_REG_MSTATUS, "mideleg": R.UC_RISCV_REG_MIDELEG,
    "medeleg": R.UC_RISCV_REG_MEDELEG, "mcounteren": R.UC_RISCV_REG_MCOUNTEREN,
    "mip": R.UC_RISCV_REG_MIP, "mie": R.UC_RISCV_REG_MIE,
}


def make_fill_hook(impl: str, uc: U.Uc, mem: PhysMem):
    """Return (FillHook instance, impl actually used) for `impl` python|fast|auto.

    Raises RuntimeError if "fast" is asked for and the twin is not built.
    """
    if impl in ("fast", "auto"):
        mod = fastpath.load("sv39")
        if mod is not None:
            return mod.FillHook(uc, mem.buf, mem.base, mem.size), "fast"
        if impl == "fast":
            raise RuntimeError("--mmu fast: the compiled Sv39 twin is not available")
    from emu.mmu.tlb import PyFillHook
    return PyFillHook(uc, mem.buf, mem.base, mem.size), "python"


def make_budget(impl: str, uc: U.Uc):
    """Return the block-budget counter for `impl` python|fast|auto.

    Raises RuntimeError if "fast" is asked for and the twin is not built.
    """
    if impl in ("fast", "auto"):
        mod = fastpath.load("budget")
        if mod is not None:
            return mod.BlockBudget(uc)
        if impl == "fast":
            raise RuntimeError("the compiled block-budget twin is not available")
    from emu.budget import BlockBudget
    return BlockBudget(uc)


class Cpu:
    """One RV64 hart on unicorn with our MMU installed.

    `mmu` is the fill hook (fills/faults counters, last fault), `budget` the
    instruction counter. Registers are reached by name through reg()/set_reg()
    (GPR ABI names, "pc", "priv") and csr()/set_csr().
    """

    def __init__(self, mem: PhysMem, mmu: str = "auto", budget: str = "auto") -> None:
        self.uc = U.Uc(U.UC_ARCH_RISCV, U.UC_MODE_RISCV64)
        self.uc.ctl_set_tlb_mode(U.UC_TLB_VIRTUAL)
        self.uc.mem_map_ptr(mem.base, mem.size, U.UC_PROT_ALL, mem.address)
        self.mem = mem
        self.mmu, self.mmu_impl = make_fill_hook(mmu, self.uc, mem)
        self.mmu.install()
        self.budget = make_budget(budget, self.uc)
        self.budget_impl = "python" if type(self.budget).__module__ == "emu.budget" else "fast"
        self.budget.install()
        # Interrupts are delegated to S; counters stay disabled for S/U so that
        # rdtime/rdcycle/rdinstret trap and are answered from virtual time.
        self.set_csr("mideleg", MIDELEG_S)
        self.set_csr("medeleg", 0xB3FF)
        self.set_csr("mcounteren", 0)
        self.set_csr("scounteren", 0)

    # -- registers ---------------------------------------------------------
    def reg(self, name: str) -> int:
        """Return GPR `name` (ABI or xN), "pc" or "priv"."""
        return self.uc.reg_read(_reg_id(name))

    def set_reg(self, name: str, value: int) -> None:
        """Set GPR `name`, "pc" or "priv". Writes to zero are ignored."""
        rid = _reg_id(name)
        if rid == R.UC_RISCV_REG_X0:
            return
        self.uc.reg_write(rid, value & 0xFFFF_FFFF_FFFF_FFFF)

    def gprs(self) -> list[int]:
        """Return x0..x31."""
        return [self.uc.reg_read(r) for r in GPR_IDS]

    @property
    def pc(self) -> int:
        return self.uc.reg_read(R.UC_RISCV_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(R.UC_RISCV_REG_PC, value)

    @property
    def priv(self) -> int:
        return self.uc.reg_read(R.UC_RISCV_REG_PRIV)

    @priv.setter
    def priv(self, value: int) -> None:
        self.uc.reg_write(R.UC_RISCV_REG_PRIV, value)

    def csr(self, name: str) -> int:
        """Return CSR `name` (read with M privilege, see module docstring)."""
        uc = self.uc
        p = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        v = uc.reg_read(CSR_IDS[name])
        uc.reg_write(R.UC_RISCV_REG_PRIV, p)
        return v

    def set_csr(self, name: str, value: int) -> None:
        """Write CSR `name` (with M privilege, see module docstring)."""
        uc = self.uc
        p = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        uc.reg_write(CSR_IDS[name], value & 0xFFFF_FFFF_FFFF_FFFF)
        uc.reg_write(R.UC_RISCV_REG_PRIV, p)

    def flush_tlb(self) -> None:
        """Drop every cached translation (QEMU TLB and translated blocks)."""
        self.uc.ctl(U.UC_CTL_TLB_FLUSH, U.UC_CTL_IO_WRITE)

    # -- traps -------------------------------------------------------------
    def enter_trap(self, cause: int, tval: int, epc: int, interrupt: bool = False) -> int:
        """Take a trap into S-mode as the privileged spec describes.

        scause <- cause (with the interrupt bit), stval <- tval, sepc <- epc,
        sstatus.SPP <- previous privilege, SPIE <- SIE, SIE <- 0, privilege
        <- S, pc <- stvec (BASE, or BASE + 4*cause for interrupts in vectored
        mode). Returns the new pc.
        """
        uc = self.uc
        prev = uc.reg_read(R.UC_RISCV_REG_PRIV)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 3)
        st = uc.reg_read(R.UC_RISCV_REG_SSTATUS)
        st = (st & ~SSTATUS_SPP) | (SSTATUS_SPP if prev else 0)
        st = (st & ~SSTATUS_SPIE) | (SSTATUS_SPIE if st & SSTATUS_SIE else 0)
        st &= ~SSTATUS_SIE
        uc.reg_write(R.UC_RISCV_REG_SSTATUS, st)
        uc.reg_write(R.UC_RISCV_REG_SCAUSE, (platform.INTERRUPT_BIT if interrupt else 0) | cause)
        uc.reg_write(R.UC_RISCV_REG_STVAL, tval & 0xFFFF_FFFF_FFFF_FFFF)
        uc.reg_write(R.UC_RISCV_REG_SEPC, epc)
        stvec = uc.reg_read(R.UC_RISCV_REG_STVEC)
        uc.reg_write(R.UC_RISCV_REG_PRIV, 1)
        base = stvec & ~3
        pc = base + 4 * cause if (interrupt and stvec & 3 == 1) else base
        uc.reg_write(R.UC_RISCV_REG_PC, pc)
        return pc


def _reg_id(name: str) -> int:
    if name == "pc":
        return R.UC_RISCV_REG_PC
    if name == "priv":
        return R.UC_RISCV_REG_PRIV
    if name == "fp":
        name = "s0"
    if name in GPR_NAMES:
        return GPR_IDS[GPR_NAMES.index(name)]
    if name.startswith("x") and name[1:].isdigit() and int(name[1:]) < 32:
        return GPR_IDS[int(name[1:])]
    raise KeyError(f"unknown register {name!r}")
