"""The DWARF line table of the kernel image (pyelftools): pc -> file:line,
file:line -> addresses, and the text of a source line.

Only the line program is used (no types, no locations): that is all the
context view and source-line stepping need. An image without DWARF gives an
empty table - every lookup answers None - never an error.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile


@dataclass(frozen=True)
class SourceLoc:
    """A line-table row: the address it starts at, file path and line."""

    addr: int
    path: str
    line: int
    is_stmt: bool

    @property
    def short(self) -> str:
        """`file.c:LINE` without directories."""
        return f"{os.path.basename(self.path)}:{self.line}"


class LineTable:
    """Sorted line-table rows of every compile unit of an ELF."""

    def __init__(self, rows: list[tuple[int, int, str, int, bool]]) -> None:
        # rows: (addr, end_of_sequence_addr, path, line, is_stmt), sorted by addr
        self._rows = sorted(rows)
        self._addrs = [r[0] for r in self._rows]
        self._stmt = {r[0] for r in self._rows if r[4]}
        self._text: dict[str, list[str] | None] = {}

    @classmethod
    def from_elf(cls, path: str) -> LineTable:
        """Read the line programs of `path`. Returns an empty table if the file
        has no DWARF or cannot be parsed (the debugger then shows no source)."""
        rows: list[tuple[int, int, str, int, bool]] = []
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                if not elf.has_dwarf_info():
                    return cls([])
                dw = elf.get_dwarf_info()
                for cu in dw.iter_CUs():
                    rows.extend(_cu_rows(dw, cu))
        except (OSError, ELFError, ValueError, KeyError, AttributeError):
            return cls([])
        return cls(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, addr: int) -> SourceLoc | None:
        """Return the row covering `addr`, or None outside every sequence."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        start, end, path, line, stmt = self._rows[i]
        if addr >= end:
            return None
        return SourceLoc(start, path, line, stmt)

    def is_stmt_start(self, addr: int) -> bool:
        """True if a statement row begins exactly at `addr` (a line boundary
        for source-level stepping)."""
        return addr in self._stmt

    def addresses_for(self, fname: str, line: int) -> list[int]:
        """Return the statement addresses of `fname:line` (suffix match on the
        path, e.g. `trap.c` or `kernel/trap.c`), lowest first."""
        out = sorted({r[0] for r in self._rows if r[3] == line and r[4]
                      and (r[2] == fname or r[2].endswith("/" + fname))})
        return out

    def source_line(self, loc: SourceLoc) -> str | None:
        """Return the text of `loc`'s line (stripped of its newline), or None
        if the file cannot be read."""
        if loc.path not in self._text:
            try:
                with open(loc.path, encoding="utf-8", errors="replace") as f:
                    self._text[loc.path] = f.read().splitlines()
            except OSError:
                self._text[loc.path] = None
        lines = self._text[loc.path]
        if lines is None or not 0 < loc.line <= len(lines):
            return None
        return lines[loc.line - 1]


def _cu_rows(dw, cu) -> list[tuple[int, int, str, int, bool]]:
    """Rows of one compile unit with absolute file paths (DWARF 4 and 5)."""
    lp = dw.line_program_for_CU(cu)
    if lp is None:
        return []
    top = cu.get_top_DIE()
    comp_dir = _s(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in \
        top.attributes else ""
    hdr = lp.header
    dirs = [_s(d) for d in hdr["include_directory"]]
    files = hdr["file_entry"]
    v5 = hdr["version"] >= 5

    def path_of(idx: int) -> str:
        # DWARF 4 numbers files from 1 and directories from 1 (0 = comp dir);
        # DWARF 5 numbers both from 0.
        fi = idx if v5 else idx - 1
        if not 0 <= fi < len(files):
            return "?"
        fe = files[fi]
        name = _s(fe.name)
        di = fe.dir_index if v5 else fe.dir_index - 1
        d = comp_dir if (not v5 and fe.dir_index == 0) else (dirs[di] if 0 <= di < len(dirs)
                                                             else "")
        p = os.path.join(d, name) if d else name
        if not os.path.isabs(p):
            p = os.path.join(comp_dir, p)
        return os.path.normpath(p)

    rows: list[tuple[int, int, str, int, bool]] = []
    seq: list[tuple[int, str, int, bool]] = []
    for entry in lp.get_entries():
        st = entry.state
        if st is None:
            continue
        if st.end_sequence:
            for j, (a, p, ln, stmt) in enumerate(seq):
                nxt = seq[j + 1][0] if j + 1 < len(seq) else st.address
                if nxt > a:
                    rows.append((a, nxt, p, ln, stmt))
            seq = []
            continue
        seq.append((st.address, path_of(st.file), st.line, bool(st.is_stmt)))
    return rows


def _s(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
