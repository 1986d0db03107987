"""The hart state the pinned unicorn keeps but does not hand to its API: the
PMP registers, found in its CPU structure, verified, read and written.

unicorn 2.1.4 (QEMU 5.0's target/riscv) has no UC_RISCV_REG_PMPCFG*/PMPADDR*
and no generic CSR access, yet emu's MMU must see pmpcfg/pmpaddr to enforce
them. They live in `CPURISCVState.pmp_state` (target/riscv/pmp.h):

    struct { target_ulong addr_reg; uint8_t cfg_reg; } pmp[16];  16-byte stride
    struct { target_ulong sa, ea; } addr[16];                     QEMU's decoded ranges
    uint32_t num_rules;                                           entries with A != OFF

How they are found, for one process and then for every engine:

1. The engine handle is `struct uc_struct *`; its `cpu` member (CPUState *)
   and CPUState's `env_ptr` sit at fixed offsets of the pinned build
   (`UC_CPU_OFFSET`, `ENV_PTR_OFFSET`, measured once by searching a scratch
   engine's heap for its register file). Every engine's chain is checked
   before use: the `uc_context_save` image (a memcpy of the env, the
   context's data after a 40-byte header) must equal the memory the chain
   leads to, byte for byte; the probe reads go through /proc/self/mem, so a
   wrong offset reads as "not found", never as a crash.
2. The offset of `pmp_state` inside the env is measured once per process: a
   scratch engine executes `csrw pmpaddrN` / `csrw pmpcfg0` with distinct
   patterns in M-mode and the pattern is searched for in its env.

When either step fails (another unicorn build), `pmp_address` returns None
and the machine says so in one line and runs without PMP enforcement.

The soft TLB's flush counters. QEMU's CPUTLBCommon (include/exec/cpu-defs.h)
sits before the env in the same CPU object, at a fixed distance:

    uint16_t dirty;               mmu indexes holding entries since their flush
    size_t full_flush_count;      flushes that emptied all four indexes
    size_t part_flush_count;      indexes emptied by flushes of fewer
    size_t elide_flush_count;

target/riscv flushes only with tlb_flush (all indexes: csr.c, sfence.vma,
and unicorn's UC_CTL_TLB_FLUSH), which empties every index holding an
entry and adds to one of the two counts: their sum moves on exactly when a
flush removed entries. The MMU uses it to know that no entry granting
write to a page can have survived (emu/mmu/tlb.py, "Code that changed").
The distance is measured once per process on a scratch engine (three
flushes after an instruction each: `part` grows by three, `full` stays,
`dirty` ends 0), and must be the only place in the 16 KiB before the env
where that holds.

A deviation of the pinned build, measured here: QEMU 5.0's
pmpcfg_csr_write indexes entries `reg_index * 8` on RV64, so a write to
pmpcfg2 lands on entries 16-23, which do not exist, and is dropped:
entries 8-15 stay OFF (pmpcfg2 reads 0). QEMU 7.2 has 16 working entries.

Layer: core (imports nothing from emu).
"""

from __future__ import annotations

import ctypes
import struct
from functools import lru_cache

from unicorn import UC_ARCH_RISCV, UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as rc

N_ENTRIES = 16
ENTRY_STRIDE = 16                 # pmp_entry_t: addr_reg (8) + cfg_reg (1) + padding
RANGES_OFFSET = N_ENTRIES * ENTRY_STRIDE            # addr[16] (sa, ea)
NUM_RULES_OFFSET = RANGES_OFFSET + N_ENTRIES * 16   # uint32_t num_rules
PMP_BYTES = NUM_RULES_OFFSET + 4

UC_CPU_OFFSET = 0x1B8             # offsetof(struct uc_struct, cpu), unicorn 2.1.4
ENV_PTR_OFFSET = 0x128            # offsetof(CPUState, env_ptr), unicorn 2.1.4
CONTEXT_HEADER = 40               # struct uc_context before its data[]

TLB_WINDOW = 0x4000              # bytes before the env searched for CPUTLBCommon
TLB_COMMON = struct.Struct("<H6xQQ")   # dirty, full_flush_count, part_flush_count

CSR_PMPCFG0 = 0x3A0
CSR_PMPADDR0 = 0x3B0
A_SHIFT = 3                       # pmpcfg: A (address matching) in bits 4:3
A_OFF = 0


def _peek(address: int, size: int) -> bytes | None:
    """`size` bytes at `address` of this process, or None where nothing is
    mapped (read through /proc/self/mem, which fails instead of faulting)."""
    if not 0 < address < 1 << 63:
        return None
    try:
        with open("/proc/self/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            data = mem.read(size)
    except (OSError, OverflowError, ValueError):
        return None
    return data if len(data) == size else None


def env_address(uc: Uc) -> int | None:
    """Address of `uc`'s CPURISCVState, or None when the chain from the
    engine handle does not lead to memory equal to a saved context."""
    ctx = uc.context_save()      # also makes unicorn create the CPU (it does so lazily)
    handle = uc._uch.value
    raw = _peek(handle + UC_CPU_OFFSET, 8)
    cpu = struct.unpack("<Q", raw)[0] if raw else 0
    raw = _peek(cpu + ENV_PTR_OFFSET, 8) if cpu else None
    env = struct.unpack("<Q", raw)[0] if raw else 0
    if not env:
        return None
    size = ctx.size - CONTEXT_HEADER
    saved = ctypes.string_at(ctx.context, ctx.size)[CONTEXT_HEADER:]
    live = _peek(env, size)
    return env if live is not None and live == saved else None


def _csrw(csr: int, rs1: int) -> int:
    """csrrw x0, csr, rs1 (unprivileged spec, Zicsr: CSR in bits 31:20)."""
    return (csr << 20) | (rs1 << 15) | (1 << 12) | 0x73


@lru_cache(maxsize=1)
def pmp_offset() -> int | None:
    """Offset of pmp_state inside the env, measured on a scratch engine that
    writes distinct patterns to pmpaddr0-15 and pmpcfg0 in M-mode; None if
    the patterns are not found in the layout described above."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    code_at = 0x8000_0000
    uc.mem_map(code_at, 0x1000)
    words = [_csrw(CSR_PMPADDR0 + i, 1 + i) for i in range(N_ENTRIES)]
    words.append(_csrw(CSR_PMPCFG0, 17))
    uc.mem_write(code_at, struct.pack(f"<{len(words)}I", *words))
    addrs = [0x2A_5A00_0040 + (i << 12) + i for i in range(N_ENTRIES)]
    cfgs = bytes(range(1, 9))    # no L bit: nothing gets locked
    for i, a in enumerate(addrs):
        uc.reg_write(rc.UC_RISCV_REG_X1 + i, a)
    uc.reg_write(rc.UC_RISCV_REG_X17, int.from_bytes(cfgs, "little"))
    uc.emu_start(code_at, code_at + 4 * len(words))
    env = env_address(uc)
    if env is None:
        return None
    blob = ctypes.string_at(env, uc.context_save().size - CONTEXT_HEADER)
    active = sum(1 for c in cfgs if (c >> A_SHIFT) & 3 != A_OFF)
    # the patterns also sit in the register file (x1..x16): try every hit
    off = blob.find(struct.pack("<QB", addrs[0], cfgs[0]))
    while 0 <= off <= len(blob) - PMP_BYTES:
        entries = [struct.unpack_from("<QB", blob, off + i * ENTRY_STRIDE)
                   for i in range(N_ENTRIES)]
        if (entries == [(a, cfgs[i] if i < 8 else 0) for i, a in enumerate(addrs)]
                and struct.unpack_from("<I", blob, off + NUM_RULES_OFFSET)[0] == active):
            return off
        off = blob.find(struct.pack("<QB", addrs[0], cfgs[0]), off + 1)
    return None


def pmp_address(uc: Uc) -> int | None:
    """Address of `uc`'s pmp_state (the 16 entries, then QEMU's ranges and
    num_rules), or None when this unicorn build is not the one described."""
    off = pmp_offset()
    env = env_address(uc) if off is not None else None
    return None if env is None else env + off


@lru_cache(maxsize=1)
def tlb_common_offset() -> int | None:
    """Distance from the env back to CPUTLBCommon, measured on a scratch
    engine (see the module docstring); None unless exactly one place fits."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    code_at = 0x8000_0000
    uc.mem_map(code_at, 0x1000)
    uc.mem_write(code_at, struct.pack("<I", 0x13))          # addi x0, x0, 0
    uc.emu_start(code_at, code_at + 4)                     # M-mode: index 3 dirty
    env = env_address(uc)
    before = _peek(env - TLB_WINDOW, TLB_WINDOW) if env else None
    if before is None:
        return None
    for _ in range(3):
        uc.emu_start(code_at, code_at + 4)
        uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
    after = _peek(env - TLB_WINDOW, TLB_WINDOW)
    if after is None:
        return None
    found = []
    for off in range(0, TLB_WINDOW - TLB_COMMON.size + 1, 8):
        dirty0, full0, part0 = TLB_COMMON.unpack_from(before, off)
        dirty1, full1, part1 = TLB_COMMON.unpack_from(after, off)
        if dirty0 == 1 << 3 and dirty1 == 0 and full1 == full0 and part1 == part0 + 3:
            found.append(TLB_WINDOW - off)
    return found[0] if len(found) == 1 else None


def flush_count_address(uc: Uc) -> int | None:
    """Address of `uc`'s two TLB flush counters (full_flush_count, then
    part_flush_count, uint64 each): their sum moves on whenever a flush
    emptied the soft TLB. None when this unicorn build is not the one
    described in the module docstring."""
    off = tlb_common_offset()
    env = env_address(uc) if off is not None else None
    return None if env is None else env - off + 8


def read_pmp(address: int) -> tuple[list[int], list[int]]:
    """(cfgs, addrs): the 16 pmpcfg bytes and pmpaddr registers at `address`
    (from pmp_address)."""
    blob = ctypes.string_at(address, RANGES_OFFSET)
    cfgs = [blob[i * ENTRY_STRIDE + 8] for i in range(N_ENTRIES)]
    addrs = [struct.unpack_from("<Q", blob, i * ENTRY_STRIDE)[0] for i in range(N_ENTRIES)]
    return cfgs, addrs


def napot_range(pmpaddr: int) -> tuple[int, int]:
    """[lo, hi] of a NAPOT pmpaddr, as the spec and QEMU decode it: k
    trailing ones give 2^(k+3) bytes (64-bit arithmetic; all ones, or 2^64
    bytes and more, cover everything). emu/mmu/pmp.py uses it too."""
    mask = (1 << 64) - 1
    if pmpaddr == mask:
        return 0, mask
    k = (~pmpaddr & (pmpaddr + 1)).bit_length() - 1      # count of trailing ones
    lo = ((pmpaddr & ~((1 << k) - 1)) << 2) & mask
    return lo, (lo + (1 << (k + 3)) - 1) & mask


def _qemu_range(cfg: int, addr: int, prev: int) -> tuple[int, int]:
    """QEMU 5.0's decoded (sa, ea) for an entry (pmp_update_rule), which
    unicorn keeps beside the registers."""
    mask = (1 << 64) - 1
    a = (cfg >> A_SHIFT) & 3
    if a == 0:
        return 0, mask
    if a == 1:
        return (prev << 2) & mask, ((addr << 2) - 1) & mask
    if a == 2:   # sic: QEMU 5.0 forgets the shift in ea (fixed in 5.1); only its own check reads it
        return (addr << 2) & mask, (addr + 3) & mask
    return napot_range(addr)


def write_pmp(address: int, index: int, cfg: int, addr: int) -> None:
    """Set entry `index` as `csrw pmpaddrN` then `csrw pmpcfg0` executed in
    M-mode leave it in unicorn (registers, QEMU's decoded range, num_rules):
    how the built-in firmware opens memory to S as OpenSBI does, without
    running code before the first slice. The entry must not be locked.
    tests/test_pmp.py compares the result with executed CSR writes."""
    cfgs, addrs = read_pmp(address)
    if cfgs[index] & 0x80:
        raise ValueError(f"PMP entry {index} is locked")
    cfgs[index], addrs[index] = cfg & 0xFF, addr & ((1 << 64) - 1)
    base = (ctypes.c_uint8 * PMP_BYTES).from_address(address)
    struct.pack_into("<Q", base, index * ENTRY_STRIDE, addrs[index])
    base[index * ENTRY_STRIDE + 8] = cfgs[index]
    # csrw pmpcfg0 rewrites all eight entries of its register, and QEMU
    # recomputes each one's range as it goes.
    for i in range(index & ~7, (index & ~7) + 8):
        sa, ea = _qemu_range(cfgs[i], addrs[i], addrs[i - 1] if i else 0)
        struct.pack_into("<QQ", base, RANGES_OFFSET + 16 * i, sa, ea)
    active = sum(1 for c in cfgs if (c >> A_SHIFT) & 3 != A_OFF)
    struct.pack_into("<I", base, NUM_RULES_OFFSET, active)
