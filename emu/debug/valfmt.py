"""How gdb prints values: `print`'s natural format and its /x /z /o /t /d /u
/c /a /f /s letters, the units of `x`, characters and strings with gdb's
escapes (`'\\317'`, `"\\033"`), repeats (`'\\000' <repeats 11 times>`) and its
200-element limit, and `<symbol+offset>` labels.

What gdb does, checked against gdb 13 on this target (docs/debugging.md):
`print/x` does not pad, `x/x` pads to the unit size, `x/t` pads, `print/t`
does not; /o prefixes a 0 except for zero; /c shows a signed byte and the
character; doubles print with 17 significant digits, floats with 9.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from emu.debug.expr import Env, ExprError, Value, kind, load, member
from emu.guestview.cdecl import SIZED, CType, Decls
from emu.machine.loader import Symbols

PRINT_ELEMENTS = 200      # gdb's `set print elements`
REPEAT_THRESHOLD = 10     # gdb's `set print repeats`
_NAMED = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


@dataclass
class Labels:
    """Names addresses as gdb does: `<sym>` / `<sym+off>` for addresses in
    the image's sections, by a symbol of the same section (a stack address
    gets no label)."""

    symbols: Symbols
    decls: Decls

    def __call__(self, addr: int) -> str:
        """` <sym+off>` for `addr`, or ""."""
        if self.decls.sections and not self.decls.in_section(addr):
            return ""
        hit = self.symbols.lookup(addr)
        if hit is None or not self.decls.names(hit[0], addr):
            return ""
        return f" <{hit[0]}+{hit[1]}>" if hit[1] else f" <{hit[0]}>"


# -- characters and strings -----------------------------------------------------------
def char_escape(c: int, quote: str) -> str:
    """One byte as gdb writes it inside `quote` (' or ")."""
    if chr(c) == quote or c == 92:
        return "\\" + chr(c)
    if c in _NAMED:
        return _NAMED[c]
    if 32 <= c < 127:
        return chr(c)
    return f"\\{c:03o}"


def char_repr(c: int) -> str:
    """`'A'`, `'\\n'`, `'\\317'`: a byte as a character literal."""
    return "'" + char_escape(c & 0xFF, "'") + "'"


def _glyphs(data: bytes) -> list[tuple[bytes, str]]:
    """Split `data` into (raw, text inside double quotes) pieces: printable
    UTF-8 sequences stay characters (gdb prints in the host charset), other
    bytes are escaped one by one."""
    out, i = [], 0
    while i < len(data):
        b = data[i]
        n = 2 if 0xC2 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF5 else 1
        if n > 1:
            try:
                ch = data[i:i + n].decode("utf-8")
                if ch.isprintable():
                    out.append((data[i:i + n], ch))
                    i += n
                    continue
            except UnicodeDecodeError:
                pass
        out.append((data[i:i + 1], char_escape(b, '"')))
        i += 1
    return out


def c_string(data: bytes, truncated: bool = False) -> str:
    """gdb's rendering of a char sequence: quoted runs, long repeats as
    `'c' <repeats N times>`, `...` when `truncated` or over the limit."""
    pieces = _glyphs(data[:PRINT_ELEMENTS])
    truncated = truncated or len(data) > PRINT_ELEMENTS
    parts: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(pieces):
        j = i
        while j < len(pieces) and pieces[j][0] == pieces[i][0]:
            j += 1
        if j - i > REPEAT_THRESHOLD:
            if run:
                parts.append('"' + "".join(run) + '"')
                run = []
            raw = pieces[i][0]
            lit = "'" + (char_escape(raw[0], "'") if len(raw) == 1 else pieces[i][1]) + "'"
            parts.append(f"{lit} <repeats {j - i} times>")
        else:
            run.extend(p[1] for p in pieces[i:j])
        i = j
    if run or not parts:
        parts.append('"' + "".join(run) + '"')
    return ", ".join(parts) + ("..." if truncated else "")


# -- numbers ------------------------------------------------------------------------
def fmt_float(x: float, size: int) -> str:
    """A float (size 4) or double (8) as gdb prints it."""
    if math.isnan(x):
        bits = struct.unpack("<Q", struct.pack("<d", x))[0]
        return ("-" if bits >> 63 else "") + f"nan(0x{bits & ((1 << 52) - 1):x})"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.{9 if size == 4 else 17}g}"


def _bits_float(bits: int, size: int) -> float:
    return struct.unpack("<f" if size == 4 else "<d", bits.to_bytes(size, "little"))[0]


def _signed(bits: int, size: int) -> int:
    return bits - (1 << (8 * size)) if bits >> (8 * size - 1) else bits


def fmt_bits(bits: int, size: int, f: str, labels: Labels, pad: bool) -> str:
    """A `size`-byte value in format letter `f` (x z o t d u c a f); `pad`
    zero-pads x and t to the size as `x` does (print does not)."""
    if f == "z" or (f == "x" and pad):
        return f"0x{bits:0{size * 2}x}"
    if f == "x":
        return f"0x{bits:x}"
    if f == "o":
        return f"0{bits:o}" if bits else "0"
    if f == "t":
        return f"{bits:0{size * 8}b}" if pad else f"{bits:b}"
    if f == "d":
        return str(_signed(bits, size))
    if f == "u":
        return str(bits)
    if f == "c":
        b = bits & 0xFF
        return f"{_signed(b, 1)} {char_repr(b)}"
    if f == "a":
        return f"0x{bits:x}{labels(bits)}"
    if f == "f":
        return fmt_float(_bits_float(bits, size), size) if size in (4, 8) \
            else str(_signed(bits, size))
    raise ExprError(f"Undefined output format \"{f}\".")


# -- values -------------------------------------------------------------------------
ReadFn = Callable[[int, int], bytes]


def format_value(v: Value, f: str, labels: Labels, read: ReadFn, top: bool = True) -> str:
    """`v` as `print/f` shows it (f = "" for the natural format); inside an
    aggregate (`top` False) pointers lose their `(type)` prefix, as in gdb."""
    if v.optimized_out:
        return "<optimized out>"
    k = kind(v.type)
    if k == "void":
        return "void"
    if k == "array":
        return _array(v, f, labels, read)
    if k in ("struct", "union"):
        return _struct(v, f, labels, read)
    if k == "nodebug" and v.v is None:
        raise ExprError(f"'{v.name}' has unknown type; cast it to its declared type")
    if f == "i":
        raise ExprError('Format letter "i" is meaningless in "print" command.')
    if f in ("", "s"):
        return _natural(v, labels, read, top)
    if k in ("func", "nodebug"):      # gdb: a function's value is its first byte
        v = Value(SIZED[1], read(int(v.v or 0), 1)[0])
        k = "int"
    size = 8 if k == "ptr" else v.type.sizeof or 8
    if k == "float":
        if f == "f":
            return fmt_float(float(v.v or 0), size)
        bits = int.from_bytes(struct.pack("<f" if size == 4 else "<d", float(v.v or 0)),
                              "little")
    else:
        bits = int(v.v or 0) & ((1 << (8 * size)) - 1)
    return fmt_bits(bits, size, f, labels, pad=False)


def _natural(v: Value, labels: Labels, read: ReadFn, top: bool = True) -> str:
    t = v.type.strip()
    k = t.kind
    if k in ("func", "nodebug"):
        addr = int(v.v or 0)
        return f"{{{v.type.spelled}}} 0x{addr:x}{labels(addr)}"
    if k == "float":
        return fmt_float(float(v.v or 0), t.size)
    if k == "bool":
        return "true" if v.v else "false"
    if k == "char":
        return f"{v.v} {char_repr(int(v.v or 0))}"
    if k == "enum":
        return next((n for val, n in t.enumerators if val == v.v), str(v.v))
    if k == "ptr":
        addr = int(v.v or 0)
        text = (f"({v.type.spelled}) " if top else "") + f"0x{addr:x}{labels(addr)}"
        tgt = t.target.strip() if t.target else None
        if tgt is not None and tgt.kind == "char" and addr:
            text += " " + _cstring_at(addr, read)
        return text
    return str(v.v)


def _cstring_at(addr: int, read: ReadFn) -> str:
    """The NUL-terminated string at `addr` as gdb appends it to a char *."""
    data = bytearray()
    try:
        while len(data) <= PRINT_ELEMENTS:
            b = read(addr + len(data), 1)
            if b == b"\0":
                break
            data += b
    except ExprError:
        if not data:
            return f"<error: Cannot access memory at address 0x{addr:x}>"
    return c_string(bytes(data))


def _reader(labels: Labels, read: ReadFn) -> Env:
    """An Env that can load members and elements (no registers needed)."""
    return Env(reg=lambda _n: None, read=read, symbols=labels.symbols, decls=labels.decls)


def _array(v: Value, f: str, labels: Labels, read: ReadFn) -> str:
    t = v.type.strip()
    elem: CType = t.target  # type: ignore[assignment]
    if v.addr is None:
        raise ExprError("array not in memory")
    esize = elem.sizeof
    n = min(t.count, PRINT_ELEMENTS)
    if kind(elem) == "char" and esize == 1 and f in ("", "s"):
        data = read(v.addr, n)
        cut = t.count > n
        if not cut and data.endswith(b"\0"):
            data = data[:-1]
        return c_string(data, truncated=cut)
    env = _reader(labels, read)
    items = [format_value(load(env, elem, v.addr + i * esize), f, labels, read, top=False)
             for i in range(n)]
    parts, i = [], 0
    while i < len(items):
        j = i
        while j < len(items) and items[j] == items[i]:
            j += 1
        if j - i > REPEAT_THRESHOLD:
            parts.append(f"{items[i]} <repeats {j - i} times>")
        else:
            parts.extend(items[i:j])
        i = j
    return "{" + ", ".join(parts) + ("..." if t.count > n else "") + "}"


def _struct(v: Value, f: str, labels: Labels, read: ReadFn) -> str:
    """`{a = 1, b = {...}}`: every member, formatted with `f`."""
    if v.addr is None:
        raise ExprError("value is not in memory")
    env = _reader(labels, read)
    parts = []
    for m in v.type.strip().members:
        mv = member(env, v, m.name) if m.name else load(env, m.type, v.addr + m.offset)
        text = format_value(mv, f, labels, read, top=False)
        parts.append(f"{m.name} = {text}" if m.name else text)
    return "{" + ", ".join(parts) + "}"
