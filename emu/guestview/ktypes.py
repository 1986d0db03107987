"""Struct layouts of the guest kernel from its DWARF (pyelftools): member
offsets, sizes and array lengths, so the debugger can read kernel data
structures (the process table, regions) without hard-coding their layout.

Only what reading plain C structs needs: structs, members, base types,
pointers, enums, typedefs/qualifiers and one-dimensional arrays. A kernel
without DWARF, or without a given struct, simply yields no layout.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

POINTER_SIZE = 8


@dataclass(frozen=True)
class Member:
    """One struct member: byte offset, total size, element count (arrays)."""

    offset: int
    size: int
    count: int = 1

    @property
    def stride(self) -> int:
        """Size of one element (the member size for non-arrays)."""
        return self.size // self.count if self.count else self.size


@dataclass
class Struct:
    """A struct's size and members by name."""

    name: str
    size: int
    members: dict[str, Member] = field(default_factory=dict)


def _size_of(die, depth: int = 0) -> tuple[int, int]:
    """(total size, element count) of the type DIE `die`."""
    if die is None or depth > 16:
        return 0, 1
    tag = die.tag
    if tag == "DW_TAG_pointer_type":
        return POINTER_SIZE, 1
    if tag == "DW_TAG_array_type":
        elem, _ = _size_of(_type(die), depth + 1)
        count = 1
        for sub in die.iter_children():
            if sub.tag == "DW_TAG_subrange_type":
                if "DW_AT_count" in sub.attributes:
                    count *= sub.attributes["DW_AT_count"].value
                elif "DW_AT_upper_bound" in sub.attributes:
                    count *= sub.attributes["DW_AT_upper_bound"].value + 1
        return elem * count, count
    if "DW_AT_byte_size" in die.attributes:
        return die.attributes["DW_AT_byte_size"].value, 1
    return _size_of(_type(die), depth + 1)


def _type(die):
    if "DW_AT_type" not in die.attributes:
        return None
    return die.get_DIE_from_attribute("DW_AT_type")


def _offset(die) -> int | None:
    attr = die.attributes.get("DW_AT_data_member_location")
    if attr is None:
        return 0   # union members
    if isinstance(attr.value, int):
        return attr.value
    return None    # location expressions: not used by C structs here


def read_structs(path: str, names: set[str]) -> dict[str, Struct]:
    """Return the layouts of the structs named in `names` found in the ELF at
    `path` (first definition wins). Missing structs are simply absent."""
    out: dict[str, Struct] = {}
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if not elf.has_dwarf_info():
                return out
            for cu in elf.get_dwarf_info().iter_CUs():
                for die in cu.iter_DIEs():
                    if die.tag != "DW_TAG_structure_type" or "DW_AT_name" not in die.attributes:
                        continue
                    name = die.attributes["DW_AT_name"].value.decode("utf-8", "replace")
                    if name not in names or name in out or \
                            "DW_AT_byte_size" not in die.attributes:
                        continue
                    st = Struct(name, die.attributes["DW_AT_byte_size"].value)
                    for m in die.iter_children():
                        if m.tag != "DW_TAG_member" or "DW_AT_name" not in m.attributes:
                            continue
                        off = _offset(m)
                        if off is None:
                            continue
                        size, count = _size_of(_type(m))
                        st.members[m.attributes["DW_AT_name"].value.decode()] = \
                            Member(off, size, count)
                    out[name] = st
                if len(out) == len(names):
                    break
    except (OSError, ELFError, ValueError, KeyError, AttributeError):
        return out
    return out
