"""THE command table: one language for the `emu debug` REPL and gdb's
`monitor` (qRcmd), so both front ends speak the same commands.

A Command has a name, gdb-style aliases, usage, help (one sentence), an
optional longer doc and a handler `(session, args) -> text`; a `/FMT`
typed after the name (`x/4xg`, `p/x`, `display/i`) arrives as the first
argument. Lookup accepts the name, an alias or - as gdb does - any
unambiguous prefix of a name. Handlers raise CommandError (one line, with
any output produced before the failure in `partial`) for bad input;
nothing else escapes `Session.execute` except SessionEnd (`quit`).

`moves` marks commands that run the machine: in the REPL the displays
(`display`) follow their output; over gdb the stub adds a note that gdb's
own register cache is stale afterwards. `repl_only` marks commands gdb's
`monitor` refuses (gdb has its own). The commands gdb users type out of
habit live in gdbcmds.py, what the REPL completes in complete.py.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emu.core.isa import GPR_NAMES
from emu.debug import gdbcmds
from emu.debug.context import (
    PRIV_NAME,
    Style,
    fault_query,
    query_header,
    render,
    snapshot,
    walk_lines,
)
from emu.debug.control import Controller, DebugError, Stop
from emu.debug.disasm import decode, format_insn
from emu.debug.expr import ExprError
from emu.debug.faults import FilterError, parse_fault_filter
from emu.debug.frames import backtrace
from emu.debug.gdbcmds import GdbState
from emu.debug.infomem import info_mem
from emu.debug.tlbinfo import info_tlb
from emu.debug.vmem import MemError
from emu.guestview.kproc import kernel_of
from emu.guestview.kview import PageQuery
from emu.guestview.netview import info_net
from emu.guestview.reserveview import info_reserve
from emu.guestview.swapview import info_swap
from emu.guestview.symbols import LocationError, extent, parse_int, resolve
from emu.mmu import UnsupportedMode


class CommandError(Exception):
    """Bad command or arguments; the message is one line. `partial` is the
    output the command produced before it failed (shown first)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class SessionEnd(Exception):
    """`quit` was asked for."""


@dataclass(frozen=True)
class Command:
    """One entry of the command table."""

    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    handler: Callable[[Session, list[str]], str]
    moves: bool = False
    repl_only: bool = False
    doc: str = ""


class Session:
    """What every front end shares: the Controller, the registers at the
    previous stop (for highlighting), the fault in focus, the style, and
    gdb's state between commands (`gdb`: value history, `x` defaults,
    displays). `repeat` is what an empty line repeats after a command
    (gdb's rules: `x` continues, `display` and `delete` do not repeat)."""

    def __init__(self, ctl: Controller, style: Style | None = None) -> None:
        self.ctl = ctl
        self.style = style or Style()
        self.prev_regs: dict[str, int] | None = None
        self.focus: PageQuery | None = None
        self._focus_depth = 0
        self._focus_epc = 0
        self._boots = ctl.boots
        self.gdb = GdbState(ctl)
        self.via_gdb = False
        self.repeat = ""

    # -- stops -------------------------------------------------------------
    def show_stop(self, stop: Stop) -> str:
        """Render the context view for `stop` and remember the registers."""
        ctl = self.ctl
        if ctl.boots != self._boots:   # a fresh machine: nothing "changed"
            self._boots = ctl.boots
            self.prev_regs = None
            self.focus = None
            self.gdb.rebooted()
        regs = snapshot(ctl.machine.cpu)
        if stop.fault is not None:
            self.focus = fault_query(stop.fault)
            self._focus_depth = len(ctl.traps)
            self._focus_epc = stop.fault.epc
        elif self.focus is not None:
            inside = len(ctl.traps) > self._focus_depth
            retried = stop.kind == "finish" and stop.pc == self._focus_epc
            if not (inside or retried):
                self.focus = None
        text = render(ctl, stop, regs, self.prev_regs, self.focus, self.style)
        self.prev_regs = regs
        return text

    # -- dispatch ----------------------------------------------------------
    def execute(self, line: str, via_gdb: bool = False) -> str:
        """Run one command line. Returns its output (maybe empty); in the
        REPL, a command that ran the machine is followed by the displays.

        Raises CommandError for unknown commands or bad arguments, SessionEnd
        for `quit`.
        """
        words = line.strip().split()
        if not words:
            return ""
        head, fmt = words[0], ""
        if "/" in head:
            head, fmt = head.split("/", 1)
        cmd = lookup(head)
        if via_gdb and cmd.repl_only:
            raise CommandError(f"'{cmd.name}' is not available through gdb's monitor")
        args = ([f"/{fmt}"] if "/" in words[0] else []) + words[1:]
        self.via_gdb = via_gdb
        self.repeat = line.strip()
        try:
            out = cmd.handler(self, args)
        except ExprError as exc:
            raise CommandError(str(exc), exc.partial) from None
        except (DebugError, FilterError, LocationError, MemError, UnsupportedMode) as exc:
            raise CommandError(str(exc)) from None
        if cmd.moves and not via_gdb and self.ctl.last_stop.kind != "exited":
            shown = gdbcmds.display_all(self.gdb)
            out = f"{out}\n{shown}" if out and shown else out or shown
        return out


# -- lookup ------------------------------------------------------------------------
def lookup(word: str) -> Command:
    """Return the command for `word`: a name, an alias or a unique prefix.
    Raises CommandError for unknown or ambiguous words."""
    w = word.lower()
    for c in TABLE:
        if w == c.name or w in c.aliases:
            return c
    hits = [c for c in TABLE if c.name.startswith(w)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise CommandError(f"ambiguous command {word!r}: "
                           + ", ".join(c.name for c in hits))
    raise CommandError(f"unknown command {word!r} (try `help`)")


def _one_int(args: list[str], what: str, default: int | None = None) -> int:
    if not args:
        if default is None:
            raise CommandError(f"missing {what}")
        return default
    if len(args) > 1:
        raise CommandError(f"too many arguments: {' '.join(args[1:])}")
    try:
        return parse_int(args[0], what)
    except LocationError as exc:
        raise CommandError(str(exc)) from None


def _loc(s: Session, text: str) -> int:
    """Resolve a location: `0x...`, `*ADDR`, `sym`, `sym+off`, `file:line`,
    or any gdb expression (`$sp+16`, `&ticks`, `$a0*2`: emu/debug/expr.py)."""
    try:
        return resolve(text, s.ctl.symbols, s.ctl.lines)
    except LocationError as exc:
        if not re.search(r"[$&()*/%<>|^~-]|\+", text):
            raise CommandError(str(exc)) from None
    return gdbcmds.address_of(s.gdb, text[1:] if text.startswith("*") else text)


# -- running -----------------------------------------------------------------------
def c_continue(s: Session, args: list[str]) -> str:
    """`continue`: run until something stops the machine; returns the context view."""
    if args:
        raise CommandError("continue takes no arguments")
    return s.show_stop(s.ctl.cont())


def c_stepi(s: Session, args: list[str]) -> str:
    """`stepi [N]`: execute N instructions; returns the context view."""
    return s.show_stop(s.ctl.stepi(_one_int(args, "count", 1)))


def c_step(s: Session, args: list[str]) -> str:
    """`step`: run to the next source line, into calls; returns the context view."""
    if args:
        raise CommandError("step takes no arguments")
    return s.show_stop(s.ctl.step_line(over=False))


def c_next(s: Session, args: list[str]) -> str:
    """`next`: run to the next source line, over calls; returns the context view."""
    if args:
        raise CommandError("next takes no arguments")
    return s.show_stop(s.ctl.step_line(over=True))


def c_finish(s: Session, args: list[str]) -> str:
    """`finish [trap]`: run until the function (or trap) returns; returns the view."""
    if args and args != ["trap"]:
        raise CommandError("usage: finish [trap]")
    return s.show_stop(s.ctl.finish(trap=True if args else None))


def c_run_to(s: Session, args: list[str]) -> str:
    """`run-to fault N | insn N`: replay to that event; returns the context view."""
    if len(args) != 2 or args[0] not in ("fault", "insn"):
        raise CommandError("usage: run-to fault N | run-to insn N")
    n = _one_int(args[1:], "number")
    st = s.ctl.run_to_fault(n) if args[0] == "fault" else s.ctl.run_to_insn(n)
    return s.show_stop(st)


def c_restart(s: Session, args: list[str]) -> str:
    """`restart`: a fresh machine at reset; returns the context view."""
    if args:
        raise CommandError("restart takes no arguments")
    return s.show_stop(s.ctl.restart())


def c_symbol_file(s: Session, args: list[str]) -> str:
    """`symbol-file PATH`: symbols from an ELF or an nm-style map (a
    kernel's System.map, a saved /proc/kallsyms) replace the image's."""
    if len(args) != 1:
        raise CommandError("usage: symbol-file PATH (an ELF or a System.map)")
    try:
        note = s.ctl.load_symbols(args[0])
    except LocationError as exc:
        raise CommandError(str(exc)) from None
    s.gdb.rebooted()          # expressions and x/i labels use the new table
    return note


def c_context(s: Session, args: list[str]) -> str:
    """`context`: the view of the last stop again."""
    if args:
        raise CommandError("context takes no arguments")
    return s.show_stop(s.ctl.last_stop)


# -- breakpoints ---------------------------------------------------------------------
def c_break(s: Session, args: list[str]) -> str:
    """`break LOC | break fault [FILTERS]`: add a breakpoint; returns a one-line summary."""
    if not args:
        raise CommandError("usage: break LOCATION | break fault [filters]")
    if args[0] == "fault":
        bp = s.ctl.add_fault(parse_fault_filter(args[1:]))
        return f"Fault breakpoint {bp.id}: {bp.filt.describe() if bp.filt else ''}"
    if len(args) > 1:
        raise CommandError(f"too many arguments: {' '.join(args[1:])}")
    addr = _loc(s, args[0])
    bp = s.ctl.add_code(addr)
    where = f" <{bp.label}>" if bp.label else ""
    loc = s.ctl.lines.lookup(addr) if s.ctl.lines else None
    return f"Breakpoint {bp.id} at 0x{addr:x}{where}" + (f": {loc.short}" if loc else "")


def _watch(kind: str) -> Callable[[Session, list[str]], str]:
    def handler(s: Session, args: list[str]) -> str:
        if not 1 <= len(args) <= 2:
            raise CommandError(f"usage: {kind} VA [LEN]")
        addr = _loc(s, args[0])
        length = parse_int(args[1], "length") if len(args) > 1 else 8
        bp = s.ctl.add_watch(kind, addr, length)
        what = {"watch": "Watchpoint (write)", "rwatch": "Read watchpoint",
                "awatch": "Access watchpoint"}[kind]
        return f"{what} {bp.id}: 0x{addr:x} len {length}"
    return handler


def c_delete(s: Session, args: list[str]) -> str:
    """`delete [N...]`: delete breakpoints; raises CommandError for unknown
    numbers. `delete display [N...]` deletes displays."""
    s.repeat = ""
    if args and "display".startswith(args[0].lower()):
        return gdbcmds.c_undisplay(s.gdb, args[1:])
    if not args:
        n = s.ctl.delete(None)
        return f"deleted {n} breakpoint{'s' if n != 1 else ''}"
    for a in args:
        s.ctl.delete(parse_int(a, "breakpoint number"))
    return ""


# -- inspection ----------------------------------------------------------------------
def info_registers_qemu(s: Session) -> str:
    """QEMU's `info registers` layout (target/riscv/cpu.c dump_state)."""
    cpu = s.ctl.machine.cpu
    lines = [f" {'pc':<8} {cpu.pc:016x}", f" {'priv':<8} {PRIV_NAME.get(cpu.priv, '?')}"]
    for c in ("sstatus", "satp", "stvec", "sepc", "scause", "stval", "sie", "sip",
              "sscratch"):
        lines.append(f" {c:<8} {cpu.csr(c):016x}")
    regs = cpu.gprs()
    row = []
    for i, name in enumerate(GPR_NAMES):
        row.append(f" {f'x{i}/{name}':<8} {regs[i]:016x}")
        if len(row) == 4:
            lines.append("".join(row))
            row = []
    return "\n".join(lines)


def info_registers(s: Session, args: list[str]) -> str:
    """`info registers [NAME...]`: gdb's layout; through gdb's monitor and
    without names, QEMU's monitor layout (gdb has its own)."""
    if s.via_gdb and not args:
        return info_registers_qemu(s)
    return gdbcmds.info_regs(s.gdb, args)


def info_stop(s: Session) -> str:
    """`info stop`: the last stop, with the walk and kernel view of a fault."""
    st = s.ctl.last_stop
    lines = [st.message, f"pc 0x{st.pc:x}{s.ctl.where(st.pc)}, "
             f"insn {st.icount}, kind {st.kind}"]
    if st.fault is not None:
        q = fault_query(st.fault)
        lines.append(query_header(q))
        lines += walk_lines(s.ctl, q)
    return "\n".join(lines)


def info_traps(s: Session) -> str:
    """`info traps`: the traps being handled, innermost first."""
    if not s.ctl.traps:
        return "No trap is being handled."
    out = []
    for i, t in enumerate(reversed(s.ctl.traps)):
        out.append(f"#{i} {t.name} (cause {t.cause}) from {PRIV_NAME.get(t.priv)}-mode, "
                   f"sepc 0x{t.epc:x}{s.ctl.where(t.epc)}, stval 0x{t.tval:x}, "
                   f"at insn {t.icount}")
    return "\n".join(out)


def info_proc(s: Session) -> str:
    """`info proc`: the kernel's processes and regions; CommandError without them."""
    k = kernel_of(s.ctl.machine)
    if k is None:
        raise CommandError("this kernel has no process table the debugger can read "
                           "(symbol `proc` with DWARF types)")
    cur = k.by_satp(s.ctl.machine.cpu.csr("satp"))
    out = []
    for p in k.procs():
        mark = "*" if cur is not None and p.pid == cur.pid else " "
        out.append(f"{mark}pid {p.pid:<3} {p.name:<12} {p.state_name:<9} "
                   f"pagetable 0x{p.pagetable:x}  rss {p.rss} pages")
        for v in p.vmas:
            if v.kind:
                out.append(f"      {v.name:<6} [0x{v.start:x}, 0x{v.end:x}) {v.perms}")
    return "\n".join(out) or "No processes."


@dataclass(frozen=True)
class Topic:
    """One `info` topic: name, aliases, handler `(session, args) -> text`,
    one-line help; `args` is False for topics that take no arguments."""

    name: str
    aliases: tuple[str, ...]
    fn: Callable[[Session, list[str]], str]
    help: str
    args: bool = False


def _plain(fn: Callable[[Session], str]) -> Callable[[Session, list[str]], str]:
    return lambda s, _args: fn(s)


INFO: tuple[Topic, ...] = (
    Topic("registers", ("r", "reg", "regs"), info_registers,
          "registers in gdb's layout: NAME... or a group (general, system, all); "
          "through gdb's monitor without names, QEMU's layout", args=True),
    Topic("all-registers", (), lambda s, a: gdbcmds.info_all_regs(s.gdb, a),
          "every register: GPRs, pc, the S-mode CSRs and priv"),
    Topic("mem", ("m",), _plain(lambda s: info_mem(s.ctl.machine.mem,
                                                   s.ctl.machine.cpu.csr("satp"))),
          "mapped virtual ranges (QEMU RISC-V format)"),
    Topic("tlb", (), _plain(lambda s: info_tlb(s.ctl.machine)),
          "what QEMU's soft TLB holds now, per privilege, against the page table"),
    Topic("breakpoints", ("b", "break"), lambda s, a: gdbcmds.info_breaks(s.gdb, a),
          "breakpoints, watchpoints and fault breakpoints (gdb's table)"),
    Topic("watchpoints", ("watch",), lambda s, a: gdbcmds.info_watches(s.gdb, a),
          "watchpoints only"),
    Topic("display", (), lambda s, a: gdbcmds.info_display(s.gdb, a),
          "the expressions shown at every stop"),
    Topic("stop", ("why",), _plain(info_stop),
          "why the machine stopped (with the fault's walk)"),
    Topic("traps", ("trap",), _plain(info_traps), "traps being handled, innermost first"),
    Topic("net", ("network", "nic"), _plain(lambda s: info_net(s.ctl.machine)),
          "NIC rings and counters, links, AoE targets"),
    Topic("swap", (), _plain(lambda s: info_swap(s.ctl.machine)),
          "swap area, swap map summary, AoE"),
    Topic("reserve", ("reserves",), _plain(lambda s: info_reserve(s.ctl.machine)),
          "memory reserves below min: usage, peak, limit; drops and refusals"),
    Topic("proc", ("procs", "processes"), _plain(info_proc),
          "the kernel's processes and their regions (* = the one satp maps)"),
)


def info_topic(word: str) -> Topic:
    """The `info` topic for `word`: a name, an alias or a unique prefix.
    Raises CommandError (gdb's words) otherwise."""
    w = word.lower()
    for t in INFO:
        if w == t.name or w in t.aliases:
            return t
    hits = [t for t in INFO if t.name.startswith(w)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise CommandError(f'Ambiguous info command "{word}": '
                           + ", ".join(t.name for t in hits) + ".")
    raise CommandError(f'Undefined info command: "{word}".  Try "help info".')


def c_info(s: Session, args: list[str]) -> str:
    """`info TOPIC [ARGS]`: dispatch to the INFO topics."""
    if not args:
        raise CommandError('"info" must be followed by the name of an info command '
                           "(" + ", ".join(t.name for t in INFO) + ")")
    t = info_topic(args[0])
    if args[1:] and not t.args:
        raise CommandError(f"info {t.name} takes no arguments")
    return t.fn(s, args[1:])


def _gdb(fn: Callable[[GdbState, list[str]], str], repeat: str | None = None
         ) -> Callable[[Session, list[str]], str]:
    """A gdbcmds handler as a command handler; `repeat` replaces what an
    empty line repeats ("" for nothing)."""
    def handler(s: Session, args: list[str]) -> str:
        if repeat is not None:
            s.repeat = repeat
        return fn(s.gdb, args)
    return handler


def c_walk(s: Session, args: list[str]) -> str:
    """`walk VA [r|w|x] [u|s]`: the Sv39 walk and the kernel's view of VA."""
    if not args:
        raise CommandError("usage: walk VA [r|w|x] [u|s]")
    va = _loc(s, args[0])
    access, priv = "read", s.ctl.priv()
    for w in args[1:]:
        lw = w.lower()
        if lw in ("r", "read", "load"):
            access = "read"
        elif lw in ("w", "write", "store"):
            access = "write"
        elif lw in ("x", "fetch", "exec"):
            access = "fetch"
        elif lw in ("u", "user"):
            priv = 0
        elif lw in ("s", "k", "kernel", "supervisor"):
            priv = 1
        else:
            raise CommandError(f"bad walk option {w!r} (r|w|x, u|s)")
    q = PageQuery(va, access, min(priv, 1), s.ctl.machine.cpu.csr("satp"))
    return "\n".join([query_header(q)] + walk_lines(s.ctl, q))


def c_bt(s: Session, args: list[str]) -> str:
    """`bt`: the frame-pointer backtrace, across traps."""
    if args:
        raise CommandError("bt takes no arguments")
    cpu = s.ctl.machine.cpu
    if cpu.priv == 0:
        return f"#0  0x{cpu.pc:016x} in user code (U-mode: no symbols, no frame chain)"
    frames = backtrace(s.ctl.mem, s.ctl.symbols, cpu.pc, cpu.reg("ra"), cpu.reg("s0"),
                       s.ctl.traps, s.ctl.glue())
    out = []
    lines = s.ctl.lines
    for i, f in enumerate(frames):
        loc = lines.lookup(f.pc if i == 0 or f.trap else f.pc - 4) if lines else None
        at = f" at {loc.short}" if loc and not f.trap else ""
        out.append(f"#{i:<2} 0x{f.pc:016x} in {f.label}{at}")
    return "\n".join(out)


def c_disas(s: Session, args: list[str]) -> str:
    """`disas [LOC] [N]`: disassemble a function or N instructions."""
    if len(args) > 2:
        raise CommandError("usage: disas [LOCATION] [COUNT]")
    pc = s.ctl.machine.cpu.pc
    addr = _loc(s, args[0]) if args else pc
    if len(args) == 2:
        n = parse_int(args[1], "count")
    else:
        ext = extent(s.ctl.symbols, addr)
        n = (ext[1] - ext[0]) // 4 if ext and ext[0] == addr else 12
        if ext and not args:
            addr, n = ext[0], (ext[1] - ext[0]) // 4
    n = max(1, min(n, 512))
    out = []
    a = addr
    end = ext[1] if ext and ext[0] == addr else None
    for _ in range(n):
        if end is not None and a >= end:
            break
        try:
            word = s.ctl.mem.read_u(a, 4)
        except MemError as exc:
            out.append(f"   0x{a:x}:  <{exc}>")
            break
        ins = decode(a, word)
        out.append(format_insn(ins, s.ctl.symbols, "=>" if a == pc else "  "))
        a += ins.size
    return "\n".join(out)


def c_help(s: Session, args: list[str]) -> str:
    """`help [CMD | info [TOPIC]]`: the command list, or one command as gdb
    shows it (names and aliases, what it does, usage, details)."""
    if not args:
        out = ["Commands (gdb-style prefixes work: `cont`, `fin`, `i r`; "
               "`help CMD` for one):"]
        for c in TABLE:
            al = f"  [{', '.join(c.aliases)}]" if c.aliases else ""
            out.append(f"  {c.usage:<34} {c.help}{al}")
        out.append("info topics: " + ", ".join(t.name for t in INFO))
        return "\n".join(out)
    try:
        c = lookup(args[0])
    except CommandError:
        raise CommandError(f'Undefined command: "{args[0]}".  Try "help".') from None
    if c.name == "info" and len(args) > 1:
        t = info_topic(args[1])
        names = ", ".join(f"info {n}" for n in (t.name, *t.aliases))
        return f"{names}\n{t.help[0].upper()}{t.help[1:]}."
    lines = [", ".join((c.name, *c.aliases))] if c.aliases else []
    lines += [f"{c.help[0].upper()}{c.help[1:]}.", f"Usage: {c.usage}"]
    if c.doc:
        lines.append(c.doc)
    if c.name == "info":
        lines.append("\nList of info subcommands:\n")
        lines += [f"info {t.name} -- {t.help}" for t in INFO]
    return "\n".join(lines)


def c_quit(s: Session, args: list[str]) -> str:
    """`quit`: raises SessionEnd."""
    raise SessionEnd()


X_DOC = """ADDRESS is an expression for the memory address to examine.
FMT is a repeat count followed by a format letter and a size letter.
Format letters are o(octal), x(hex), d(decimal), u(unsigned decimal),
  t(binary), f(float), a(address), i(instruction), c(char), s(string)
  and z(hex, zero padded on the left).
Size letters are b(byte), h(halfword), w(word), g(giant, 8 bytes).
The specified number of objects of the specified size are printed
according to the format.  If a negative number is specified, memory is
examined backward from the address.

Defaults for format and size letters are those previously used.
Default count is 1.  Default address is following last thing printed
with this command or "print".  Reads go through our Sv39 walker without
setting A/D bits and never touch device registers."""

PRINT_DOC = """EXP is a C expression: registers ($pc, $sp, $a0, $satp, $priv), the value
history ($, $$, $N, $$N), $_ and $__ after x, symbols with their DWARF types,
literals, casts, * & [] and + - * / % << >> & | ^ == != < > <= >= && ||.
FMT is a format letter: x(hex), d(decimal), u(unsigned), o(octal), t(binary),
c(char), a(address), f(float), z(zero-padded hex), s(string).
Without EXP, the last value is shown again."""

DISPLAY_DOC = """/FMT may be used before EXP as in the "print" command.
/FMT "i" or "s" or including a size-letter is allowed,
as in the "x" command, and then EXP is used to get the address to examine
and examining is done as in the "x" command.

With no argument, display all currently requested auto-display expressions.
Use "undisplay" to cancel display requests previously made."""


TABLE: tuple[Command, ...] = (
    Command("help", ("h", "?"), "help [COMMAND]", "list commands or explain one", c_help),
    Command("continue", ("c", "cont"), "continue", "run until a breakpoint, fault or exit",
            c_continue, moves=True),
    Command("stepi", ("si",), "stepi [N]", "execute N instructions (a held fault: enter "
            "the handler)", c_stepi, moves=True),
    Command("step", ("s",), "step", "run to the next source line, into calls", c_step,
            moves=True),
    Command("next", ("n",), "next", "run to the next source line, over calls", c_next,
            moves=True),
    Command("finish", ("fin",), "finish [trap]", "run until this function returns; in "
            "the trap glue or at a fault: until the trap returns", c_finish, moves=True),
    Command("run-to", ("rt",), "run-to fault N | run-to insn N", "restart and stop at "
            "exactly the Nth fault / after N instructions", c_run_to, moves=True),
    Command("restart", (), "restart", "boot a fresh machine (breakpoints kept)", c_restart,
            moves=True),
    Command("break", ("b", "br"), "break LOC | break fault [FILTERS]", "code breakpoint "
            "(addr, sym, sym+off, file:line) or fault breakpoint: LO-HI r|w|x user|kernel "
            "satp=V pid=N cause=N nth=N", c_break),
    Command("watch", (), "watch VA [LEN]", "stop after a write to [VA, VA+LEN)",
            _watch("watch")),
    Command("rwatch", (), "rwatch VA [LEN]", "stop after a read", _watch("rwatch")),
    Command("awatch", (), "awatch VA [LEN]", "stop after any access", _watch("awatch")),
    Command("delete", ("d",), "delete [display] [N...]",
            "delete breakpoints (all without N), or displays", c_delete),
    Command("info", ("i",), "info TOPIC [ARGS]", "show things about the machine and the "
            "guest: " + ", ".join(t.name for t in INFO), c_info,
            doc="Generic command for showing things about the program being debugged."),
    Command("print", ("p", "inspect"), "print[/FMT] [EXP]", "print the value of an "
            "expression, recorded as $N", _gdb(gdbcmds.c_print), doc=PRINT_DOC),
    Command("output", (), "output[/FMT] EXP", "print a value alone, not recorded",
            _gdb(gdbcmds.c_output)),
    Command("whatis", (), "whatis EXP|TYPE", "print the type of an expression",
            _gdb(gdbcmds.c_whatis)),
    Command("display", (), "display[/FMT] [EXP]", "print the value of EXP each time the "
            "machine stops", _gdb(gdbcmds.c_display, repeat=""), repl_only=True,
            doc=DISPLAY_DOC),
    Command("undisplay", (), "undisplay [N...]", "cancel some or all displays",
            _gdb(gdbcmds.c_undisplay, repeat=""), repl_only=True),
    Command("x", (), "x[/FMT] [ADDRESS]", "examine memory: x/FMT ADDRESS",
            _gdb(gdbcmds.c_x, repeat="x"), doc=X_DOC),
    Command("xp", (), "xp[/FMT] [PADDR]", "examine physical memory (RAM only), like x",
            _gdb(gdbcmds.c_xp, repeat="xp")),
    Command("walk", (), "walk VA [r|w|x] [u|s]", "Sv39 walk of VA: every level, where "
            "and why it stops, the kernel's view", c_walk),
    Command("bt", ("backtrace", "where"), "bt", "frame-pointer backtrace across traps",
            c_bt),
    Command("disas", ("disassemble",), "disas [LOC] [N]", "disassemble a function or N "
            "instructions", c_disas),
    Command("context", ("ctx",), "context", "show the context view again", c_context),
    Command("symbol-file", (), "symbol-file PATH", "read symbols from an ELF or a System.map "
            "(a raw Linux Image has its own: kallsyms)", c_symbol_file),
    Command("quit", ("q", "exit"), "quit", "leave the debugger", c_quit, repl_only=True),
)
