"""Symbols as the debugger uses them: lookup without assembler noise, and
resolution of user-typed locations (`0x...`, `name`, `name+off`, `file:line`).

The loader keeps every symbol (including mapping symbols like `$d` and local
labels like `.L0 `); a debugger showing `$d+0x10` helps nobody, so this view
drops them. Errors are LocationError with a one-line message.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

import re
from pathlib import Path

from emu.guestview.dwarf import LineTable
from emu.guestview.kallsyms import KallsymsError, is_linux_image, read_kallsyms, read_system_map
from emu.machine.loader import Image, LoadError, Symbols, elf_symbols, is_elf


class LocationError(ValueError):
    """A location or number the user typed cannot be resolved (one line)."""


def _noise(name: str) -> bool:
    return name.startswith("$") or name.startswith(".L") or not name.strip()


def clean(symbols: Symbols) -> Symbols:
    """Return a copy of `symbols` without mapping symbols and local labels."""
    out = Symbols()
    for addr, size, name in symbols._entries:
        if not _noise(name):
            out.add(name, addr, size)
    # by_name of the original may map a name to the last duplicate; keep ours.
    out.finish()
    return out


def image_symbols(image: Image) -> tuple[Symbols, str]:
    """The symbols the debugger shows for `image`, and one line saying where
    they came from: the ELF's own; for a raw Linux Image, its kallsyms table
    (kallsyms.py); otherwise none (addresses only)."""
    if image.symbols.by_name:
        return image.symbols, f"symbols: {len(image.symbols.by_name):,} from the ELF"
    try:
        data = Path(image.path).read_bytes()
    except OSError:
        return image.symbols, "symbols: none (the image cannot be read again)"
    if not is_linux_image(data):
        return image.symbols, "symbols: none (a raw image without a symbol table)"
    try:
        syms = read_kallsyms(data)
    except KallsymsError as exc:
        return image.symbols, f"symbols: none ({exc}; `symbol-file System.map` adds them)"
    return syms, f"symbols: {len(syms.by_name):,} from the Image's kallsyms table"


def symbol_file(path: str) -> tuple[Symbols, str]:
    """Symbols from `path`: an ELF (its symbol table) or an nm-style map
    (System.map, a saved /proc/kallsyms). Returns (symbols, one line).
    Raises LocationError (one line) when the file gives none."""
    try:
        syms = elf_symbols(path) if is_elf(path, "symbol file") else read_system_map(path)
    except (KallsymsError, LoadError) as exc:
        raise LocationError(str(exc)) from None
    if not syms.by_name:
        raise LocationError(f"{path}: no symbols")
    return syms, f"symbols: {len(syms.by_name):,} from {path}"


_OFF_RE = re.compile(r"^([A-Za-z_.$][\w.$]*)\s*([+-])\s*(\w+)$")


def parse_int(text: str, what: str = "number") -> int:
    """Parse a C-style integer (0x.., 0b.., 0o.., decimal; `_` allowed).

    Returns the value. Raises LocationError naming `what` if it is not one.
    """
    t = text.strip().replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        raise LocationError(f"bad {what}: {text!r}") from None


def resolve(text: str, symbols: Symbols, lines: LineTable | None = None) -> int:
    """Resolve a location typed by the user to an address.

    Accepts `*ADDR` or `ADDR` (a number), `name`, `name+off`, `name-off`
    and `file:line` (first statement address of that line, via DWARF).
    Returns the address. Raises LocationError.
    """
    t = text.strip()
    if t.startswith("*"):
        t = t[1:].strip()
    if not t:
        raise LocationError("missing location")
    if t[0].isdigit():
        return parse_int(t, "address")
    if t in symbols.by_name:
        return symbols.by_name[t]
    m = _OFF_RE.match(t)
    if m and m.group(1) in symbols.by_name:
        off = parse_int(m.group(3), "offset")
        base = symbols.by_name[m.group(1)]
        return base + off if m.group(2) == "+" else base - off
    if ":" in t and lines is not None:
        fname, _, line = t.rpartition(":")
        addrs = lines.addresses_for(fname, int(parse_int(line, "line number")))
        if not addrs:
            raise LocationError(f"no code for {t} in the DWARF line table")
        return addrs[0]
    raise LocationError(f"no symbol {t!r} in the kernel image")


def symbol_size(symbols: Symbols, name: str) -> int:
    """Size in bytes of symbol `name` (0 if unknown or unsized)."""
    addr = symbols.by_name.get(name)
    return next((sz for a, sz, n in symbols._entries if n == name and a == addr), 0)


def extent(symbols: Symbols, addr: int) -> tuple[int, int] | None:
    """Return [start, end) of the symbol containing `addr`; an unsized symbol
    (an assembly label) extends to the next symbol. None if no symbol."""
    hit = symbols.lookup(addr)
    if hit is None:
        return None
    start = addr - hit[1]
    entries = symbols._entries
    size = next((sz for a, sz, _ in entries if a == start and sz), 0)
    if size:
        return start, start + size
    later = [a for a, _, _ in entries if a > start]
    return start, (min(later) if later else addr + 4)
