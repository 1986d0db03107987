"""gdb's expression language, the C subset a debugger user types: `print`,
`x`, `display`, `whatis` and locations like `$sp+16` evaluate with it.

Values carry C types (emu/guestview/cdecl.py) and follow C's rules as gdb
applies them: integer literals are `int` when they fit (then `unsigned int`,
`long`, `unsigned long`), the usual arithmetic conversions, truncating
division, pointer arithmetic scaled by the pointee's size (1 for `void *`
and functions), pointer - pointer as a `long`. Registers have gdb's RISC-V
types: pc and ra `void (*)()`, sp, gp, tp and fp `void *`, every other
register and CSR `long`. Symbols have their DWARF types; without DWARF they
follow gdb's rules for symbols without debug info (a text symbol is
`<text variable, no debug info>`, a data symbol must be cast).

Supported: integer, character and floating literals; `$reg`, `$N`, `$`,
`$$`, `$$N`, `$_`, `$__` and other convenience variables (void when unset);
unary - + ~ ! * & (`*` of an integer reads an int there, as in gdb); casts
`(T)`, `{T} ADDR`, `sizeof`; `[i]`, `.member`, `->member`; binary * / % +
- << >> < > <= >= == != & ^ | && ||. Not supported (ExprError says so):
local variables and parameters (gdb reads them through DWARF location
lists), assignment, function calls, string literals.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from emu.core.isa import GPR_NAMES
from emu.guestview.cdecl import (
    BOOL,
    BUILTIN,
    CHAR,
    CODE_PTR,
    DATA_PTR,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    NODEBUG_DATA,
    NODEBUG_TEXT,
    UINT,
    ULONG,
    VOID,
    CType,
    Decls,
    pointer,
)
from emu.machine.loader import Symbols

CSR_NAMES = ("sstatus", "sie", "stvec", "scounteren", "sscratch", "sepc", "scause",
             "stval", "sip", "satp")
# gdb's RISC-V register names: x8 is `fp` (s0 an alias), x0..x31 aliases.
REG_ALIASES = {"s0": "fp", **{f"x{i}": ("fp" if n == "s0" else n)
                              for i, n in enumerate(GPR_NAMES)}}
REG_TYPES = {"pc": CODE_PTR, "ra": CODE_PTR, "sp": DATA_PTR, "gp": DATA_PTR,
             "tp": DATA_PTR, "fp": DATA_PTR}


class ExprError(Exception):
    """An expression or command that failed; the message is gdb's, one line.
    `partial` holds output produced before the failure (e.g. by `x`)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True)
class Value:
    """A typed value. `v` is an int (normalised to the type's width and
    sign), a float, or None (void, optimized out, an aggregate in memory).
    `addr` is set for values that live in memory, `reg` for registers,
    `name` for symbols."""

    type: CType
    v: int | float | None
    addr: int | None = None
    reg: str = ""
    name: str = ""
    optimized_out: bool = False


@dataclass
class Env:
    """What evaluation reads: registers by canonical name (None: no such
    register), memory (raises ExprError), symbols, DWARF declarations, the
    value history ($1 is history[0]) and convenience variables."""

    reg: Callable[[str], int | None]
    read: Callable[[int, int], bytes]
    symbols: Symbols
    decls: Decls
    history: list[Value] = field(default_factory=list)
    conv: dict[str, Value] = field(default_factory=dict)


VOID_VALUE = Value(VOID, None)

# -- type helpers ------------------------------------------------------------------
_INTLIKE = ("int", "char", "bool", "enum")


def kind(t: CType) -> str:
    """The kind of `t` seen through typedefs and qualifiers."""
    return t.strip().kind


def is_int(t: CType) -> bool:
    """True for integer-like types (int, char, bool, enum)."""
    return kind(t) in _INTLIKE


def is_scalar(t: CType) -> bool:
    """True for types whose values are a number (integers, floats, pointers)."""
    return kind(t) in (*_INTLIKE, "float", "ptr")


def norm(t: CType, n: int) -> int:
    """`n` reduced to the width and signedness of integer or pointer type `t`."""
    s = t.strip()
    bits = 8 * (s.size or 8)
    n &= (1 << bits) - 1
    signed = s.signed and s.kind != "ptr"
    return n - (1 << bits) if signed and n >> (bits - 1) else n


def _promote(t: CType) -> CType:
    s = t.strip()
    if s.kind in ("char", "bool", "enum") or (s.kind == "int" and s.size < 4):
        return INT
    return s


def _common(a: CType, b: CType) -> CType:
    """C's usual arithmetic conversions for two integer types."""
    a, b = _promote(a), _promote(b)
    size = max(a.size, b.size)
    if a.size == b.size:
        signed = a.signed and b.signed
    else:
        signed = (a if a.size > b.size else b).signed
    return {(4, True): INT, (4, False): UINT, (8, True): LONG}.get((size, signed), ULONG)


def _stride(t: CType) -> int:
    """Pointer arithmetic step of `t` (a pointer type)."""
    tgt = t.strip().target
    if tgt is None or kind(tgt) in ("void", "func", "nodebug"):
        return 1
    return tgt.sizeof or 1


def _int_value(t: CType, n: int) -> Value:
    return Value(t, norm(t, n))


# -- tokens ------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|\d+[eE][+-]?\d+[fF]?)
  | (?P<int>0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)(?P<suffix>[uUlL]*)
  | (?P<char>'(?:\\(?:x[0-9a-fA-F]+|[0-7]{1,3}|.)|[^'\\])')
  | (?P<dollar>\$\$?\w*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<op>->|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>()\[\]{}@.])
  | (?P<string>")
""", re.X)

_ESCAPES = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "e": 27,
            "\\": 92, "'": 39, '"': 34, "?": 63}


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split `text` into (kind, text) tokens. Raises ExprError on junk."""
    out, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if not m:
            raise ExprError(f"Invalid character '{text[i]}' in expression.")
        k = m.lastgroup if m.lastgroup != "suffix" else "int"
        if k == "string":
            raise ExprError("string literals are not supported here")
        out.append((k, m.group(0)))
        i = m.end()
    return out


def _char_literal(tok: str) -> int:
    body = tok[1:-1]
    if not body.startswith("\\"):
        return ord(body) & 0xFF
    esc = body[1:]
    if esc[0] in "01234567":
        return int(esc, 8) & 0xFF
    if esc[0] == "x":
        return int(esc[1:] or "0", 16) & 0xFF
    if esc[0] in _ESCAPES:
        return _ESCAPES[esc[0]]
    raise ExprError(f"Unknown escape sequence in character constant {tok}")


def _int_literal(tok: str) -> Value:
    m = re.match(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)([uUlL]*)$", tok)
    assert m
    digits, suffix = m.groups()
    if digits[:2].lower() == "0x":
        n, based = int(digits, 16), True
    elif digits[:2].lower() == "0b":
        n, based = int(digits[2:], 2), True
    elif len(digits) > 1 and digits[0] == "0":
        if not all(c in "01234567" for c in digits):
            raise ExprError(f"Invalid number \"{tok}\".")
        n, based = int(digits, 8), True
    else:
        n, based = int(digits), False
    s = suffix.lower()
    unsigned, long_ = "u" in s, "l" in s
    order = [t for t in (INT, UINT, LONG, ULONG)
             if (not long_ or t.size == 8) and (not unsigned or not t.signed)
             and (based or unsigned or t.signed or t.size == 8)]
    for t in order:
        if n < (1 << (8 * t.size - (1 if t.signed else 0))):
            return Value(t, n)
    raise ExprError("Numeric constant too large.")


# -- the parser --------------------------------------------------------------------
_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7,
           "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}
_TYPE_WORDS = {"unsigned", "signed", "char", "short", "int", "long", "void", "_Bool",
               "float", "double", "const", "volatile", "struct", "union", "enum"}


class Evaluator:
    """Parse and evaluate one expression against an Env."""

    def __init__(self, env: Env, text: str) -> None:
        self.env = env
        self.toks = tokenize(text)
        self.i = 0

    # -- token stream ------------------------------------------------------------
    def peek(self, ahead: int = 0) -> tuple[str, str]:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise ExprError(f"A syntax error in expression, near `{self.rest()}'.")

    def rest(self) -> str:
        return " ".join(t for _, t in self.toks[max(self.i - 1, 0):])

    # -- grammar -------------------------------------------------------------------
    def parse(self) -> Value:
        """The value of the whole expression."""
        if not self.toks:
            raise ExprError("Argument required (expression to compute).")
        v = self.binary(1)
        if self.peek()[0] != "end":
            self.i += 1
            raise ExprError(f"A syntax error in expression, near `{self.rest()}'.")
        return v

    def binary(self, min_prec: int) -> Value:
        left = self.unary()
        while True:
            k, op = self.peek()
            prec = _BINARY.get(op) if k == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.binary(prec + 1)
            left = binop(self.env, op, left, right)

    def unary(self) -> Value:
        k, t = self.peek()
        if k == "op" and t in ("-", "+", "~", "!", "*", "&"):
            self.take()
            return unop(self.env, t, self.unary())
        if k == "op" and t == "(" and self._type_ahead(1):
            self.take()
            ty = self.typename()
            self.expect(")")
            return cast(self.env, ty, self.unary())
        if k == "op" and t == "{":
            self.take()
            ty = self.typename()
            self.expect("}")
            addr = rvalue(self.env, self.unary())
            if not isinstance(addr.v, int):
                raise ExprError("Invalid cast.")
            return load(self.env, ty, addr.v & (2**64 - 1))
        if k == "ident" and t == "sizeof":
            self.take()
            if self.peek()[1] == "(" and self._type_ahead(1):
                self.take()
                ty = self.typename()
                self.expect(")")
            else:
                ty = self.unary().type
            return Value(ULONG, ty.sizeof)
        return self.postfix()

    def postfix(self) -> Value:
        v = self.primary()
        while self.peek()[0] == "op" and self.peek()[1] in ("[", "@", ".", "->"):
            op = self.take()[1]
            if op == "@":
                raise ExprError("artificial arrays (@) are not supported here")
            if op == "[":
                idx = self.binary(1)
                self.expect("]")
                v = unop(self.env, "*", binop(self.env, "+", v, idx))
                continue
            k, name = self.take()
            if k != "ident":
                raise ExprError(f"A syntax error in expression, near `{self.rest()}'.")
            if op == "->":
                if kind(v.type) != "ptr" or kind(v.type.strip().target or VOID) not in \
                        ("struct", "union"):
                    raise ExprError("Attempt to extract a component of a value that is "
                                    "not a structure pointer.")
                v = unop(self.env, "*", v)
            v = member(self.env, v, name)
        if self.peek()[1] == "(" and self.peek()[0] == "op":
            raise ExprError("calling functions in the guest is not supported")
        return v

    def primary(self) -> Value:
        k, t = self.take()
        if k == "int":
            return _int_literal(t)
        if k == "float":
            f = t.rstrip("fF")
            return Value(FLOAT if f != t else DOUBLE, float(f))
        if k == "char":
            return Value(CHAR, _char_literal(t))
        if k == "dollar":
            return dollar(self.env, t)
        if k == "ident":
            return symbol(self.env, t)
        if t == "(":
            v = self.binary(1)
            self.expect(")")
            return v
        if k == "end":
            raise ExprError("A syntax error in expression, near `'.")
        raise ExprError(f"A syntax error in expression, near `{self.rest()}'.")

    # -- type names ---------------------------------------------------------------
    def _type_ahead(self, ahead: int) -> bool:
        k, t = self.peek(ahead)
        return k == "ident" and (t in _TYPE_WORDS or t in BUILTIN or t in self.env.decls.types)

    def typename(self) -> CType:
        words: list[str] = []
        while self.peek()[0] == "ident" and (self.peek()[1] in _TYPE_WORDS or not words):
            words.append(self.take()[1])
            if words[-1] in ("struct", "union", "enum"):
                words.append(self.take()[1])
                break
        words = [w for w in words if w not in ("const", "volatile")]
        name = " ".join(words)
        ty = BUILTIN.get(name) or self.env.decls.types.get(name)
        if ty is None:
            raise ExprError(f"No symbol \"{name}\" in current context.")
        while self.peek()[1] == "*":
            self.take()
            ty = pointer(ty)
        return ty


# -- primaries ---------------------------------------------------------------------
def register(env: Env, name: str) -> Value | None:
    """The value of register `name` (gdb's names and aliases), or None."""
    canon = REG_ALIASES.get(name, name)
    raw = env.reg("s0" if canon == "fp" else canon)
    if raw is None:
        return None
    t = REG_TYPES.get(canon, LONG)
    return Value(t, norm(t, raw), reg=canon)


def dollar(env: Env, tok: str) -> Value:
    """`$reg`, `$N`, `$`, `$$`, `$$N` or a convenience variable (void when unset)."""
    h = env.history
    if tok == "$":
        return h[-1] if h else VOID_VALUE
    if tok.startswith("$$"):
        back = int(tok[2:]) if tok[2:].isdigit() else 1 if tok == "$$" else None
        if back is not None:
            return h[-1 - back] if 0 <= back < len(h) else VOID_VALUE
    name = tok[1:]
    if name.isdigit():
        n = int(name)
        if not 0 < n <= len(h):
            raise ExprError(f"History has not yet reached ${n}.")
        return h[n - 1]
    r = register(env, name)
    if r is not None:
        return r
    return env.conv.get(name, VOID_VALUE)


def symbol(env: Env, name: str) -> Value:
    """A symbol's value: a DWARF global (in memory), a function, or a symbol
    without debug info. Raises ExprError for unknown names."""
    g = env.decls.vars.get(name)
    if g is not None:
        if g.addr is None:
            return Value(g.type, None, name=name, optimized_out=True)
        return load(env, g.type, g.addr, name)
    addr = env.symbols.by_name.get(name)
    f = env.decls.funcs.get(name)
    if f is not None and addr is not None:
        return Value(f, addr, addr=addr, name=name)
    if addr is None:
        raise ExprError(f"No symbol \"{name}\" in current context.")
    if env.decls.is_text(addr) or not env.decls.sections:
        return Value(NODEBUG_TEXT, addr, addr=addr, name=name)
    return Value(NODEBUG_DATA, None, addr=addr, name=name)


def _find_member(t: CType, name: str, base: int = 0):
    """(byte offset, Member) of field `name`, looking into anonymous members."""
    for m in t.members:
        if m.name == name:
            return base + m.offset, m
        if not m.name and kind(m.type) in ("struct", "union"):
            hit = _find_member(m.type.strip(), name, base + m.offset)
            if hit:
                return hit
    return None


def member(env: Env, v: Value, name: str) -> Value:
    """`v.name`: the field of a struct or union value in memory."""
    t = v.type.strip()
    if t.kind not in ("struct", "union"):
        raise ExprError("Attempt to extract a component of a value that is not a structure.")
    hit = _find_member(t, name)
    if hit is None:
        raise ExprError(f"There is no member named {name}.")
    off, m = hit
    if v.addr is None:
        raise ExprError("value is not in memory")
    if not m.bits:
        return load(env, m.type, v.addr + off)
    raw = int.from_bytes(env.read(v.addr + off, (m.bit + m.bits + 7) // 8), "little")
    n = raw >> m.bit & ((1 << m.bits) - 1)
    if m.type.strip().signed and n >> (m.bits - 1):
        n -= 1 << m.bits
    return Value(m.type, n)


def load(env: Env, t: CType, addr: int, name: str = "") -> Value:
    """The value of type `t` in memory at `addr` (aggregates are not read)."""
    s = t.strip()
    if s.kind in ("struct", "union", "array", "func", "void", "nodebug"):
        return Value(t, addr if s.kind == "func" else None, addr=addr, name=name)
    raw = env.read(addr, s.size)
    if s.kind == "float":
        return Value(t, struct.unpack("<d" if s.size == 8 else "<f", raw)[0], addr=addr,
                     name=name)
    return Value(t, norm(t, int.from_bytes(raw, "little")), addr=addr, name=name)


# -- operations ----------------------------------------------------------------------
def rvalue(env: Env, v: Value) -> Value:
    """`v` as an operand: arrays and functions decay to pointers; a symbol
    without debug info or type is refused as gdb refuses it."""
    k = kind(v.type)
    if v.optimized_out:
        raise ExprError("value has been optimized out")
    if k == "array":
        return Value(pointer(v.type.strip().target or VOID), v.addr)
    if k == "func" or (k == "nodebug" and v.type is NODEBUG_TEXT):
        return Value(pointer(v.type), v.v if v.v is not None else v.addr)
    if k == "nodebug":
        raise ExprError(f"'{v.name}' has unknown type; cast it to its declared type")
    if k in ("struct", "union"):
        raise ExprError("struct and union values are not supported here (use & or x)")
    if k == "void":
        _arith_error()
    return v


def truth(env: Env, v: Value) -> bool:
    """C truthiness of a scalar."""
    v = rvalue(env, v)
    return bool(v.v)


def unop(env: Env, op: str, v: Value) -> Value:
    """Apply unary `op` (- + ~ ! * &) to `v`."""
    if op == "&":
        if v.type is NODEBUG_DATA or v.type is NODEBUG_TEXT or kind(v.type) == "func":
            return Value(pointer(v.type), v.addr)
        if v.addr is None:
            raise ExprError("Attempt to take address of value not located in memory.")
        return Value(pointer(v.type), v.addr)
    if op == "!":
        return Value(INT, int(not truth(env, v)))
    v = rvalue(env, v)
    k = kind(v.type)
    if op == "*":
        if k in _INTLIKE:     # gdb: `*ADDR` on an integer reads an int there
            return load(env, INT, int(v.v or 0) & (2**64 - 1))
        if k != "ptr":
            raise ExprError("Attempt to take contents of a non-pointer value.")
        tgt = v.type.strip().target or VOID
        if kind(tgt) == "void":
            raise ExprError("Attempt to dereference a generic pointer.")
        if kind(tgt) in ("func", "nodebug"):
            return Value(tgt, v.v, addr=int(v.v or 0))
        return load(env, tgt, int(v.v or 0))
    if k == "float":
        return Value(v.type, -v.v if op == "-" else v.v) if op in "-+" else _arith_error()
    if k not in _INTLIKE:
        _arith_error()
    t = _promote(v.type)
    n = int(v.v or 0)
    return _int_value(t, -n if op == "-" else ~n if op == "~" else n)


def _arith_error() -> Value:
    raise ExprError("Argument to arithmetic operation not a number or boolean.")


def binop(env: Env, op: str, a: Value, b: Value) -> Value:
    """Apply binary `op` with C's conversions and gdb's pointer rules."""
    if op in ("&&", "||"):
        r = truth(env, a) and truth(env, b) if op == "&&" else truth(env, a) or truth(env, b)
        return Value(INT, int(r))
    a, b = rvalue(env, a), rvalue(env, b)
    ka, kb = kind(a.type), kind(b.type)
    if ka == "ptr" or kb == "ptr":
        return _pointer_op(op, a, b, ka, kb)
    if ka not in (*_INTLIKE, "float") or kb not in (*_INTLIKE, "float"):
        _arith_error()
    if ka == "float" or kb == "float":
        return _float_op(op, a, b)
    t = _common(a.type, b.type)
    x, y = norm(t, int(a.v or 0)), norm(t, int(b.v or 0))
    if op in ("<<", ">>"):
        t = _promote(a.type)
        x = norm(t, int(a.v or 0))
        return _int_value(t, x << y if op == "<<" else x >> y)
    if op in ("==", "!=", "<", ">", "<=", ">="):
        return Value(INT, int(_compare(op, x, y)))
    if op in ("/", "%"):
        if y == 0:
            raise ExprError("Division by zero")
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        return _int_value(t, q if op == "/" else x - y * q)
    r = {"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y, "^": x ^ y}[op]
    return _int_value(t, r)


def _compare(op: str, x, y) -> bool:
    return {"==": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y,
            ">=": x >= y}[op]


def _pointer_op(op: str, a: Value, b: Value, ka: str, kb: str) -> Value:
    if op in ("==", "!=", "<", ">", "<=", ">=") and ka in ("ptr", *_INTLIKE) \
            and kb in ("ptr", *_INTLIKE):
        m = 2**64 - 1
        return Value(INT, int(_compare(op, int(a.v or 0) & m, int(b.v or 0) & m)))
    if op == "+" and kb == "ptr" and ka in _INTLIKE:
        a, b, ka, kb = b, a, kb, ka
    if op in "+-" and ka == "ptr" and kb in _INTLIKE:
        step = _stride(a.type) * int(b.v or 0)
        return Value(a.type, norm(a.type, int(a.v or 0) + (step if op == "+" else -step)))
    if op == "-" and ka == kb == "ptr":
        return Value(LONG, norm(LONG, int(a.v or 0) - int(b.v or 0)) // _stride(a.type))
    return _arith_error()


def _float_op(op: str, a: Value, b: Value) -> Value:
    x, y = float(a.v or 0), float(b.v or 0)
    if op in ("==", "!=", "<", ">", "<=", ">="):
        return Value(INT, int(_compare(op, x, y)))
    if op not in "+-*/" or len(op) != 1:
        raise ExprError("Integer only operation.")
    if op == "/" and y == 0:
        r = float("inf") if x > 0 else float("-inf") if x < 0 else float("nan")
    else:
        r = {"+": x + y, "-": x - y, "*": x * y, "/": x / (y or 1)}[op]
    t = DOUBLE if kind(a.type) != "float" or kind(b.type) != "float" or \
        max(a.type.sizeof, b.type.sizeof) == 8 else FLOAT
    return Value(t, r)


def cast(env: Env, t: CType, v: Value) -> Value:
    """`(t) v` with C's conversions."""
    k = kind(t)
    if k == "void":
        return Value(t, None)
    if v.type is NODEBUG_DATA:        # gdb: a cast gives a symbol without type its type
        return load(env, t, v.addr or 0, v.name)
    v = rvalue(env, v)
    if k in (*_INTLIKE, "ptr"):
        if k == "bool":
            return Value(BOOL if t.strip() is BOOL else t, int(bool(v.v)))
        return Value(t, norm(t, int(v.v or 0)))
    if k == "float":
        return Value(t, float(v.v or 0))
    raise ExprError("Invalid cast.")


def evaluate(env: Env, text: str) -> Value:
    """Evaluate gdb expression `text`. Raises ExprError (one line)."""
    return Evaluator(env, text).parse()


def parse_type(env: Env, text: str) -> CType | None:
    """The type `text` names (`long`, `struct proc *`, `uint64`), or None if
    it is not a type name."""
    ev = Evaluator(env, text)
    if not ev._type_ahead(0):
        return None
    t = ev.typename()
    return t if ev.peek()[0] == "end" else None


def as_address(env: Env, v: Value) -> int:
    """`v` as a memory address (gdb's value_as_address): functions give their
    address, pointers and integers their value."""
    if kind(v.type) in ("func",) or v.type is NODEBUG_TEXT:
        return int(v.addr if v.addr is not None else v.v or 0)
    v = rvalue(env, v)
    if kind(v.type) == "float":
        raise ExprError("Invalid cast.")
    return int(v.v or 0) & (2**64 - 1)
