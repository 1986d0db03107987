"""`print`, `output` and `whatis` as gdb has them, and `display`'s list.

`print[/F] [EXPR]` evaluates EXPR (emu/debug/expr.py), records the value in
the history and shows `$N = value`; without EXPR it shows the last value
again. F is one format letter (x d u o t a c f s z); a count or a unit is
refused with gdb's words. `output` prints the value alone, `whatis` its type.

`display[/F] EXPR` remembers EXPR: it is shown now and after every command
that runs the machine, numbered, in the order made. A format with `i` or
`s` or a unit letter (`display/i $pc`, `display/2xg $sp`) examines memory
as `x` does; any other is printed as `print/F`. `undisplay [N...]` removes
some or all, `info display` lists them in gdb's layout.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from emu.debug.examine import UNITS
from emu.debug.expr import Env, ExprError, Value, evaluate, parse_type
from emu.debug.valfmt import Labels, format_value

PRINT_FORMATS = "xduotacfsiz"


def print_format(spec: str | None, command: str = "print") -> str:
    """The format letter of print's `/F` ("" without one). Raises ExprError
    for a count or a unit, as gdb does."""
    if not spec:
        return ""
    m = re.match(r"^(\d*)([a-z]*)$", spec)
    if not m:
        raise ExprError(f"Invalid number \"{spec}\".")
    if m.group(1) and m.group(1) != "1":
        raise ExprError(f"Item count other than 1 is meaningless in \"{command}\" command.")
    letters = [c for c in m.group(2) if c not in UNITS]
    if len(letters) < len(m.group(2)):
        raise ExprError(f"Size letters are meaningless in \"{command}\" command.")
    f = letters[-1] if letters else ""
    if f and f not in PRINT_FORMATS:
        raise ExprError(f"Undefined output format \"{f}\".")
    return f


def print_value(env: Env, expr: str, fmt: str, labels: Labels,
                read: Callable[[int, int], bytes]) -> tuple[str, Value]:
    """`print/fmt expr`: records the value and returns (`$N = text`, value)."""
    if expr.strip():
        v = evaluate(env, expr)
    elif env.history:
        v = env.history[-1]
    else:
        raise ExprError("History is empty.")
    text = format_value(v, fmt, labels, read)
    env.history.append(v)
    return f"${len(env.history)} = {text}", v


def whatis(env: Env, expr: str) -> str:
    """`whatis EXPR|TYPE`: `type = ...`."""
    if not expr.strip():
        raise ExprError("Argument required (one or more expressions).")
    t = parse_type(env, expr)
    return f"type = {(t or evaluate(env, expr).type).spelled}"


# -- display ---------------------------------------------------------------------------
@dataclass
class Display:
    """One auto-display: its number, `/` spec as typed ("" for none), expression."""

    num: int
    spec: str
    expr: str
    enabled: bool = True

    @property
    def examines(self) -> bool:
        """True if it examines memory like `x` (i, s or a unit letter)."""
        letters = re.sub(r"^\d*", "", self.spec)
        return any(c in "is" or c in UNITS for c in letters)

    def x_spec(self) -> tuple[int, str, str]:
        """(count, format, unit) of an examining display (gdb: i and s take b)."""
        m = re.match(r"^(\d*)([a-z]*)$", self.spec)
        count = int(m.group(1)) if m and m.group(1) else 1
        letters = m.group(2) if m else ""
        fmt = next((c for c in reversed(letters) if c not in UNITS), "x")
        size = next((c for c in reversed(letters) if c in UNITS), "w")
        return count, fmt, "b" if fmt in "is" else size


@dataclass
class Displays:
    """The auto-display list."""

    items: list[Display] = field(default_factory=list)
    next_num: int = 1

    def add(self, spec: str, expr: str) -> Display:
        """A new display (numbers are never reused)."""
        d = Display(self.next_num, spec, expr)
        self.next_num += 1
        self.items.append(d)
        return d

    def delete(self, words: list[str]) -> str:
        """Remove the displays numbered in `words` (all without words).
        Returns gdb's notes for numbers that do not exist."""
        if not words:
            self.items.clear()
            return ""
        notes = []
        for w in words:
            if not w.isdigit():
                raise ExprError(f"Arguments must be display numbers: {w!r}")
            n = int(w)
            hit = [d for d in self.items if d.num == n]
            if not hit:
                notes.append(f"No display number {n}.")
            self.items = [d for d in self.items if d.num != n]
        return "\n".join(notes)

    def info(self) -> str:
        """`info display` in gdb's layout."""
        if not self.items:
            return "There are no auto-display expressions now."
        out = ["Auto-display expressions now in effect:", "Num Enb Expression"]
        for d in self.items:
            if d.examines:
                count, fmt, size = d.x_spec()
                spec = f"/{count}{size}{fmt} "
            else:
                spec = f"/{d.spec} " if d.spec else ""
            out.append(f"{d.num}:   {'y' if d.enabled else 'n'}  {spec}{d.expr}")
        return "\n".join(out)


def show_display(d: Display, printed: Callable[[str, str], str],
                 examined: Callable[[tuple[int, str, str], str], str]) -> str:
    """One display as gdb shows it at a stop: `N: EXPR = value`, or for an
    examining one `N: x/FMT EXPR` and the lines of `x`. `printed(fmt, expr)`
    and `examined(spec, expr)` do the work; their errors show as `<error: ...>`."""
    if d.examines:
        count, fmt, size = d.x_spec()
        head = f"{d.num}: x/{count if count != 1 else ''}{fmt}{size if fmt not in 'is' else ''}" \
               f" {d.expr}"
        try:
            return f"{head}\n{examined((count, fmt, size), d.expr)}"
        except ExprError as exc:
            return f"{head}\n" + (exc.partial + "\n" if exc.partial else "") + f"<error: {exc}>"
    fmt = f"/{d.spec} " if d.spec else ""
    try:
        return f"{d.num}: {fmt}{d.expr} = {printed(d.spec, d.expr)}"
    except ExprError as exc:
        return f"{d.num}: {fmt}{d.expr} = <error: {exc}>"
