"""The guest kernel's processes and user regions, read from guest RAM with
the struct layouts of its DWARF (ktypes.py) - and the kview probe built on
them, which explains a fault the way the kernel's vmfault() will resolve it.

What is read: the symbol `proc` (struct proc proc[NPROC]) and, per process,
state, pid, name, pagetable, rss and vma[] (struct vma: kind, perm, start,
end, file, fileva, filesz). A process is found by the root of its page
table, i.e. by satp. Kernels without these symbols/types get no probe (the
generic PTE reading applies). Kernel data is read by physical address: the
kernel is linked at its physical address (ARCHITECTURE.md), so its symbols
are physical too, whatever satp currently maps.

The classification mirrors guest/kernel/vm.c vmfault(): no region -> killed
(FAULT_BAD); region forbids the access -> killed (FAULT_PROT); PTE already
valid -> spurious; otherwise the page is filled - from the program image
where the region's file bytes overlap it (FAULT_IMAGE), else with zeros
(FAULT_ZERO, demand-zero).

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.guestview import kview
from emu.guestview.ktypes import Struct, read_structs
from emu.guestview.symbols import symbol_size
from emu.mmu import WalkTrace
from emu.mmu.pte import PAGE_MASK, PTE_R, PTE_W, PTE_X, satp_root

# Process states: PS_* of guest/kernel/syscall.h (an ABI shared with user code).
STATES = {0: "unused", 1: "embryo", 2: "runnable", 3: "running", 4: "sleeping", 5: "zombie"}
# Region kinds: VMA_* of guest/kernel/mm.h.
VMA_KINDS = {1: "text", 2: "data", 3: "heap", 4: "stack"}
_NEED = {"read": PTE_R, "write": PTE_W, "fetch": PTE_X}


@dataclass(frozen=True)
class Vma:
    """A user region of a process."""

    kind: int
    perm: int
    start: int
    end: int
    file: int
    fileva: int
    filesz: int

    @property
    def name(self) -> str:
        """"text", "data", "heap", "stack" (or "kind N")."""
        return VMA_KINDS.get(self.kind, f"kind {self.kind}")

    @property
    def perms(self) -> str:
        """`rwx` letters of what the region allows."""
        return "".join(c if self.perm & b else "-" for c, b in (("r", PTE_R), ("w", PTE_W),
                                                               ("x", PTE_X)))

    def file_overlaps_page(self, va: int) -> bool:
        """True if the region's image bytes cover part of `va`'s page."""
        page = va & ~PAGE_MASK
        return bool(self.file) and page < self.fileva + self.filesz and \
            self.fileva < page + PAGE_MASK + 1


@dataclass(frozen=True)
class Proc:
    """A process table entry."""

    slot: int
    pid: int
    name: str
    state: int
    pagetable: int
    rss: int
    vmas: tuple[Vma, ...]
    chan: int = 0          # what a sleeping process waits on (0: nothing)

    @property
    def state_name(self) -> str:
        """"running", "sleeping", ..."""
        return STATES.get(self.state, str(self.state))

    def find(self, va: int) -> Vma | None:
        """The region holding `va` (findvma()), or None."""
        return next((v for v in self.vmas if v.kind and v.start <= va < v.end), None)


class Kernel:
    """Reader for one image's process table."""

    def __init__(self, machine, proc_addr: int, nproc: int, sproc: Struct,
                 svma: Struct) -> None:
        self.m = machine
        self.proc_addr = proc_addr
        self.nproc = nproc
        self.sproc = sproc
        self.svma = svma

    @classmethod
    def probe(cls, machine) -> Kernel | None:
        """Return a reader if the image has `proc` and the struct layouts."""
        addr = machine.image.symbols.by_name.get("proc")
        if addr is None:
            return None
        layouts = read_structs(machine.image.path, {"proc", "vma"})
        sp, sv = layouts.get("proc"), layouts.get("vma")
        need_p = {"state", "pid", "name", "pagetable", "vma"}
        need_v = {"kind", "perm", "start", "end", "file", "fileva", "filesz"}
        if sp is None or sv is None or not need_p <= set(sp.members) or \
                not need_v <= set(sv.members) or not sp.size:
            return None
        size = symbol_size(machine.image.symbols, "proc")
        nproc = size // sp.size if size else 0
        if nproc <= 0:
            return None
        return cls(machine, addr, nproc, sp, sv)

    def _u(self, raw: bytes, st: Struct, field: str, signed: bool = False) -> int:
        mem = st.members[field]
        return int.from_bytes(raw[mem.offset:mem.offset + min(mem.size, 8)], "little",
                              signed=signed)

    def procs(self) -> list[Proc]:
        """Every used slot of the process table."""
        mem = self.m.mem
        total = self.sproc.size * self.nproc
        if not mem.contains(self.proc_addr, total):
            return []
        table = mem.read(self.proc_addr, total)
        out = []
        for i in range(self.nproc):
            raw = table[i * self.sproc.size:(i + 1) * self.sproc.size]
            state = self._u(raw, self.sproc, "state")
            if state == 0:
                continue
            nm = self.sproc.members["name"]
            name = raw[nm.offset:nm.offset + nm.size].split(b"\0")[0].decode("latin-1")
            vm = self.sproc.members["vma"]
            vmas = []
            for j in range(vm.count):
                r = raw[vm.offset + j * vm.stride:vm.offset + (j + 1) * vm.stride]
                vmas.append(Vma(*(self._u(r, self.svma, f) for f in
                                  ("kind", "perm", "start", "end", "file", "fileva",
                                   "filesz"))))
            rss = self._u(raw, self.sproc, "rss") if "rss" in self.sproc.members else 0
            chan = self._u(raw, self.sproc, "chan") if "chan" in self.sproc.members else 0
            out.append(Proc(i, self._u(raw, self.sproc, "pid", signed=True), name, state,
                            self._u(raw, self.sproc, "pagetable"), rss, tuple(vmas), chan))
        return out

    def describe_chan(self, chan: int) -> str:
        """Name a sleep channel: a process table entry is wait() for that
        process's children, anything else is its symbol (or hex)."""
        end = self.proc_addr + self.sproc.size * self.nproc
        if self.proc_addr <= chan < end and (chan - self.proc_addr) % self.sproc.size == 0:
            return f"its children (wait, proc[{(chan - self.proc_addr) // self.sproc.size}])"
        return self.m.image.symbols.describe(chan)

    def by_satp(self, satp: int) -> Proc | None:
        """The user process whose page table satp points at (None for the
        kernel's own table or an unknown one)."""
        root = satp_root(satp)
        return next((p for p in self.procs() if p.pagetable == root and
                     any(v.kind for v in p.vmas)), None)


_CACHE: dict[int, Kernel | None] = {}


def kernel_of(machine) -> Kernel | None:
    """The (cached) Kernel reader of `machine`, or None."""
    key = id(machine)
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = Kernel.probe(machine)
    k = _CACHE[key]
    return k if k is not None and k.m is machine else None


def pid_of(machine, satp: int) -> int | None:
    """pid of the process running on `satp`, or None."""
    k = kernel_of(machine)
    p = k.by_satp(satp) if k else None
    return p.pid if p else None


def vma_probe(machine, q: kview.PageQuery, tr: WalkTrace) -> str | None:
    """kview probe: the fault as vmfault() will see it."""
    if tr.ok:
        return None
    k = kernel_of(machine)
    p = k.by_satp(q.satp) if k else None
    if p is None:
        return None
    who = f"pid {p.pid} ({p.name})"
    v = p.find(q.va)
    if v is None:
        return f"segfault: no region of {who} holds 0x{q.va:x}; the kernel kills it (FAULT_BAD)"
    span = f"{v.name} region [0x{v.start:x}, 0x{v.end:x}) {v.perms}"
    if not v.perm & _NEED[q.access]:
        return f"segfault: the {span} of {who} forbids a {q.access}; killed (FAULT_PROT)"
    last = tr.steps[-1] if tr.steps else None
    if last is not None and last.decoded is not None and last.decoded.kind == "leaf":
        return (f"spurious: {span} of {who} and the page is already mapped "
                f"({last.decoded.flags}); the access is retried (FAULT_SPURIOUS)")
    if v.file_overlaps_page(q.va):
        how = ("mapped read-only straight from the program image (shared)"
               if not v.perm & PTE_W else "a fresh page filled from the program image")
        return f"image fault: {span} of {who}; {how} (FAULT_IMAGE)"
    return (f"demand-zero: {span} of {who}; the kernel maps a fresh zeroed page and the "
            "access is retried (FAULT_ZERO)")


kview.register_probe(vma_probe)
