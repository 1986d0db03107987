#!/usr/bin/env python3
"""Figures for the docs, printed as markdown for docs/generate.py's regions.

    figures.py params               the boot-parameter table, from
                                    guest/kernel/param.c (its header comment for
                                    the meanings, its numparam() calls for ranges)
    figures.py run STATS.json       the figures of a run from its --stats-json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def params_table(src: str) -> str:
    """The markdown table of boot parameters in param.c's header comment,
    each numeric one with the range its numparam() call accepts."""
    entries: list[list[str]] = []
    for line in src.splitlines():
        if not line.startswith("//"):
            break
        m = re.match(r"//   (\S+(?: [A-Z.]+)*)\s{2,}(.*)", line)
        if m:
            entries.append([m.group(1), m.group(2)])
        elif entries and re.match(r"//\s{10,}\S", line):
            entries[-1][1] += " " + line[2:].strip()
    ranges = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r'strcmp\(word, "(\w+)"\) == 0 && val\) \{\s*int64 v = numparam\(word, val, '
        r'([^,]+), ([^)]+)\);', src)}
    out = ["| parameter | meaning |", "|---|---|"]
    for key, meaning in entries:
        name = key.split("=")[0]
        if name in ranges:
            lo, hi = (str(eval(x, {})) for x in ranges[name])  # noqa: S307 - C literals
            meaning = f"{meaning}; N in {int(lo):,}..{int(hi):,}"
        out.append(f"| `{key}` | {meaning} |")
    return "\n".join(out) + "\n"


def run_table(stats: dict) -> str:
    """The figures of one run (deterministic ones first, then wall time)."""
    sw = stats.get("swap") or {}
    rows = [("instructions", f"{stats['instructions']:,}"),
            ("virtual time", f"{stats['virtual_ns'] / 1e6:,.1f} ms"),
            ("page faults (MMU)", f"{stats['page_faults_total']:,}")]
    if sw:
        rows += [("swap traffic", f"{sw['mb_swapped']:,.1f} MB "
                  f"({sw['swap_outs']:,} pages out, {sw['swap_ins']:,} in)"),
                 ("major faults", f"{sw['major_faults']:,} (the rest read ahead and mapped "
                  "by fault-around)"),
                 ("AoE requests", f"{sw['aoe_requests']:,}, {sw['retransmits']:,} retransmits"),
                 ("swap rate, virtual", f"{sw['mb_per_virtual_s']:,.1f} MB per virtual s")]
    rows += [("exit status", str(stats["exit_status"])),
             ("wall time", f"{stats['wall_s']:,.1f} s ({stats['mips']:,.0f} MIPS)")]
    if sw:
        rows.append(("swap rate, wall", f"{sw['mb_per_wall_s']:,.1f} MB per wall s"))
    return "| figure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def main(argv: list[str]) -> int:
    """Print the figure named by argv[0]."""
    if argv[:1] == ["params"]:
        print(params_table((REPO / "guest" / "kernel" / "param.c").read_text()), end="")
        return 0
    if len(argv) == 2 and argv[0] == "run":
        print(run_table(json.loads(Path(argv[1]).read_text())), end="")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
