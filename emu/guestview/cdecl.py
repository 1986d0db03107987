"""C declarations of the guest kernel from its DWARF, spelled the way gdb
spells them: the types of global variables and functions, the typedefs and
struct tags a cast may name, and the ELF's allocated sections. The
debugger's `print`, `whatis`, `x` and `display` evaluate expressions with
these types (emu/debug/expr.py).

Only declarations at file scope are read (globals, functions, typedefs,
tags); structs and unions with their members (name, offset, type; bit
fields by bit offset and size). A global whose DWARF
location is not a plain address (`DW_OP_addr`, optionally `+ const`) has no
location here: gdb would evaluate the expression, we report it as
optimized out. A kernel without DWARF yields only the sections, and the
debugger falls back to gdb's rules for symbols without debug info.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
DW_OP_ADDR, DW_OP_PLUS_UCONST = 0x03, 0x23


@dataclass(frozen=True, eq=False)
class CType:
    """A C type. kind: void, int, char, bool, float, enum, ptr, array, struct,
    union, func, typedef, qual (const/volatile: `name`), nodebug (gdb's
    `<text variable, no debug info>` and `<data variable, ...>`).

    `target` is the pointee, element, return, typedef'd or qualified type;
    `params` is None for an unprototyped function; `members` lists a
    struct's or union's fields (filled in after the type is made, so that
    a struct may point to itself)."""

    kind: str
    name: str = ""
    size: int = 0
    signed: bool = False
    target: CType | None = None
    count: int = 0
    params: tuple[CType, ...] | None = None
    varargs: bool = False
    enumerators: tuple[tuple[int, str], ...] = ()
    members: list[Member] = field(default_factory=list)

    def strip(self) -> CType:
        """The type without typedefs and qualifiers."""
        t = self
        while t.kind in ("typedef", "qual") and t.target is not None:
            t = t.target
        return t

    @property
    def spelled(self) -> str:
        """The type as gdb prints it (`int (*)(struct proc *, uint64)`)."""
        return spell(self)

    @property
    def sizeof(self) -> int:
        """Size in bytes (typedefs and qualifiers see through)."""
        s = self.strip()
        if s.kind == "array":
            return (s.target.sizeof if s.target else 0) * s.count
        return s.size


@dataclass(frozen=True)
class Member:
    """A struct or union field: name ("" for an anonymous one), byte offset,
    type; `bits` > 0 for a bit field at bit `bit` (from the byte offset)."""

    name: str
    offset: int
    type: CType
    bits: int = 0
    bit: int = 0


def spell(t: CType, inner: str = "") -> str:
    """C declarator spelling of `t` around `inner` (`*`, `(*)`, a name)."""
    k = t.kind
    if k == "ptr" and t.target is not None:
        tk = t.target.strip().kind if t.target.kind != "nodebug" else "nodebug"
        return spell(t.target, f"(*{inner})" if tk in ("func", "array") else f"*{inner}")
    if k == "array" and t.target is not None:
        return spell(t.target, f"{inner}[{t.count}]")
    if k == "func":
        if t.params is None:
            plist = "()"
        elif not t.params and not t.varargs:
            plist = "(void)"
        else:
            plist = "(" + ", ".join(spell(p) for p in t.params) \
                + (", ..." if t.varargs else "") + ")"
        return spell(t.target or VOID, f"{inner}{plist}")
    if k == "qual" and t.target is not None:
        if t.target.strip().kind == "ptr" and t.target.kind == "ptr":
            return spell(t.target.target or VOID, f"* {t.name}" + (f" {inner}" if inner
                                                                    else ""))
        return f"{t.name} {spell(t.target, inner)}"
    base = {"struct": "struct ", "union": "union ", "enum": "enum "}.get(k, "") + t.name
    return f"{base} {inner}" if inner else base


def _int(name: str, size: int, signed: bool, kind: str = "int") -> CType:
    return CType(kind, name, size, signed)


VOID = CType("void", "void", 1)
CHAR = _int("char", 1, False, "char")            # RISC-V: plain char is unsigned
SCHAR = _int("signed char", 1, True, "char")
UCHAR = _int("unsigned char", 1, False, "char")
SHORT, USHORT = _int("short", 2, True), _int("unsigned short", 2, False)
INT, UINT = _int("int", 4, True), _int("unsigned int", 4, False)
LONG, ULONG = _int("long", 8, True), _int("unsigned long", 8, False)
LLONG, ULLONG = _int("long long", 8, True), _int("unsigned long long", 8, False)
BOOL = CType("bool", "_Bool", 1)
FLOAT, DOUBLE = CType("float", "float", 4, True), CType("float", "double", 8, True)
SIZED = {1: _int("int8_t", 1, True), 2: _int("int16_t", 2, True),
         4: _int("int32_t", 4, True), 8: _int("int64_t", 8, True)}
NODEBUG_TEXT = CType("nodebug", "<text variable, no debug info>", 1)
NODEBUG_DATA = CType("nodebug", "<data variable, no debug info>", 1)


def pointer(t: CType) -> CType:
    """Pointer to `t`."""
    return CType("ptr", size=8, target=t)


CODE_PTR = pointer(CType("func", target=VOID, params=None))   # gdb's `void (*)()`
DATA_PTR = pointer(VOID)                                       # gdb's `void *`

# Type names a cast may use without DWARF (C keywords in gdb's canonical order).
BUILTIN: dict[str, CType] = {
    "void": VOID, "char": CHAR, "signed char": SCHAR, "unsigned char": UCHAR,
    "short": SHORT, "short int": SHORT, "signed short": SHORT, "unsigned short": USHORT,
    "unsigned short int": USHORT, "int": INT, "signed": INT, "signed int": INT,
    "unsigned": UINT, "unsigned int": UINT, "long": LONG, "long int": LONG,
    "signed long": LONG, "unsigned long": ULONG, "unsigned long int": ULONG,
    "long long": LLONG, "long long int": LLONG, "unsigned long long": ULLONG,
    "unsigned long long int": ULLONG, "_Bool": BOOL, "float": FLOAT, "double": DOUBLE,
    **{t.name: t for t in SIZED.values()},
    **{f"u{t.name}": _int(f"u{t.name}", t.size, False) for t in SIZED.values()},
}


@dataclass(frozen=True)
class Global:
    """A global variable: its type and address (None: no plain location)."""

    name: str
    type: CType
    addr: int | None


@dataclass
class Decls:
    """What the kernel's DWARF declares at file scope, plus its sections."""

    vars: dict[str, Global] = field(default_factory=dict)
    funcs: dict[str, CType] = field(default_factory=dict)
    types: dict[str, CType] = field(default_factory=dict)   # typedefs, "struct X", ...
    sections: list[tuple[int, int, bool]] = field(default_factory=list)  # [lo, hi), exec
    sym_sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> [lo, hi)
    unsized_data: set[str] = field(default_factory=set)   # size-0 symbols outside text

    def in_section(self, addr: int) -> bool:
        """True if `addr` lies in an allocated section of the image."""
        return any(lo <= addr < hi for lo, hi, _ in self.sections)

    def is_text(self, addr: int) -> bool:
        """True if `addr` lies in an executable section."""
        return any(lo <= addr < hi and x for lo, hi, x in self.sections)

    def names(self, name: str, addr: int) -> bool:
        """True if symbol `name` may name `addr` in a `<sym+off>` label, by
        gdb's rules: only addresses of its own section (`etext`, defined at
        the end of .text, does not name the start of .rodata), and never a
        data symbol without a size (a label). Unknown symbols may."""
        sec = self.sym_sections.get(name)
        return (sec is None or sec[0] <= addr < sec[1]) and name not in self.unsized_data


class _Reader:
    """DIE -> CType, memoised by DIE offset."""

    def __init__(self) -> None:
        self.memo: dict[int, CType] = {}

    def type_of(self, die) -> CType:
        """The CType of a DIE's DW_AT_type (void when absent)."""
        if "DW_AT_type" not in die.attributes:
            return VOID
        return self.convert(die.get_DIE_from_attribute("DW_AT_type"))

    def convert(self, die, depth: int = 0) -> CType:
        """The CType a type DIE describes."""
        hit = self.memo.get(die.offset)
        if hit is not None:
            return hit
        if depth > 32:
            return VOID
        a = die.attributes
        name = _name(die)
        size = a["DW_AT_byte_size"].value if "DW_AT_byte_size" in a else 0
        tag = die.tag
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            kind = "union" if tag == "DW_TAG_union_type" else "struct"
            t = CType(kind, name or "{...}", size)
            self.memo[die.offset] = t        # before the members: they may point back
            t.members.extend(self._members(die, depth))
            return t
        if tag == "DW_TAG_base_type":
            enc = a["DW_AT_encoding"].value if "DW_AT_encoding" in a else 0
            # DW_ATE_boolean 2, float 4, signed 5, signed_char 6, unsigned 7, unsigned_char 8
            kind = {2: "bool", 4: "float", 6: "char", 8: "char"}.get(enc, "int")
            t = CType(kind, name, size, enc in (4, 5, 6))
        elif tag == "DW_TAG_enumeration_type":
            enums = tuple((c.attributes["DW_AT_const_value"].value, _name(c))
                          for c in die.iter_children() if c.tag == "DW_TAG_enumerator")
            t = CType("enum", name or "{...}", size or 4, True, enumerators=enums)
        elif tag == "DW_TAG_pointer_type":
            t = CType("ptr", size=8, target=self._sub(die, depth))
        elif tag == "DW_TAG_array_type":
            count = 0
            for sub in die.iter_children():
                if sub.tag == "DW_TAG_subrange_type":
                    sa = sub.attributes
                    if "DW_AT_count" in sa:
                        count = sa["DW_AT_count"].value
                    elif "DW_AT_upper_bound" in sa:
                        count = sa["DW_AT_upper_bound"].value + 1
                    break
            t = CType("array", target=self._sub(die, depth), count=count)
        elif tag == "DW_TAG_typedef":
            t = CType("typedef", name, target=self._sub(die, depth))
        elif tag in ("DW_TAG_const_type", "DW_TAG_volatile_type"):
            q = "const" if tag == "DW_TAG_const_type" else "volatile"
            t = CType("qual", q, target=self._sub(die, depth))
        elif tag in ("DW_TAG_subroutine_type", "DW_TAG_subprogram"):
            t = self.function(die, depth)
        else:
            t = VOID
        self.memo[die.offset] = t
        return t

    def _members(self, die, depth: int) -> list[Member]:
        out = []
        for m in die.iter_children():
            if m.tag != "DW_TAG_member":
                continue
            a = m.attributes
            loc = a.get("DW_AT_data_member_location")
            off = loc.value if loc is not None and isinstance(loc.value, int) else 0
            bits, bit = (a["DW_AT_bit_size"].value if "DW_AT_bit_size" in a else 0), 0
            if "DW_AT_data_bit_offset" in a:
                off, bit = divmod(a["DW_AT_data_bit_offset"].value, 8)
            out.append(Member(_name(m), off, self._sub(m, depth), bits, bit))
        return out

    def _sub(self, die, depth: int) -> CType:
        if "DW_AT_type" not in die.attributes:
            return VOID
        return self.convert(die.get_DIE_from_attribute("DW_AT_type"), depth + 1)

    def function(self, die, depth: int = 0) -> CType:
        """The function type of a subprogram or subroutine-type DIE."""
        params, varargs = [], False
        for c in die.iter_children():
            if c.tag == "DW_TAG_formal_parameter":
                params.append(self._sub(c, depth))
            elif c.tag == "DW_TAG_unspecified_parameters":
                varargs = True
        proto = "DW_AT_prototyped" in die.attributes
        return CType("func", target=self._sub(die, depth),
                     params=tuple(params) if proto or params else None, varargs=varargs)


def _name(die) -> str:
    a = die.attributes.get("DW_AT_name")
    if a is None:
        return ""
    v = a.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _location(die) -> int | None:
    """The address of a plain DW_OP_addr [DW_OP_plus_uconst N] location."""
    a = die.attributes.get("DW_AT_location")
    if a is None or not isinstance(a.value, list) or len(a.value) < 9 \
            or a.value[0] != DW_OP_ADDR:
        return None
    ops = a.value
    addr = int.from_bytes(bytes(ops[1:9]), "little")
    rest = ops[9:]
    if not rest:
        return addr
    if rest[0] == DW_OP_PLUS_UCONST:
        n, shift = 0, 0
        for i, b in enumerate(rest[1:], 1):
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return addr + n if i == len(rest) - 1 else None
    return None


def read_decls(path: str) -> Decls:
    """Read the declarations and sections of the ELF at `path`. A file that
    cannot be read or has no DWARF gives what could be read (maybe nothing)."""
    out = Decls()
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            ranges: dict[int, tuple[int, int, bool]] = {}
            for i, s in enumerate(elf.iter_sections()):
                if s["sh_flags"] & SHF_ALLOC and s["sh_size"]:
                    sec = (s["sh_addr"], s["sh_addr"] + s["sh_size"],
                           bool(s["sh_flags"] & SHF_EXECINSTR))
                    out.sections.append(sec)
                    ranges[i] = sec
            symtab = elf.get_section_by_name(".symtab")
            for sym in symtab.iter_symbols() if symtab is not None else ():
                shndx = sym["st_shndx"]
                if sym.name and isinstance(shndx, int) and shndx in ranges:
                    lo, hi, text = ranges[shndx]
                    out.sym_sections.setdefault(sym.name, (lo, hi))
                    if not sym["st_size"] and not text:
                        out.unsized_data.add(sym.name)
            if elf.has_dwarf_info():
                _read_dwarf(elf.get_dwarf_info(), out)
    except (OSError, ELFError, ValueError, KeyError, AttributeError):
        pass
    return out


def _read_dwarf(dw, out: Decls) -> None:
    rd = _Reader()
    for cu in dw.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            tag, a = die.tag, die.attributes
            spec = die.get_DIE_from_attribute("DW_AT_specification") \
                if "DW_AT_specification" in a else \
                die.get_DIE_from_attribute("DW_AT_abstract_origin") \
                if "DW_AT_abstract_origin" in a else die
            name = _name(spec)
            if not name:
                continue
            if tag == "DW_TAG_variable" and "DW_AT_declaration" not in a:
                if name not in out.vars or out.vars[name].addr is None:
                    out.vars[name] = Global(name, rd.type_of(spec), _location(die))
            elif tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in a:
                out.funcs.setdefault(name, rd.function(spec))
            elif tag == "DW_TAG_typedef":
                out.types.setdefault(name, rd.convert(die))
            elif tag in ("DW_TAG_structure_type", "DW_TAG_union_type",
                         "DW_TAG_enumeration_type") and "DW_AT_declaration" not in a:
                kw = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union",
                      "DW_TAG_enumeration_type": "enum"}[tag]
                out.types.setdefault(f"{kw} {name}", rd.convert(die))
