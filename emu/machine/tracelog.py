"""The -d log (QEMU's -d/-D): what happened inside the machine, by topic,
to -D FILE or stderr. `-d help` lists the topics.

Topics follow QEMU's meanings (util/log.c) and, where QEMU has a fixed line
format, its format, so that a log from emu reads like one from
`qemu-system-riscv64 -d ...`:

- in_asm: the guest code of each translated block, at its first run
  ("IN: symbol", then one line per instruction);
- exec: a line before each executed block ("Trace 0: ... [pc] symbol");
- cpu: the registers before each executed block;
- int: every trap taken, in target/riscv's format
  ("riscv_cpu_do_interrupt: hart:0, async:A, cause:..., epc:..., tval:...,
  desc=NAME");
- mmu: every page or access fault the Sv39 walker raised, with the exact
  address;
- guest_errors: the guest did something invalid (a register no device
  has, an access outside RAM and the devices, a bad completion);
- unimp: the guest used something emu does not implement (an SBI call, a
  register feature);
- sbi (emu's own): every SBI call and its result.

in_asm, exec and cpu install a Python block hook: like QEMU's, they are
slow ("lots of logs"); the others cost nothing when off.

Layer: machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO

import unicorn as U

# name -> help, in the order `-d help` prints them (QEMU's words where QEMU
# has the topic).
TOPICS: dict[str, str] = {
    "in_asm": "show target assembly code for each compiled TB",
    "int": "show interrupts/exceptions in short format",
    "exec": "show trace before each executed TB (lots of logs)",
    "cpu": "show CPU registers before entering a TB (lots of logs)",
    "mmu": "log MMU-related activities",
    "unimp": "log unimplemented functionality",
    "guest_errors": "log when the guest OS does something invalid (eg accessing a "
                    "non-existent register)",
    "sbi": "log every SBI call and its result (emu's own)",
}
# riscv_excp_names / riscv_intr_names of QEMU's target/riscv/cpu.c.
EXCP_NAMES = ("misaligned_fetch", "fault_fetch", "illegal_instruction", "breakpoint",
              "misaligned_load", "fault_load", "misaligned_store", "fault_store",
              "user_ecall", "supervisor_ecall", "hypervisor_ecall", "machine_ecall",
              "exec_page_fault", "load_page_fault", "reserved", "store_page_fault")
INTR_NAMES = ("u_software", "s_software", "vs_software", "m_software", "u_timer", "s_timer",
              "vs_timer", "m_timer", "u_external", "s_external", "vs_external", "m_external")


def help_text() -> str:
    """What `-d help` prints."""
    return "Log items (comma separated):\n" + "".join(
        f"{name:<15} {text}\n" for name, text in TOPICS.items())


def trap_line(cause: int, interrupt: bool, epc: int, tval: int) -> str:
    """One `int` line, as QEMU's riscv_cpu_do_interrupt logs it."""
    names = INTR_NAMES if interrupt else EXCP_NAMES
    desc = names[cause] if cause < len(names) else "reserved"
    return (f"riscv_cpu_do_interrupt: hart:0, async:{int(interrupt)}, cause:{cause:016x}, "
            f"epc:0x{epc:016x}, tval:0x{tval & (1 << 64) - 1:016x}, desc={desc}")


class TraceLog:
    """Writes lines for the enabled `topics`; `now()` stamps emu's own lines."""

    def __init__(self, topics: tuple[str, ...], path: str | None,
                 now: Callable[[], int]) -> None:
        self.topics = topics
        self.now = now
        self.out: IO[str] | None = None
        if topics:
            self.out = open(path, "w") if path else sys.stderr
        self._seen: set[tuple[int, int]] = set()
        self._cs = None                   # a capstone.Cs once -d in_asm needs one

    def enabled(self, topic: str) -> bool:
        """True when `topic` is being logged."""
        return self.out is not None and topic in self.topics

    def __call__(self, topic: str, msg: str) -> None:
        """Write a line for `topic` if that topic is enabled."""
        if self.out is not None and topic in self.topics:
            self.out.write(f"[{self.now():>14}ns] {topic}: {msg}\n")

    def raw(self, topic: str, text: str) -> None:
        """Write `text` (QEMU's own format, no stamp) if `topic` is enabled."""
        if self.out is not None and topic in self.topics:
            self.out.write(text if text.endswith("\n") else text + "\n")

    def trap(self, cause: int, interrupt: bool, epc: int, tval: int) -> None:
        """The `int` line of one trap."""
        if self.enabled("int"):
            self.raw("int", trap_line(cause, interrupt, epc, tval))

    # -- in_asm / exec / cpu -------------------------------------------------
    def install(self, uc: U.Uc, read_code: Callable[[int, int], bytes | None],
                symbol: Callable[[int], str], regs: Callable[[], str]) -> None:
        """Add the block hook that in_asm, exec and cpu need (nothing when
        none of them is on). `read_code(pc, size)` gives the block's bytes,
        `symbol(pc)` its name, `regs()` the register dump."""
        if not any(t in self.topics for t in ("in_asm", "exec", "cpu")):
            return
        import capstone  # only -d in_asm disassembles; an import costs ~30 ms
        self._cs = capstone.Cs(capstone.CS_ARCH_RISCV,
                               capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)

        def on_block(uc_: U.Uc, pc: int, size: int, _user: object) -> None:
            priv = uc_.reg_read(U.riscv_const.UC_RISCV_REG_PRIV)
            if self.enabled("in_asm") and (pc, priv) not in self._seen:
                self._seen.add((pc, priv))
                self._in_asm(pc, read_code(pc, size), symbol(pc))
            if self.enabled("exec"):
                self.raw("exec", f"Trace 0: 0x0 [00000000/{pc:016x}/{priv:08x}/00000000] "
                         f"{symbol(pc)}")
            if self.enabled("cpu"):
                self.raw("cpu", regs())

        uc.hook_add(U.UC_HOOK_BLOCK, on_block)

    def _in_asm(self, pc: int, code: bytes | None, name: str) -> None:
        assert self._cs is not None
        lines = ["----------------", f"IN: {name}"]
        if code is None:
            lines.append(f"0x{pc:016x}:  (not readable)")
        else:
            for ins in self._cs.disasm(code, pc):
                raw = ins.bytes[::-1].hex()
                lines.append(f"0x{ins.address:016x}:  {raw:<18}{ins.mnemonic:<16}{ins.op_str}")
        self.raw("in_asm", "\n".join(lines) + "\n")

    def translations_dropped(self) -> None:
        """Translated code was flushed: in_asm shows blocks again."""
        self._seen.clear()

    def close(self) -> None:
        """Flush a -D file (stderr is left alone)."""
        if self.out is not None and self.out is not sys.stderr:
            self.out.flush()
