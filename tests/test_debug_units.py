"""Debugger building blocks without a running guest: `info mem` format and
merging, fault filters, the exact-address decoder, disassembly targets,
symbol resolution, the command table's error handling, and the pieces of
the gdb habits: C types as gdb spells them, the expression evaluator's C
rules, gdb's string and number formats, x's defaults."""

from __future__ import annotations

import pytest

from emu.core.isa import access_address
from emu.core.memory import PhysMem
from emu.debug.commands import CommandError, lookup
from emu.debug.disasm import control_target, decode, is_call
from emu.debug.examine import ExamineState, parse_spec
from emu.debug.expr import Env, ExprError, evaluate
from emu.debug.faults import FaultFilter, FaultInfo, FilterError, parse_fault_filter
from emu.debug.infomem import HEADER, info_mem
from emu.debug.valfmt import Labels, c_string, fmt_bits, fmt_float, format_value
from emu.guestview.cdecl import CHAR, INT, VOID, CType, Decls, pointer
from emu.guestview.symbols import LocationError, resolve
from emu.machine.loader import Symbols
from emu.mmu.pte import A, D, G, R, U, V, W, X, make_pte, make_satp

RAM = 0x8000_0000


def _tables() -> tuple[PhysMem, int]:
    """A small Sv39 table: three contiguous user pages, one lone page, a
    2 MiB kernel megapage and a page in the upper (sign-extended) half."""
    mem = PhysMem(RAM, 4 << 20)
    root, l1, l0, l1hi, l0hi = (RAM + 0x10000 + i * 0x1000 for i in range(5))
    mem.write_u64(root + 0 * 8, make_pte(l1, V))
    mem.write_u64(l1 + 0 * 8, make_pte(l0, V))
    for i, va_page in enumerate((1, 2, 3)):        # VA 0x1000..0x3fff -> PA +0x100000..
        mem.write_u64(l0 + va_page * 8, make_pte(RAM + 0x100000 + i * 0x1000, V | R | W | U | A))
    mem.write_u64(l0 + 5 * 8, make_pte(RAM + 0x200000, V | R | X | U | A))   # VA 0x5000
    mem.write_u64(l1 + 1 * 8, make_pte(RAM + 0x200000, V | R | W | X | G | A | D))  # 2 MiB
    mem.write_u64(root + 511 * 8, make_pte(l1hi, V))
    mem.write_u64(l1hi + 511 * 8, make_pte(l0hi, V))
    mem.write_u64(l0hi + 511 * 8, make_pte(RAM + 0x300000, V | R | G | A))
    return mem, make_satp(root)


def test_info_mem_bare_says_no_translation():
    assert info_mem(PhysMem(RAM, 4 << 20), 0) == "No translation or protection"


def test_info_mem_qemu_format_and_merging():
    mem, satp = _tables()
    lines = info_mem(mem, satp).splitlines()
    assert "\n".join(lines[:2]) == HEADER
    assert lines[2:] == [
        "0000000000001000 0000000080100000 0000000000003000 rw-u-a-",
        "0000000000005000 0000000080200000 0000000000001000 r-xu-a-",
        "0000000000200000 0000000080200000 0000000000200000 rwx-gad",
        "fffffffffffff000 0000000080300000 0000000000001000 r---ga-",
    ]


def _fault(**kw) -> FaultInfo:
    base = dict(seq=1, cause=13, tval=0x800000, epc=0x400000, va=0x800008, access="r",
                priv=0, satp=0x8000000000080216, icount=10, pid=2, pname="hello")
    base.update(kw)
    return FaultInfo(**base)


def test_fault_filters_parse_and_match():
    f = parse_fault_filter(["0x800000-0x801000", "r", "user", "nth=2"])
    assert (f.lo, f.hi, f.access, f.priv, f.nth) == (0x800000, 0x801000, "r", 0, 2)
    assert f.matches(_fault())
    assert not f.matches(_fault(va=0x801000))
    assert not f.matches(_fault(access="w", cause=15))
    assert not f.matches(_fault(priv=1))
    assert parse_fault_filter(["0x800008"]).hi == 0x801000          # one page
    assert parse_fault_filter(["0x1000+0x20"]).hi == 0x1020
    assert parse_fault_filter(["pid=3"]).matches(_fault()) is False
    assert parse_fault_filter(["satp=0x8000000000080216", "kernel"]).matches(_fault()) is False
    assert not FaultFilter().matches(_fault(cause=8))       # ecall is not a fault...
    assert parse_fault_filter(["cause=8"]).matches(_fault(cause=8))   # ...unless asked
    assert "nth=2" in f.describe()


@pytest.mark.parametrize("words, needle", [
    (["bogus"], "unknown fault filter"), (["nth=0"], "starts at 1"),
    (["0x2000-0x1000"], "empty address range"), (["cause=x"], "bad cause"),
])
def test_fault_filter_errors_are_one_line(words, needle):
    with pytest.raises(FilterError, match=needle):
        parse_fault_filter(words)


def test_access_address_decodes_loads_stores_and_amos():
    regs = {5: 0x800000, 10: 0x1000}
    reg = regs.get
    assert access_address(0x0082B383, reg) == 0x800008        # ld t2, 8(t0)
    assert access_address(0xFE553C23, reg) == 0x1000 - 8      # sd t0, -8(a0)
    assert access_address(0x0C55302F, reg) == 0x1000          # amoswap.d.aqrl zero,t0,(a0)
    assert access_address(0x00000013, reg) is None            # nop


def test_control_targets_and_calls():
    assert control_target(0x1000, 0x0080006F) == 0x1008       # j +8
    assert control_target(0x1000, 0xFE000EE3) == 0x0FFC       # beqz zero, -4
    assert control_target(0x1000, 0x00000013) is None
    assert is_call(0x008000EF) and not is_call(0x0080006F)    # jal ra vs j
    assert decode(0x1000, 0x00000013).text == "nop"
    assert decode(0x1000, 0xFFFFFFFF).mnemonic == ".word"


def test_symbol_resolution():
    syms = Symbols()
    syms.add("kalloc", 0x80200158, 100)
    syms.finish()
    assert resolve("kalloc", syms) == 0x80200158
    assert resolve("kalloc+0x10", syms) == 0x80200168
    assert resolve("*0x80200000", syms) == 0x80200000
    for bad in ("nosuch", "0xzz", ""):
        with pytest.raises(LocationError):
            resolve(bad, syms)


def test_command_lookup_names_aliases_prefixes():
    assert lookup("c").name == "continue"
    assert lookup("cont").name == "continue"
    assert lookup("si").name == "stepi"
    assert lookup("fin").name == "finish"
    assert lookup("i").name == "info"
    with pytest.raises(CommandError, match="ambiguous"):
        lookup("r")                        # restart, run-to, rwatch
    with pytest.raises(CommandError, match="unknown command"):
        lookup("frobnicate")


# -- the gdb habits' building blocks ------------------------------------------------------
def _env(mem: bytes = b"", base: int = 0x1000) -> Env:
    def read(addr: int, n: int) -> bytes:
        if not base <= addr and addr + n <= base + len(mem):
            raise ExprError(f"Cannot access memory at address 0x{addr:x}")
        return mem[addr - base:addr - base + n]
    regs = {"sp": 0x1008, "a0": (1 << 64) - 5, "pc": 0x2000}
    return Env(reg=regs.get, read=read, symbols=Symbols(), decls=Decls())


def _p(env: Env, text: str, fmt: str = "") -> str:
    return format_value(evaluate(env, text), fmt, Labels(env.symbols, env.decls), env.read)


def test_c_types_are_spelled_as_gdb_spells_them():
    func = CType("func", target=INT, params=(pointer(CHAR), INT), varargs=True)
    assert pointer(func).spelled == "int (*)(char *, int, ...)"
    assert func.spelled == "int (char *, int, ...)"
    assert pointer(CType("array", target=CType("struct", "proc", 512), count=32)).spelled == \
        "struct proc (*)[32]"
    assert pointer(pointer(CHAR)).spelled == "char **"
    assert CType("qual", "volatile", target=CType("typedef", "uint64", target=INT)).spelled == \
        "volatile uint64"
    assert pointer(CType("func", target=VOID, params=())).spelled == "void (*)(void)"


@pytest.mark.parametrize("expr, want", [
    ("2147483647 + 1", "-2147483648"), ("2147483648", "2147483648"),
    ("0xffffffff", "4294967295"), ("-1 + 0xffffffff", "4294967294"), ("-7 / 2", "-3"),
    ("-7 % 2", "-1"), ("7 % -2", "1"), ("1 << 4 | 1", "17"), ("3 * (4 + 5)", "27"),
    ("$a0", "-5"), ("$a0 * 2 + 10", "0"), ("(unsigned char)300", "44 ','"), ("'\\n'", "10 '\\n'"),
    ("$sp + 8", "(void *) 0x1010"), ("(long *)$sp + 1", "(long *) 0x1010"),
    ("(long *)$sp - (long *)0x1000", "1"), ("$sp > 0x1000", "1"), ("!$sp", "0"),
    ("*(int *)$sp", "2"), ("((short *)$sp)[1]", "0"), ("{char}$sp", "2 '\\002'"),
    ("1.5 * 2", "3"), ("sizeof(long)", "8"), ("$pc", "(void (*)()) 0x2000"),
])
def test_expressions_follow_c_and_gdb(expr, want):
    env = _env(bytes([0] * 8 + [2, 0, 0, 0, 7, 0, 0, 0]))
    assert _p(env, expr) == want


@pytest.mark.parametrize("expr, needle", [
    ("1 +", "A syntax error"), ("nosuch", 'No symbol "nosuch"'), ("$sp * 2", "not a number"),
    ("*$sp", "generic pointer"), ("*(long *)0", "Cannot access memory at address 0x0"),
    ("1 / 0", "Division by zero"), ("$sp.x", "not a structure"), ("f(1)", "No symbol"),
    ('"s"', "string literals"), ("&$sp", "not located in memory"), ("$9", "History"),
])
def test_expression_errors_are_gdbs_one_liners(expr, needle):
    with pytest.raises(ExprError) as exc:
        _p(_env(bytes(16)), expr)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_print_formats_and_history():
    env = _env(bytes(16))
    assert [_p(env, "-1", f) for f in "xzotduc"] == [
        "0xffffffff", "0xffffffff", "037777777777", "11111111111111111111111111111111",
        "-1", "4294967295", "-1 '\\377'"]
    assert _p(env, "0", "o") == "0" and _p(env, "0", "t") == "0"
    assert _p(env, "3", "f") == "4.20389539e-45" and _p(env, "1.5", "x") == "0x3ff8000000000000"
    with pytest.raises(ExprError, match='"i" is meaningless'):
        _p(env, "1", "i")
    assert fmt_bits(5, 2, "x", Labels(Symbols(), Decls()), pad=True) == "0x0005"
    assert fmt_bits(5, 1, "t", Labels(Symbols(), Decls()), pad=True) == "00000101"
    assert fmt_float(float("nan"), 8) == "nan(0x8000000000000)" and fmt_float(0.0, 8) == "0"


def test_strings_print_with_gdbs_escapes_repeats_and_limit():
    assert c_string(b"hi\n\x1b\"\\") == '"hi\\n\\033\\"\\\\"'
    assert c_string(b"init" + bytes(11)) == '"init", \'\\000\' <repeats 11 times>'
    assert c_string(b"a" * 10) == '"aaaaaaaaaa"'                  # 10 is not over the threshold
    assert c_string("é".encode() + b"\xff") == '"é\\377"'
    assert c_string(b"x" * 5 + b"y" * 300).endswith("<repeats 195 times>...")


def test_x_defaults_follow_gdbs_decode_format():
    last = ExamineState(fmt="x", size="h")
    assert (parse_spec("a", last).size, parse_spec("c", last).size) == ("g", "b")
    assert parse_spec("f", last).size == "g" and parse_spec("f", ExamineState("x", "w")).size == "w"
    assert parse_spec("s", last).size == "b" and parse_spec("3", last) == \
        parse_spec("3xh", last)
    assert parse_spec("-4dw", last).count == -4
    assert parse_spec("2gx", last) == parse_spec("2xg", last)     # letters in any order
    with pytest.raises(ExprError, match="Undefined output format"):
        parse_spec("q", last)
