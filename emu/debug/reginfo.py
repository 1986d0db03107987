"""`info registers [NAME|GROUP...]` and `info all-registers` in gdb's RISC-V
layout: the name in 15 columns, the raw value in hex, a tab, the natural
value - decimal for `long` registers and CSRs, plain hex for the data
pointers sp/gp/tp/fp, hex and `<sym+off>` for the code pointers pc/ra, and
`prv:N [Name]` for the virtual `priv` register.

Names are gdb's (x8 is `fp`, `zero` for x0), with `$` allowed. An alias
typed instead (`x10`, `s0`) is printed under the alias in gdb's generic
layout (value columns at 15 and 35), as gdb 13 does. Without names: the
general registers ra..t6 and pc; groups `general`, `system` (the S-mode
CSRs and priv) and `all`.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from emu.core.isa import GPR_NAMES
from emu.debug.expr import CSR_NAMES, REG_ALIASES, Env, ExprError, register
from emu.debug.valfmt import Labels
from emu.guestview.cdecl import CODE_PTR, DATA_PTR

GENERAL = tuple("fp" if n == "s0" else n for n in GPR_NAMES[1:]) + ("pc",)
SYSTEM = CSR_NAMES + ("priv",)
ALL = ("zero",) + GENERAL + SYSTEM
GROUPS = {"general": GENERAL, "system": SYSTEM, "all": ALL}
PRIV_NAMES = ("User/Application", "Supervisor", "Hypervisor", "Machine")
MASK64 = (1 << 64) - 1


def _pad(text: str, col: int) -> str:
    """gdb's pad_to_column: at least one space, then up to column `col`."""
    text += " "
    return text + " " * max(0, col - len(text))


def register_line(env: Env, name: str, labels: Labels) -> str:
    """One register's line. Raises ExprError for an unknown name."""
    n = name[1:] if name.startswith("$") else name
    v = register(env, n)
    if v is None:
        raise ExprError(f"Invalid register `{n}'")
    raw = int(v.v or 0) & MASK64
    if v.reg == "priv":
        p = raw & 0xFF
        natural = f"prv:{p} [{PRIV_NAMES[p] if p < 4 else 'INVALID'}]"
    elif v.type is CODE_PTR:
        natural = f"0x{raw:x}{labels(raw)}"
    elif v.type is DATA_PTR:
        natural = f"0x{raw:x}"
    else:
        natural = str(v.v)
    if REG_ALIASES.get(n, n) != n:       # an alias: gdb's generic layout
        return _pad(_pad(n, 15) + f"0x{raw:x}", 35) + natural
    return f"{n:<15}0x{raw:x}\t{natural}"


def info_registers(env: Env, names: list[str], labels: Labels) -> str:
    """`info registers NAME...` (the general group without names). Raises
    ExprError with the lines printed so far for an unknown name."""
    wanted: list[str] = []
    for w in names or ["general"]:
        wanted.extend(GROUPS.get(w, (w,)))
    lines: list[str] = []
    for n in wanted:
        try:
            lines.append(register_line(env, n, labels))
        except ExprError as exc:
            raise ExprError(str(exc), "\n".join(lines)) from None
    return "\n".join(lines)
