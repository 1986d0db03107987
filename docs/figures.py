#!/usr/bin/env python3
"""Figures for the docs, printed as markdown for docs/generate.py's regions.

    figures.py params               the boot-parameter table, from
                                    guest/kernel/param.c (its header comment for
                                    the meanings, its numparam() calls for ranges)
    figures.py run STATS.json       the figures of a run from its --stats-json
    figures.py virtio-features      the feature bits emu's virtio-blk offers on
                                    each transport version (read from the device)
    figures.py virtio-config        its configuration space for a 1 MiB image
                                    (read through the transport's registers)
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


def _virtio_slot(legacy: bool, image: str):
    """A virtio-mmio slot with a VirtioBlk on `image`, on a scratch RAM."""
    sys.path.insert(0, str(REPO))
    from emu.core.clock import Clock
    from emu.core.memory import PhysMem
    from emu.devices.bus import IrqLine
    from emu.devices.virtio.blk import VirtioBlk
    from emu.devices.virtio.mmio import VirtioMmio

    class Quiet:
        def set_level(self, source: int, level: bool) -> None:
            pass

    return VirtioMmio(PhysMem(0x8000_0000, 1 << 20), IrqLine(Quiet(), 1), Clock(),
                      VirtioBlk(image), legacy=legacy)


def virtio_features_table(image: str) -> str:
    """Which feature bits the slot offers, legacy (v1) and modern (v2)."""
    from emu.devices.virtio import blk, spec
    names = {getattr(blk, n): n[2:] for n in dir(blk) if n.startswith("F_")}
    names.update({getattr(spec, n): n[2:] for n in dir(spec) if n.startswith("F_")})
    offered = []
    for legacy in (True, False):
        slot = _virtio_slot(legacy, image)
        offered.append(slot.offered())
        slot.close()
    rows = ["| bit | feature | legacy (v1) | modern (v2) |", "|---|---|---|---|"]
    for b in sorted(names):
        if any(o >> b & 1 for o in offered):
            marks = ["yes" if o >> b & 1 else "-" for o in offered]
            rows.append(f"| {b} | `{names[b]}` | {marks[0]} | {marks[1]} |")
    return "\n".join(rows) + "\n"


VIRTIO_CONFIG = (
    (0, 8, "capacity", "512-byte sectors"), (8, 4, "size_max", "SIZE_MAX not offered"),
    (12, 4, "seg_max", "queue-size 256 - 2"), (16, 2, "geometry.cylinders", "GEOMETRY not offered"),
    (18, 1, "geometry.heads", ""), (19, 1, "geometry.sectors", ""),
    (20, 4, "blk_size", ""), (24, 1, "physical_block_exp", ""),
    (25, 1, "alignment_offset", ""), (26, 2, "min_io_size", ""), (28, 4, "opt_io_size", ""),
    (32, 1, "writeback", "writable: 0 = writethrough"), (34, 2, "num_queues", ""),
    (36, 4, "max_discard_sectors", ""), (40, 4, "max_discard_seg", ""),
    (44, 4, "discard_sector_alignment", ""), (48, 4, "max_write_zeroes_sectors", ""),
    (52, 4, "max_write_zeroes_seg", ""), (56, 1, "write_zeroes_may_unmap", ""),
    (57, 1, "(past config_len)", "reads all ones"))


def virtio_config_table(image: str) -> str:
    """The configuration space as the driver reads it, field by field."""
    slot = _virtio_slot(False, image)
    rows = ["| offset | field | value | note |", "|---|---|---|---|"]
    for off, size, name, note in VIRTIO_CONFIG:
        parts = [(off, min(size, 4))] + ([(off + 4, 4)] if size == 8 else [])
        value = sum(slot.read(0x100 + o, n) << (32 * k) for k, (o, n) in enumerate(parts))
        rows.append(f"| {off} | `{name}` | {value:#x} | {note} |")
    slot.close()
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    """Print the figure named by argv[0]."""
    if argv[:1] == ["params"]:
        print(params_table((REPO / "guest" / "kernel" / "param.c").read_text()), end="")
        return 0
    if len(argv) == 2 and argv[0] == "run":
        print(run_table(json.loads(Path(argv[1]).read_text())), end="")
        return 0
    if argv[:1] in (["virtio-features"], ["virtio-config"]):
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".img") as img:
            img.truncate(1 << 20)
            table = virtio_features_table if argv[0] == "virtio-features" else virtio_config_table
            print(table(img.name), end="")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
