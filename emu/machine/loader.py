"""Image loading: an ELF's PT_LOAD segments into RAM with its entry and
symbols (pyelftools), or a raw binary at a given address (a firmware's
.bin, Linux's Image) - as QEMU's -bios and -kernel take either.

Errors are LoadError with one line for the user (the CLI exits 2): not an
ELF, not RISC-V, not 64-bit, not little-endian, or a segment outside RAM.

Layer: machine.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from emu.core.memory import PhysMem


class LoadError(Exception):
    """The image cannot be loaded; the message is one line for the user."""


@dataclass
class Symbols:
    """Function and object symbols of the image, for reports and debuggers."""

    by_name: dict[str, int] = field(default_factory=dict)
    _addrs: list[int] = field(default_factory=list)
    _entries: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, name: str, addr: int, size: int) -> None:
        """Record symbol `name` at `addr` spanning `size` bytes."""
        self.by_name[name] = addr
        self._entries.append((addr, size, name))

    def finish(self) -> None:
        """Sort for lookups; call once after the last add()."""
        self._entries.sort()
        self._addrs = [e[0] for e in self._entries]

    def lookup(self, addr: int) -> tuple[str, int] | None:
        """Return (name, offset) of the symbol containing `addr`, or None.

        A sized symbol contains [start, start+size); an unsized one (an
        assembly label) covers up to the next symbol.
        """
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        start, size, name = self._entries[i]
        if size == 0 or addr < start + size:
            return name, addr - start
        return None

    def describe(self, addr: int) -> str:
        """Return 'name+0xoff' for `addr`, or its hex value when unknown."""
        hit = self.lookup(addr)
        if hit is None:
            return f"0x{addr:x}"
        name, off = hit
        return f"{name}+0x{off:x}" if off else name


@dataclass
class Image:
    """A loaded kernel: entry point, symbols, the path and its load range."""

    path: str
    entry: int
    symbols: Symbols
    low: int
    high: int
    float_abi: int = 0   # ELF e_flags' EF_RISCV_FLOAT_ABI: 0 soft, 2 single, 4 double


def load_elf(path: str, mem: PhysMem, what: str = "kernel") -> Image:
    """Load the ELF at `path` into `mem`. Returns the Image.

    Raises LoadError (one line) for a missing/unreadable file, a non-ELF,
    non-RISC-V, non-64-bit or big-endian file, or a segment outside RAM.
    """
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise LoadError(f"cannot open {what} {path!r}: {exc.strerror}") from None
    with f:
        try:
            elf = ELFFile(f)
        except ELFError:
            raise LoadError(f"{path}: not an ELF file") from None
        if elf.header["e_machine"] != "EM_RISCV":
            raise LoadError(f"{path}: not a RISC-V ELF (machine {elf.header['e_machine']})")
        if elf.elfclass != 64:
            raise LoadError(f"{path}: not a 64-bit ELF (RV64 needed)")
        if not elf.little_endian:
            raise LoadError(f"{path}: big-endian ELF")
        low, high = None, 0
        try:
            segments = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        except ELFError as exc:
            raise LoadError(f"{path}: corrupt program headers ({exc})") from None
        if not segments:
            raise LoadError(f"{path}: no loadable segments")
        for seg in segments:
            pa, memsz, filesz = seg["p_paddr"], seg["p_memsz"], seg["p_filesz"]
            if memsz == 0:
                continue
            if filesz > memsz or not mem.contains(pa, memsz):
                raise LoadError(
                    f"{path}: segment 0x{pa:x}+0x{memsz:x} outside RAM "
                    f"0x{mem.base:x}+0x{mem.size:x}")
            data = seg.data()
            if len(data) != filesz:
                raise LoadError(f"{path}: truncated segment at 0x{pa:x}")
            mem.write(pa, data)
            mem.write(pa + filesz, bytes(memsz - filesz))
            low = pa if low is None else min(low, pa)
            high = max(high, pa + memsz)
        entry = elf.header["e_entry"]
        if not mem.contains(entry, 4):
            raise LoadError(f"{path}: entry point 0x{entry:x} outside RAM")
        return Image(path=path, entry=entry, symbols=_symtab(elf), low=low or entry, high=high,
                     float_abi=elf.header["e_flags"] & 0x6)


def _symtab(elf: ELFFile) -> Symbols:
    """Functions, objects and labels of the ELF's .symtab (none if stripped)."""
    syms = Symbols()
    symtab = elf.get_section_by_name(".symtab")
    if symtab is not None:
        for s in symtab.iter_symbols():
            if s.name and s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") \
                    and s["st_shndx"] != "SHN_UNDEF":
                syms.add(s.name, s["st_value"], s["st_size"])
    syms.finish()
    return syms


def elf_symbols(path: str) -> Symbols:
    """The symbol table of the ELF at `path` without loading it (a vmlinux
    for a raw Image, say). Raises LoadError if it cannot be read as an ELF."""
    try:
        with open(path, "rb") as f:
            return _symtab(ELFFile(f))
    except OSError as exc:
        raise LoadError(f"cannot open symbol file {path!r}: {exc.strerror}") from None
    except ELFError as exc:
        raise LoadError(f"{path}: corrupt ELF ({exc})") from None


ELF_MAGIC = b"\x7fELF"


def is_elf(path: str, what: str = "kernel") -> bool:
    """True if the file at `path` starts as an ELF does. Raises LoadError if
    it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError as exc:
        raise LoadError(f"cannot open {what} {path!r}: {exc.strerror}") from None


def load_raw(path: str, mem: PhysMem, addr: int, what: str = "kernel") -> Image:
    """Copy the raw binary at `path` to physical `addr` (its entry point).
    Raises LoadError for a missing file, an empty one, or one that does not
    fit in RAM there."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise LoadError(f"cannot open {what} {path!r}: {exc.strerror}") from None
    if not data:
        raise LoadError(f"{path}: empty image")
    if not mem.contains(addr, len(data)):
        raise LoadError(f"{path}: {len(data):,} bytes at 0x{addr:x} do not fit in RAM "
                        f"0x{mem.base:x}+0x{mem.size:x}")
    mem.write(addr, data)
    return Image(path=path, entry=addr, symbols=Symbols(), low=addr, high=addr + len(data))


def load_image(path: str, mem: PhysMem, addr: int, what: str = "kernel") -> Image:
    """An ELF at its own addresses, or a raw binary at `addr` (as QEMU's
    -kernel and -bios take either). `what` names the image in errors."""
    if is_elf(path, what):
        return load_elf(path, mem, what)
    return load_raw(path, mem, addr, what)
