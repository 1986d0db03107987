"""Debugger building blocks without a running guest: `info mem` format and
merging, fault filters, the exact-address decoder, disassembly targets,
symbol resolution and the command table's error handling."""

from __future__ import annotations

import pytest

from emu.core.isa import access_address
from emu.core.memory import PhysMem
from emu.debug.commands import CommandError, lookup
from emu.debug.disasm import control_target, decode, is_call
from emu.debug.faults import FaultFilter, FaultInfo, FilterError, parse_fault_filter
from emu.debug.infomem import HEADER, info_mem
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
