"""The commands gdb users type out of habit, over one debugging session's
state: `print`/`p`, `output`, `whatis`, `x`, `xp`, `display`, `undisplay`,
`info registers`, `info all-registers`, `info breakpoints`, `info
watchpoints`, `info display`. Each handler takes the GdbState and the
words after the command (a `/FMT` first when one was typed) and returns
text; bad input raises ExprError with gdb's message. The command table
(commands.py) wires them in.

GdbState holds what gdb keeps between commands: the value history and
convenience variables, what `x` remembers, the display list, and the
readers the expressions use (registers of the live CPU, guest memory by
virtual address without side effects, the kernel's symbols and DWARF).

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.debug import printcmd
from emu.debug.bpinfo import bp_table
from emu.debug.examine import ExamineState, examine, parse_spec
from emu.debug.expr import CSR_NAMES, Env, ExprError, as_address, evaluate
from emu.debug.printcmd import Displays, print_format, show_display
from emu.debug.reginfo import info_registers
from emu.debug.stops import Breakpoint
from emu.debug.valfmt import Labels, format_value
from emu.debug.vmem import MemError
from emu.guestview.cdecl import Decls, read_decls
from emu.machine.loader import Symbols

_GPRS = {"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
         "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
         "s10", "s11", "t3", "t4", "t5", "t6"}


NO_LABELS = Labels(Symbols(), Decls())   # physical addresses carry no symbols


class GdbState:
    """What gdb keeps between commands, for one Controller."""

    def __init__(self, ctl) -> None:
        self.ctl = ctl
        self._env: Env | None = None
        self._labels: Labels | None = None
        self.xstate = ExamineState()
        self.xpstate = ExamineState()
        self.displays = Displays()

    def _load(self) -> tuple[Env, Labels]:
        """The expression environment and labels; the kernel's DWARF is read
        on first use."""
        if self._env is None or self._labels is None:
            decls = read_decls(self.ctl.machine.image.path)
            self._env = Env(reg=self.reg, read=self.read, symbols=self.ctl.symbols,
                            decls=decls)
            self._labels = Labels(self.ctl.symbols, decls)
        return self._env, self._labels

    @property
    def env(self) -> Env:
        """The expression environment: readers, history, convenience variables."""
        return self._load()[0]

    @property
    def labels(self) -> Labels:
        """How addresses are named (`<sym+off>`)."""
        return self._load()[1]

    @property
    def decls(self) -> Decls:
        """The kernel's DWARF declarations and sections."""
        return self.env.decls

    def rebooted(self) -> None:
        """A fresh machine or `symbol-file`: names come from ctl.symbols again."""
        if self._env is not None and self._labels is not None:
            self._env.symbols = self._labels.symbols = self.ctl.symbols

    # -- readers ---------------------------------------------------------------
    def reg(self, name: str) -> int | None:
        """Register `name` (canonical ABI names, pc, priv, the S CSRs) or None."""
        cpu = self.ctl.machine.cpu
        if name == "pc":
            return cpu.pc
        if name == "priv":
            return cpu.priv
        if name in _GPRS:
            return cpu.reg(name)
        if name in CSR_NAMES:
            return cpu.csr(name)
        return None

    def read(self, addr: int, n: int) -> bytes:
        """`n` bytes at virtual `addr` (RAM only, no A/D). Raises ExprError."""
        try:
            return self.ctl.mem.read_virt(addr, n)
        except MemError as exc:
            raise _memory_error(addr, exc) from None

    def read_phys(self, addr: int, n: int) -> bytes:
        """`n` bytes at physical `addr` (RAM only). Raises ExprError."""
        try:
            return self.ctl.mem.read_phys(addr, n)
        except MemError as exc:
            raise _memory_error(addr, exc) from None


def _memory_error(addr: int, exc: MemError) -> ExprError:
    device = " (not RAM: the debugger does not read device registers)" \
        if "not RAM" in str(exc) else ""
    return ExprError(f"Cannot access memory at address 0x{addr:x}{device}")


def _split_fmt(args: list[str]) -> tuple[str | None, str]:
    """(text after `/` or None, the rest joined as one expression)."""
    if args and args[0].startswith("/"):
        return args[0][1:], " ".join(args[1:])
    return None, " ".join(args)


# -- print, output, whatis ---------------------------------------------------------------
def c_print(g: GdbState, args: list[str]) -> str:
    """`print[/F] [EXPR]`: `$N = value`; print of a value in memory makes
    `x` continue after it, as in gdb."""
    spec, expr = _split_fmt(args)
    text, v = printcmd.print_value(g.env, expr, print_format(spec), g.labels, g.read)
    if v.addr is not None and v.type.sizeof:
        g.xstate.next_addr = v.addr + v.type.sizeof
    return text


def c_output(g: GdbState, args: list[str]) -> str:
    """`output[/F] EXPR`: the value alone, not recorded in the history."""
    spec, expr = _split_fmt(args)
    return format_value(evaluate(g.env, expr), print_format(spec, "output"), g.labels, g.read)


def c_whatis(g: GdbState, args: list[str]) -> str:
    """`whatis EXPR|TYPE`: `type = ...`."""
    return printcmd.whatis(g.env, " ".join(args))


# -- x ---------------------------------------------------------------------------------
def c_x(g: GdbState, args: list[str]) -> str:
    """`x[/NFU] [EXPR]`: examine virtual memory (no side effects)."""
    spec, expr = _split_fmt(args)
    return examine(g.xstate, spec, expr or None, g.env, g.read, g.labels,
                   g.ctl.machine.cpu.pc)


def c_xp(g: GdbState, args: list[str]) -> str:
    """`xp[/NFU] [EXPR]`: examine physical memory (RAM only), no labels."""
    spec, expr = _split_fmt(args)
    return examine(g.xpstate, spec, expr or None, g.env, g.read_phys, NO_LABELS, None)


# -- display -----------------------------------------------------------------------------
def _show(g: GdbState, d: printcmd.Display) -> str:
    def printed(fmt: str, expr: str) -> str:
        return format_value(evaluate(g.env, expr), print_format(fmt, "display"), g.labels,
                            g.read)

    def examined(spec: tuple[int, str, str], expr: str) -> str:
        parse_spec(f"{spec[0]}{spec[1]}{spec[2]}", g.xstate)   # validates the letters
        count, fmt, size = spec
        state = ExamineState(fmt, size, count, g.xstate.next_addr)
        out = examine(state, f"{count}{fmt}{size}", expr, g.env, g.read, g.labels,
                      g.ctl.machine.cpu.pc, remember=False)
        g.xstate.next_addr = state.next_addr
        return out

    return show_display(d, printed, examined)


def c_display(g: GdbState, args: list[str]) -> str:
    """`display[/F] EXPR`: add an auto-display and show it; `display` alone
    shows them all."""
    spec, expr = _split_fmt(args)
    if not expr:
        if spec is not None:
            raise ExprError("Argument required (expression to compute).")
        return display_all(g)
    if spec:
        if not any(c in "is" or c in "bhwg" for c in spec.lstrip("0123456789")):
            print_format(spec, "display")
        else:
            parse_spec(spec, g.xstate)
    evaluate(g.env, expr)    # gdb refuses an expression it cannot parse now
    return _show(g, g.displays.add(spec or "", expr))


def display_all(g: GdbState) -> str:
    """Every enabled display, as shown at a stop ("" without any)."""
    return "\n".join(_show(g, d) for d in g.displays.items if d.enabled)


def c_undisplay(g: GdbState, args: list[str]) -> str:
    """`undisplay [N...]`: delete some or all displays."""
    return g.displays.delete(args)


def info_display(g: GdbState, args: list[str]) -> str:
    """`info display`."""
    return g.displays.info()


# -- info registers / breakpoints ----------------------------------------------------------
def info_regs(g: GdbState, args: list[str]) -> str:
    """`info registers [NAME|GROUP...]` in gdb's layout."""
    return info_registers(g.env, args, g.labels)


def info_all_regs(g: GdbState, args: list[str]) -> str:
    """`info all-registers`: every register gdb knows here, CSRs and priv too."""
    return info_registers(g.env, ["all"], g.labels)


def _where(g: GdbState, bp: Breakpoint) -> str:
    """The What column of a code breakpoint: `in FUNC at FILE:LINE`."""
    ctl = g.ctl
    loc = ctl.lines.lookup(bp.addr) if ctl.lines else None
    hit = ctl.symbols.lookup(bp.addr)
    if loc is not None:
        if hit and hit[0] in g.decls.funcs:
            return f"in {hit[0]} at {loc.short}"
        return loc.short
    return f"<{bp.label}>" if bp.label else ""


def info_breaks(g: GdbState, args: list[str]) -> str:
    """`info breakpoints`: gdb's table."""
    return bp_table(g.ctl.bps.values(), lambda b: _where(g, b))


def info_watches(g: GdbState, args: list[str]) -> str:
    """`info watchpoints`: gdb's table, watchpoints only."""
    return bp_table(g.ctl.bps.values(), lambda b: _where(g, b), watch_only=True)


def address_of(g: GdbState, text: str) -> int:
    """An address from an expression (`$sp+16`, `&ticks`, `vmfault`)."""
    return as_address(g.env, evaluate(g.env, text))

