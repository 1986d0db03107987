"""THE command table: one language for the `emu debug` REPL and gdb's
`monitor` (qRcmd), so both front ends speak the same commands.

A Command has a name, gdb-style aliases, usage, help and a handler
`(session, args) -> text`. Lookup accepts the name, an alias or - as gdb
does - any unambiguous prefix of a name. Handlers raise CommandError (one
line) for bad input; nothing else escapes `Session.execute` except
SessionEnd (`quit`).

`moves` marks commands that run the machine; over gdb the stub adds a note
that gdb's own register cache is stale afterwards.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emu.core.isa import GPR_NAMES
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
from emu.debug.faults import FilterError, parse_fault_filter
from emu.debug.frames import backtrace
from emu.debug.infomem import info_mem
from emu.debug.vmem import MemError
from emu.guestview.kproc import kernel_of
from emu.guestview.kview import PageQuery
from emu.guestview.netview import info_net
from emu.guestview.reserveview import info_reserve
from emu.guestview.swapview import info_swap
from emu.guestview.symbols import LocationError, extent, parse_int, resolve
from emu.mmu import UnsupportedMode


class CommandError(Exception):
    """Bad command or arguments; the message is one line."""


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


class Session:
    """What every front end shares: the Controller, the registers at the
    previous stop (for highlighting), the fault in focus and the style."""

    def __init__(self, ctl: Controller, style: Style | None = None) -> None:
        self.ctl = ctl
        self.style = style or Style()
        self.prev_regs: dict[str, int] | None = None
        self.focus: PageQuery | None = None
        self._focus_depth = 0
        self._focus_epc = 0
        self._boots = ctl.boots

    # -- stops -------------------------------------------------------------
    def show_stop(self, stop: Stop) -> str:
        """Render the context view for `stop` and remember the registers."""
        ctl = self.ctl
        if ctl.boots != self._boots:   # a fresh machine: nothing "changed"
            self._boots = ctl.boots
            self.prev_regs = None
            self.focus = None
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
        """Run one command line. Returns its output (maybe empty).

        Raises CommandError for unknown commands or bad arguments, SessionEnd
        for `quit`.
        """
        words = line.strip().split()
        if not words:
            return ""
        head = words[0]
        fmt = ""
        if "/" in head and head.split("/", 1)[0] in ("x", "xp"):
            head, fmt = head.split("/", 1)
        cmd = lookup(head)
        if via_gdb and cmd.repl_only:
            raise CommandError(f"'{cmd.name}' is not available through gdb's monitor")
        args = ([f"/{fmt}"] if fmt else []) + words[1:]
        try:
            return cmd.handler(self, args)
        except (DebugError, FilterError, LocationError, MemError, UnsupportedMode) as exc:
            raise CommandError(str(exc)) from None


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
    """Resolve a location; `$reg` (`$pc`, `$sp`, `$a0`, `$satp`...) is a
    register's value, optionally `$reg+off`."""
    if text.startswith("$"):
        name, sign, off = re.match(r"^\$(\w+)\s*([+-]?)\s*(\w*)$", text).groups() \
            if re.match(r"^\$(\w+)\s*([+-]?)\s*(\w*)$", text) else (None, "", "")
        regs = snapshot(s.ctl.machine.cpu)
        if name not in regs and name != "fp":
            raise CommandError(f"unknown register {text!r}")
        base = regs["s0" if name == "fp" else name]
        delta = parse_int(off, "offset") if off else 0
        return (base - delta if sign == "-" else base + delta) & ((1 << 64) - 1)
    return resolve(text, s.ctl.symbols, s.ctl.lines)


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
    """`delete [N...]`: delete breakpoints; raises CommandError for unknown numbers."""
    if not args:
        n = s.ctl.delete(None)
        return f"deleted {n} breakpoint{'s' if n != 1 else ''}"
    for a in args:
        s.ctl.delete(parse_int(a, "breakpoint number"))
    return ""


# -- inspection ----------------------------------------------------------------------
def info_registers(s: Session) -> str:
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


def info_breakpoints(s: Session) -> str:
    """`info breakpoints`: one line per breakpoint."""
    if not s.ctl.bps:
        return "No breakpoints or watchpoints."
    return "\n".join(bp.describe() for bp in s.ctl.bps.values())


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


INFO = {
    "registers": (("r", "reg", "regs"), info_registers, "registers and S-mode CSRs (QEMU format)"),
    "mem": (("m",), lambda s: info_mem(s.ctl.machine.mem, s.ctl.machine.cpu.csr("satp")),
            "mapped virtual ranges (QEMU RISC-V format)"),
    "breakpoints": (("b", "break", "watchpoints"), info_breakpoints, "breakpoints and watchpoints"),
    "stop": (("why",), info_stop, "why the machine stopped (with the fault's walk)"),
    "traps": (("trap",), info_traps, "traps being handled, innermost first"),
    "net": (("network", "nic"), lambda s: info_net(s.ctl.machine),
            "NIC rings and counters, links, AoE targets"),
    "swap": ((), lambda s: info_swap(s.ctl.machine), "swap area, swap map summary, AoE"),
    "reserve": (("reserves",), lambda s: info_reserve(s.ctl.machine),
                "memory reserves below min: usage, peak, limit; drops and refusals"),
    "proc": (("procs", "processes"), info_proc, "the kernel's processes and their regions "
             "(* = the one satp maps)"),
}


def c_info(s: Session, args: list[str]) -> str:
    """`info TOPIC`: dispatch to the INFO topics (names, aliases, prefixes)."""
    if len(args) != 1:
        raise CommandError("usage: info registers|mem|breakpoints|stop|traps|net|swap|"
                           "reserve|proc")
    w = args[0].lower()
    for name, (aliases, fn, _) in INFO.items():
        if w == name or w in aliases:
            return fn(s)
    hits = [n for n in INFO if n.startswith(w)]
    if len(hits) == 1:
        return INFO[hits[0]][1](s)
    raise CommandError(f"unknown info topic {args[0]!r} (" + ", ".join(INFO) + ")")


_FMT_RE = re.compile(r"^/(\d*)([xduotcais]?)([bhwg]?)$")
_SIZES = {"b": 1, "h": 2, "w": 4, "g": 8}


def _examine(s: Session, args: list[str], physical: bool) -> str:
    fmt = "/"
    if args and args[0].startswith("/"):
        fmt, args = args[0], args[1:]
    m = _FMT_RE.match(fmt)
    if not m:
        raise CommandError(f"bad format {fmt!r} (e.g. /8xg, /4i, /s)")
    if len(args) != 1:
        raise CommandError(f"usage: {'xp' if physical else 'x'}/FMT ADDRESS")
    count = int(m.group(1) or 1)
    f, size = m.group(2) or "x", _SIZES[m.group(3) or "w"]
    if not 0 < count <= 4096:
        raise CommandError("count must be 1..4096")
    addr = parse_int(args[0], "address") if physical else _loc(s, args[0])
    mem = s.ctl.mem

    def read(a: int, n: int) -> bytes:
        return mem.read_phys(a, n) if physical else mem.read_virt(a, n)

    def label(a: int) -> str:
        hit = None if physical else s.ctl.symbols.lookup(a)
        return f"0x{a:x} <{hit[0]}+{hit[1]}>:" if hit else f"0x{a:x}:"

    if f == "i":
        out = []
        for i in range(count):
            a = addr + 4 * i
            word = int.from_bytes(read(a, 4), "little")
            out.append(format_insn(decode(a, word), s.ctl.symbols, "  "))
        return "\n".join(out)
    if f == "s":
        out = []
        a = addr
        for _ in range(count):
            raw = bytearray()
            while len(raw) < 4096:
                b = read(a + len(raw), 1)
                if b == b"\0":
                    break
                raw += b
            out.append(f"{label(a)}\t{bytes(raw).decode('latin-1')!r}")
            a += len(raw) + 1
        return "\n".join(out)
    if f in "ac":
        size = 8 if f == "a" else 1
    per_line = {1: 8, 2: 8, 4: 4, 8: 2}[size]
    data = read(addr, count * size)
    out, row = [], []
    for i in range(count):
        v = int.from_bytes(data[i * size:(i + 1) * size], "little")
        if f == "x":
            row.append(f"0x{v:0{size * 2}x}")
        elif f == "d":
            row.append(str(v - (1 << (8 * size)) if v >> (8 * size - 1) else v))
        elif f == "u":
            row.append(str(v))
        elif f == "o":
            row.append(f"0{v:o}")
        elif f == "t":
            row.append(f"{v:0{size * 8}b}")
        elif f == "c":
            row.append(repr(chr(v)))
        else:  # a
            row.append(f"0x{v:x}{s.ctl.where(v)}")
        if len(row) == per_line or i == count - 1:
            out.append(f"{label(addr + (i + 1 - len(row)) * size)}\t" + "\t".join(row))
            row = []
    return "\n".join(out)


def c_x(s: Session, args: list[str]) -> str:
    """`x/FMT VA`: examine virtual memory (no side effects)."""
    return _examine(s, args, physical=False)


def c_xp(s: Session, args: list[str]) -> str:
    """`xp/FMT PA`: examine physical memory (RAM only)."""
    return _examine(s, args, physical=True)


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
    for i in range(n):
        a = addr + 4 * i
        try:
            word = s.ctl.mem.read_u(a, 4)
        except MemError as exc:
            out.append(f"   0x{a:x}:  <{exc}>")
            break
        out.append(format_insn(decode(a, word), s.ctl.symbols, "=>" if a == pc else "  "))
    return "\n".join(out)


def c_help(s: Session, args: list[str]) -> str:
    """`help [CMD]`: the command list, or one command's usage."""
    if args:
        c = lookup(args[0])
        al = f" (aliases: {', '.join(c.aliases)})" if c.aliases else ""
        return f"{c.usage}{al}\n  {c.help}"
    out = ["Commands (gdb-style prefixes work: `cont`, `fin`, `i r`):"]
    for c in TABLE:
        al = f"  [{', '.join(c.aliases)}]" if c.aliases else ""
        out.append(f"  {c.usage:<34} {c.help}{al}")
    out.append("info topics: " + ", ".join(f"{n} ({h})" for n, (_, _, h) in INFO.items()))
    return "\n".join(out)


def c_quit(s: Session, args: list[str]) -> str:
    """`quit`: raises SessionEnd."""
    raise SessionEnd()


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
    Command("delete", ("d",), "delete [N...]", "delete breakpoints (all without N)",
            c_delete),
    Command("info", ("i",), "info TOPIC",
            "registers | mem | breakpoints | stop | traps | net | swap | reserve | proc",
            c_info),
    Command("x", (), "x/FMT VA", "examine virtual memory through the MMU (no A/D, no "
            "devices); FMT = count, x d u o t c a i s, b h w g", c_x),
    Command("xp", (), "xp/FMT PA", "examine physical memory (RAM only)", c_xp),
    Command("walk", (), "walk VA [r|w|x] [u|s]", "Sv39 walk of VA: every level, where "
            "and why it stops, the kernel's view", c_walk),
    Command("bt", ("backtrace", "where"), "bt", "frame-pointer backtrace across traps",
            c_bt),
    Command("disas", ("disassemble",), "disas [LOC] [N]", "disassemble a function or N "
            "instructions", c_disas),
    Command("context", ("ctx",), "context", "show the context view again", c_context),
    Command("quit", ("q", "exit"), "quit", "leave the debugger", c_quit, repl_only=True),
)
