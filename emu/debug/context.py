"""The context view shown at every stop (pwndbg-like): why we stopped,
registers with the changed ones highlighted, disassembly around pc with
symbols, the source line (DWARF), the Sv39 walk of the faulting address and
the kernel's view of that page.

Output is plain text; on a terminal, headers and changed registers get ANSI
colours, otherwise changed registers are marked with `*` (so scripted
sessions and gdb's `monitor` can see them too).

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.core.isa import GPR_NAMES
from emu.debug.disasm import decode, format_insn
from emu.debug.vmem import MemError
from emu.guestview.kview import PageQuery, kernel_view, trace
from emu.mmu.walk import CAUSE_NAMES as WALK_CAUSES

CSR_VIEW = ("sstatus", "satp", "scause", "stval", "sepc", "stvec", "sie", "sip", "sscratch")
PRIV_NAME = {0: "U", 1: "S", 3: "M"}
_ACC = {"r": "read", "w": "write", "x": "fetch"}


@dataclass
class Style:
    """How to mark things: ANSI colours on a terminal, plain text otherwise."""

    color: bool = False

    def header(self, title: str) -> str:
        """A section rule with `title`."""
        line = f"── {title} " + "─" * max(4, 66 - len(title))
        return f"\x1b[36m{line}\x1b[0m" if self.color else line

    def changed(self, text: str) -> str:
        """`text` marked as changed since the previous stop."""
        return f"\x1b[1;31m{text}\x1b[0m" if self.color else f"{text}*"

    def same(self, text: str) -> str:
        """`text` unchanged (padded like a changed one in plain mode)."""
        return text if self.color else f"{text} "

    def current(self, text: str) -> str:
        """The line of the current instruction."""
        return f"\x1b[1;32m{text}\x1b[0m" if self.color else text


def snapshot(cpu) -> dict[str, int]:
    """Return every register the view shows: GPRs, pc, priv and S CSRs."""
    regs = dict(zip(GPR_NAMES, cpu.gprs(), strict=True))
    regs["pc"] = cpu.pc
    regs["priv"] = cpu.priv
    for c in CSR_VIEW:
        regs[c] = cpu.csr(c)
    return regs


def registers(regs: dict[str, int], prev: dict[str, int] | None, style: Style) -> list[str]:
    """Register lines: pc/priv, 4 GPRs per line (x0 omitted), then CSRs."""
    def cell(name: str, width: int = 4) -> str:
        text = f"{name:<{width}} 0x{regs[name]:016x}"
        if prev is not None and prev.get(name) != regs[name]:
            return style.changed(text)
        return style.same(text)

    out = [f" {cell('pc')}  priv {PRIV_NAME.get(regs['priv'], regs['priv'])}"]
    names = GPR_NAMES[1:]
    for i in range(0, len(names), 4):
        out.append((" " + "  ".join(cell(n) for n in names[i:i + 4])).rstrip())
    for i in range(0, len(CSR_VIEW), 3):
        out.append((" " + "  ".join(cell(n, 8) for n in CSR_VIEW[i:i + 3])).rstrip())
    return out


def code(ctl, pc: int, before: int = 3, after: int = 5) -> list[str]:
    """Disassembly lines around `pc`, the current one marked with `=>`.
    Instructions are 2 or 4 bytes long, so the lines before pc are decoded
    forward from the start of pc's function when pc is inside one and near
    its start (else from pc - 4 x before, as for fixed-size code, starting
    over at pc if that falls out of step)."""
    hit = ctl.symbols.lookup(pc)
    start = pc - hit[1] if hit and 0 < hit[1] <= 256 else pc - 4 * before
    lines: list[tuple[int, str]] = []
    a = start
    while a <= pc or sum(1 for x, _ in lines if x > pc) < after:
        try:
            word = ctl.mem.read_u(a, 4)
        except MemError:
            if a == pc:
                lines.append((a, f"=> 0x{a:x}:  <not readable>"))
            a += 4
            if a > pc + 4 * (after + 1):
                break
            continue
        ins = decode(a, word)
        if a < pc < a + ins.size:       # decoding from the start fell out of step
            lines, a = [], pc
            continue
        lines.append((a, format_insn(ins, ctl.symbols, "=>" if a == pc else "  ")))
        a += ins.size
    shown_before = [t for x, t in lines if x < pc][-before:]
    return shown_before + [t for x, t in lines if x >= pc]


def source(ctl, pc: int) -> list[str]:
    """`file:line  text` for pc, or nothing without line information."""
    loc = ctl.lines.lookup(pc) if ctl.lines is not None else None
    if loc is None:
        return []
    text = ctl.lines.source_line(loc)
    return [f" {loc.short}  {text.strip() if text else '(source not available)'}"]


def walk_lines(ctl, q: PageQuery) -> list[str]:
    """The Sv39 walk of `q`, one line per level plus where and why it stopped,
    and the kernel's view of the page."""
    tr = trace(ctl.machine, q)
    out = []
    for s in tr.steps:
        if s.raw is None:
            out.append(f"  L{s.level}  pte@0x{s.pte_addr:x}  outside RAM")
            continue
        d = s.decoded
        nxt = f" -> 0x{d.paddr:x}" if d and d.v else ""
        out.append(f"  L{s.level}  pte@0x{s.pte_addr:x} = 0x{s.raw:016x}  "
                   f"{'V' if d and d.v else '-'}{d.flags if d else ''}  "
                   f"{d.kind if d else ''}{nxt}")
    if tr.ok:
        out.append(f"  stopped: {tr.stopped} -> physical 0x{tr.paddr:x}")
    else:
        name = WALK_CAUSES.get(tr.cause, f"cause {tr.cause}")
        out.append(f"  stopped: {tr.stopped} -> {name} (cause {tr.cause})")
    out.append(f"  kernel's view: {kernel_view(ctl.machine, q, tr)}")
    return out


def query_header(q: PageQuery) -> str:
    """`walk: read 0x800008 from U-mode (satp 0x...)`."""
    return (f"walk: {q.access} 0x{q.va:x} from {PRIV_NAME.get(q.priv, q.priv)}-mode "
            f"(satp 0x{q.satp:x})")


def render(ctl, stop, regs: dict[str, int], prev: dict[str, int] | None,
           focus: PageQuery | None, style: Style) -> str:
    """The whole context view for `stop`. `focus`, if given, is the access
    whose walk and kernel view are shown (the fault being handled)."""
    m = ctl.machine
    depth = len(ctl.traps)
    lines = [style.header("stop"), f" {stop.message}",
             f" insn {m.icount}  time {m.now() / 1e6:.6f} ms  "
             f"priv {PRIV_NAME.get(regs['priv'], '?')}  trap depth {depth}"
             + ("  (fault held: `stepi` enters the handler)" if m.traps.held_trap else "")]
    lines.append(style.header("registers"))
    lines += registers(regs, prev, style)
    lines.append(style.header("code"))
    lines += code(ctl, regs["pc"])
    src = source(ctl, regs["pc"])
    if src:
        lines.append(style.header("source"))
        lines += src
    if focus is not None:
        lines.append(style.header(query_header(focus)))
        lines += walk_lines(ctl, focus)
    return "\n".join(lines)


def fault_query(fault) -> PageQuery:
    """The PageQuery of a FaultInfo."""
    return PageQuery(fault.va, _ACC[fault.access], fault.priv, fault.satp)
