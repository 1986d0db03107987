"""The `x` command as gdb has it (gdb manual, "Examining Memory"):
`x/NFU ADDRESS` with a count N (negative: backwards), a format F of
x d u o t a c f s i z and a unit U of b h w g, in any order.

What carries over between `x` commands, as in gdb's printcmd.c: the last
format and unit (initially x and w); `x` with no address continues after
the last unit examined; `x` with neither address nor format reuses the last
count (so an empty line after `x/4xg $sp` shows the next four). `a` takes
the pointer size, `c` defaults to bytes, `f` to the last unit if it is w or
g (else g), `s` to bytes. After each `x`, `$_` is the last address examined
(typed `intN_t *`) and `$__` its contents. Lines hold 8 units of b or h, 4
of w, 2 of g; strings and instructions one each; labels are `<sym+off>`.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emu.debug.disasm import Insn, decode
from emu.debug.expr import Env, ExprError, Value, as_address, evaluate
from emu.debug.valfmt import PRINT_ELEMENTS, Labels, c_string, fmt_bits
from emu.guestview.cdecl import SIZED, pointer

UNITS = {"b": 1, "h": 2, "w": 4, "g": 8}
FORMATS = "xduotacfsiz"
PER_LINE = {1: 8, 2: 8, 4: 4, 8: 2}
MAX_COUNT = 65536


@dataclass
class ExamineState:
    """What gdb remembers between `x` commands."""

    fmt: str = "x"
    size: str = "w"
    count: int = 1
    next_addr: int = 0


@dataclass(frozen=True)
class Spec:
    """A decoded /NFU: count, format letter, unit letter."""

    count: int
    fmt: str
    size: str


def parse_spec(text: str, last: ExamineState) -> Spec:
    """Decode the text after `/` with gdb's defaults. Raises ExprError."""
    m = re.match(r"^(-?\d*)([a-z]*)$", text)
    if not m:
        raise ExprError(f"Invalid number \"{text}\".")
    count = int(m.group(1)) if m.group(1) not in ("", "-") else (-1 if m.group(1) else 1)
    fmt, size = "", ""
    for ch in m.group(2):
        if ch in UNITS:
            size = ch
        else:
            fmt = ch
    fmt = fmt or last.fmt
    if fmt not in FORMATS:
        raise ExprError(f"Undefined output format \"{fmt}\".")
    if not size:
        size = {"a": "g", "c": "b", "s": "b"}.get(fmt, last.size)
        if fmt == "f" and size not in ("w", "g"):
            size = "g"
    if fmt == "a":
        size = "g"
    if fmt == "s" and size != "b":
        raise ExprError("wide strings (x/sh, x/sw) are not supported here")
    return Spec(count, fmt, size)


def gdb_insn_text(ins: Insn, labels: Labels) -> str:
    """`mnemonic\\toperands` as gdb's disassembler lays it out (operands
    without spaces, control targets as `0xADDR <sym+off>`)."""
    ops = ins.op_str.replace(", ", ",")
    if ins.target is not None:
        head, _, _ = ops.rpartition(",")
        tgt = f"0x{ins.target:x}{labels(ins.target)}"
        ops = f"{head},{tgt}" if head else tgt
    return f"{ins.mnemonic}\t{ops}" if ops else ins.mnemonic


def examine(state: ExamineState, spec_text: str | None, expr: str | None, env: Env,
            read: Callable[[int, int], bytes], labels: Labels, pc: int | None,
            remember: bool = True) -> str:
    """Run one `x`: `spec_text` is what follows `/` (None: no format given),
    `expr` the address expression (None: continue). `read(addr, n)` raises
    ExprError for memory it cannot read. Updates `state` (format, unit and
    count only when `remember`: displays do not) and `$_`, `$__` in
    env.conv. Returns the lines. Raises ExprError with the lines so far in
    its `partial`."""
    if spec_text is None:
        spec = Spec(state.count if expr is None else 1, state.fmt, state.size)
    else:
        spec = parse_spec(spec_text, state)
    if not 0 < abs(spec.count) <= MAX_COUNT:
        raise ExprError(f"count must be 1..{MAX_COUNT} (or negative, backwards)")
    addr = as_address(env, evaluate(env, expr)) if expr is not None else state.next_addr
    size = UNITS[spec.size]
    if spec.count < 0:
        if spec.fmt in "si":
            raise ExprError("examining strings or instructions backwards is not supported")
        addr -= size * -spec.count
    lines: list[str] = []
    try:
        last, after = _render(spec, addr, read, labels, pc, lines, env)
    except ExprError as exc:
        raise ExprError(str(exc), "\n".join(lines)) from None
    if remember:
        state.fmt, state.count = spec.fmt, abs(spec.count)
        state.size = "b" if spec.fmt == "s" else spec.size
    state.next_addr = addr if spec.count < 0 else after
    unit = SIZED[1 if spec.fmt in "si" else size]
    env.conv["_"] = Value(pointer(unit), last)
    env.conv["__"] = Value(unit, None) if spec.fmt == "s" else \
        Value(unit, _signed(int.from_bytes(read(last, unit.size), "little"), unit.size),
              addr=last)
    return "\n".join(lines)


def _signed(n: int, size: int) -> int:
    return n - (1 << 8 * size) if n >> (8 * size - 1) else n


def _render(spec: Spec, addr: int, read, labels: Labels, pc: int | None,
            lines: list[str], env: Env) -> tuple[int, int]:
    """Append the lines of one `x`; returns (last unit's address, next address)."""
    n = abs(spec.count)
    if spec.fmt == "i":
        a = addr
        for _ in range(n):
            ins = decode(a, int.from_bytes(read(a, 4), "little"))
            mark = "=> " if a == pc else "   "
            lines.append(f"{mark}0x{a:x}{labels(a)}:\t{gdb_insn_text(ins, labels)}")
            last, a = a, a + ins.size
        return last, a
    if spec.fmt == "s":
        a = last = addr
        for _ in range(n):
            data = bytearray()
            while len(data) < PRINT_ELEMENTS:
                b = read(a + len(data), 1)
                if b == b"\0":
                    break
                data += b
            cut = len(data) == PRINT_ELEMENTS and read(a + len(data), 1) != b"\0"
            lines.append(f"0x{a:x}{labels(a)}:\t{c_string(bytes(data), truncated=cut)}")
            last = a
            a += len(data) + (0 if cut else 1)
        return last, a
    size = UNITS[spec.size]
    per = PER_LINE[size]
    row: list[str] = []
    start = addr
    for i in range(n):
        a = addr + i * size
        if not row:
            start = a
        bits = int.from_bytes(read(a, size), "little")
        row.append(fmt_bits(bits, size, spec.fmt, labels, pad=True))
        if len(row) == per or i == n - 1:
            lines.append(f"0x{start:x}{labels(start)}:\t" + "\t".join(row))
            row = []
    return addr + (n - 1) * size, addr + n * size
