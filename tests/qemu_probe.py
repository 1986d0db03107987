"""Replay one script of MMIO accesses on QEMU's `virt` board, bare metal.

A tiny M-mode guest (C, built with the ziglang toolchain the project already
uses) interprets a script of reads, writes, polls and `mip` reads, catches
the access faults QEMU raises (its trap handler records mcause and skips the
instruction) and hands every result back through semihosting into a file -
not through the UART, which is one of the devices under test. Interrupts stay
disabled (mstatus.MIE = 0): the script watches mip instead.

The same Script replays on emu's devices in tests/test_devices_qemu.py; the
two transcripts are compared there. Needs qemu-system-riscv64 (Debian's
qemu-system-misc 7.2 is the reference).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import assemble

QEMU = shutil.which("qemu-system-riscv64")

# Script opcodes (low byte of the op word; the access size is in bits 8..15).
OP_END, OP_READ, OP_WRITE, OP_POLL, OP_MIP, OP_POLL_MIP = 0, 1, 2, 3, 4, 5

PROBE_C = r"""
typedef unsigned long u64; typedef unsigned int u32; typedef unsigned short u16;
typedef unsigned char u8;
extern const u64 script[];
extern const char outname[];
u64 results[2 * 4096];
volatile u64 fault;          /* mcause + 1 of the last access fault, set by trap */
u64 trap_save[4];

static u64 rd(u64 a, u64 s) {
  u64 v = 0;
  __asm__ volatile("fence" ::: "memory");
  if (s == 1) v = *(volatile u8 *)a;
  else if (s == 2) v = *(volatile u16 *)a;
  else if (s == 4) v = *(volatile u32 *)a;
  else v = *(volatile u64 *)a;
  __asm__ volatile("fence" ::: "memory");
  return v;
}
static void wr(u64 a, u64 s, u64 v) {
  __asm__ volatile("fence" ::: "memory");
  if (s == 1) *(volatile u8 *)a = v;
  else if (s == 2) *(volatile u16 *)a = v;
  else if (s == 4) *(volatile u32 *)a = v;
  else *(volatile u64 *)a = v;
  __asm__ volatile("fence" ::: "memory");
}
static u64 mip(void) { u64 v; __asm__ volatile("csrr %0, mip" : "=r"(v)); return v; }
extern u64 semihost(u64 op, const void *arg);
void main(void) {
  const u64 *p = script;
  u64 *r = results, n, v;
  for (;;) {
    u64 op = *p++, kind = op & 0xff, s = op >> 8;
    if (kind == 0) break;
    fault = 0;
    v = 0;
    if (kind == 1) { v = rd(p[0], s); p += 1; }
    else if (kind == 2) { wr(p[0], s, p[1]); p += 2; }
    else if (kind == 3) {
      for (n = 0; (rd(p[0], s) & p[1]) != p[2] && n < p[3]; n++) { }
      v = (rd(p[0], s) & p[1]) == p[2]; p += 4;
    } else if (kind == 4) { v = mip(); }
    else {
      for (n = 0; (mip() & p[0]) != p[1] && n < p[2]; n++) { }
      v = (mip() & p[0]) == p[1]; p += 3;
    }
    if (fault) v = 0;
    *r++ = v; *r++ = fault;
  }
  u64 name_len = 0;
  while (outname[name_len]) name_len++;
  u64 open_args[3] = {(u64)outname, 5 /* "wb" */, name_len};
  u64 fd = semihost(1, open_args);                       /* SYS_OPEN */
  u64 write_args[3] = {fd, (u64)results, (u64)((char *)r - (char *)results)};
  semihost(5, write_args);                                /* SYS_WRITE */
  semihost(2, &fd);                                       /* SYS_CLOSE */
  *(volatile u32 *)0x100000UL = 0x5555;                   /* sifive_test: pass */
  for (;;) { }
}
"""

START_S = r"""
.section .text.entry
.globl _start
_start:
  la sp, stack_top
  la t0, trap
  csrw mtvec, t0
  la t0, trap_save
  csrw mscratch, t0
  call main
1: j 1b

.text
.balign 16
.globl semihost
semihost:                  # a0 = operation, a1 = argument block; the RISC-V
  mv a1, a1                # semihosting sequence must stay uncompressed
  .balign 16
  slli x0, x0, 0x1f
  ebreak
  srai x0, x0, 7
  ret

.balign 4
trap:                      # an access fault: fault = mcause + 1, skip the access
  csrrw sp, mscratch, sp
  sd t0, 0(sp)
  sd t1, 8(sp)
  csrr t0, mcause
  addi t0, t0, 1
  la t1, fault
  sd t0, 0(t1)
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  ld t0, 0(sp)
  ld t1, 8(sp)
  csrrw sp, mscratch, sp
  mret

.bss
.balign 16
.space 8192
stack_top:
"""

LD = """
OUTPUT_ARCH("riscv")
ENTRY(_start)
SECTIONS {
  . = 0x80000000;
  .text : { *(.text.entry) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) *(.srodata .srodata.*) }
  .data : { *(.data .data.*) *(.sdata .sdata.*) }
  .bss : { *(.bss .bss.*) *(.sbss .sbss.*) }
  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.riscv.attributes) *(.comment) }
}
"""


@dataclass
class Script:
    """Accesses to replay on both sides; every op yields one labelled result."""

    words: list[int] = field(default_factory=list)
    ops: list[tuple] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def _add(self, op: tuple, words: list[int], label: str) -> None:
        self.ops.append(op)
        self.words += words
        self.labels.append(label)

    def r(self, addr: int, label: str, size: int = 1) -> None:
        """Read `size` bytes at `addr`."""
        self._add(("r", addr, size), [OP_READ | size << 8, addr], label)

    def w(self, addr: int, value: int, label: str = "", size: int = 1) -> None:
        """Write `value` (`size` bytes) at `addr`; its result is whether it faulted."""
        label = label or f"write 0x{value:x} to 0x{addr:x}"
        self._add(("w", addr, size, value), [OP_WRITE | size << 8, addr, value], label)

    def poll(self, addr: int, mask: int, value: int, label: str, size: int = 1,
             polls: int = 10_000_000) -> None:
        """Read `addr` until `read & mask == value` (at most `polls` reads); 1 if it did."""
        self._add(("poll", addr, size, mask, value),
                  [OP_POLL | size << 8, addr, mask, value, polls], label)

    def mip(self, label: str) -> None:
        """Read the hart's mip CSR."""
        self._add(("mip",), [OP_MIP], label)

    def poll_mip(self, mask: int, value: int, label: str, polls: int = 10_000_000) -> None:
        """Read mip until `mip & mask == value`; 1 if it did."""
        self._add(("poll_mip", mask, value), [OP_POLL_MIP, mask, value, polls], label)

    def c_source(self, outname: Path) -> str:
        words = ",".join(f"0x{w:x}UL" for w in [*self.words, OP_END])
        return (f"const unsigned long script[] = {{{words}}};\n"
                f"const char outname[] = \"{outname}\";\n")


def run_qemu(tmp: Path, script: Script, extra: tuple[str, ...] = ()) -> list[tuple[int, int]]:
    """Run `script` on qemu-system-riscv64 -machine virt; return (value, fault)
    per op, fault being mcause + 1 of the access fault QEMU raised (0: none)."""
    assert QEMU is not None
    out = tmp / "results.bin"
    (tmp / "probe.c").write_text(PROBE_C)
    (tmp / "script.c").write_text(script.c_source(out))
    elf = assemble(tmp, START_S, name="probe", ld=LD,
                   extra=("-mcmodel=medany", "-O1", str(tmp / "probe.c"),
                          str(tmp / "script.c")))
    args = [QEMU, "-machine", "virt", "-bios", "none", "-kernel", elf, "-m", "128M",
            "-smp", "1", "-display", "none", "-monitor", "none",
            "-serial", f"file:{tmp / 'serial.out'}",
            "-semihosting-config", "enable=on,target=native", *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert len(data) == 16 * len(script.ops), (len(data), done.stderr)
    return list(struct.iter_unpack("<QQ", data))
