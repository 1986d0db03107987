# cython: language_level=3
"""Compiled twin of emu/devices/plic.py: the PLIC of QEMU's `virt` board.

Same names, contract and guest-visible behaviour as the reference (its
docstring says what QEMU 7.2 does and why); the pending, claimed and enable
bits are arrays of 32-bit words, as QEMU keeps them, instead of Python
ints, and the claim search runs over them in C. The register map and the
limits are the reference's own."""

from libc.stdint cimport uint32_t

from emu.devices.bus import IrqLine, no_log
from emu.devices.plic import (  # noqa: F401  (same names)
    CTX_M, CTX_S, PLIC_CONTEXT, PLIC_CONTEXT_STRIDE, PLIC_CONTEXTS, PLIC_ENABLE,
    PLIC_ENABLE_STRIDE, PLIC_NUM_PRIORITIES, PLIC_NUM_SOURCES, PLIC_PENDING, no_output,
)

cdef enum:
    NSRC = 96                      # PLIC_NUM_SOURCES
    WORDS = 3                      # (NSRC + 31) // 32
    NCTX = 2                       # PLIC_CONTEXTS
    LAST_PRIORITY = 96             # QEMU 7.2 maps 4..0x180: sources 1..96
    PRIO_MOD = 8                   # PLIC_NUM_PRIORITIES + 1
    R_PENDING = 0x1000
    R_ENABLE = 0x2000
    R_ENABLE_STRIDE = 0x80
    R_CONTEXT = 0x200000
    R_CONTEXT_STRIDE = 0x1000

assert (NSRC, NCTX, PRIO_MOD, R_PENDING, R_ENABLE, R_ENABLE_STRIDE, R_CONTEXT,
        R_CONTEXT_STRIDE) == (PLIC_NUM_SOURCES, PLIC_CONTEXTS, PLIC_NUM_PRIORITIES + 1,
                              PLIC_PENDING, PLIC_ENABLE, PLIC_ENABLE_STRIDE, PLIC_CONTEXT,
                              PLIC_CONTEXT_STRIDE)


cdef object _bits(const uint32_t *w):
    """Three 32-bit words as the reference's one Python int."""
    cdef object lo = w[0], mid = w[1], hi = w[2]
    return lo | (mid << 32) | (hi << 64)


cdef class Plic:
    """The interrupt controller (see the reference)."""

    cdef public object outputs, log
    cdef public long long claims
    cdef uint32_t _priority[LAST_PRIORITY + 1]
    cdef uint32_t _pending[WORDS]
    cdef uint32_t _claimed[WORDS]
    cdef uint32_t _enable[NCTX][WORDS]
    cdef uint32_t _threshold[NCTX]
    cdef bint _levels[NCTX]

    name = "plic"

    def __init__(self, meip=no_output, seip=no_output):
        cdef int i, c
        self.outputs = (meip, seip)
        for i in range(LAST_PRIORITY + 1):
            self._priority[i] = 0
        for i in range(WORDS):
            self._pending[i] = self._claimed[i] = 0
            for c in range(NCTX):
                self._enable[c][i] = 0
        for c in range(NCTX):
            self._threshold[c] = 0
            self._levels[c] = False
        self.claims = 0
        self.log = no_log

    # the reference's state, as it spells it (read-only here)
    @property
    def pending(self):
        return _bits(self._pending)

    @property
    def claimed(self):
        return _bits(self._claimed)

    @property
    def enable(self):
        return [_bits(self._enable[c]) for c in range(NCTX)]

    @property
    def priority(self):
        return [self._priority[i] for i in range(LAST_PRIORITY + 1)]

    @property
    def threshold(self):
        return [self._threshold[c] for c in range(NCTX)]

    @property
    def levels(self):
        return [bool(self._levels[c]) for c in range(NCTX)]

    def line(self, source):
        """Return the IrqLine for source id `source` (1..95)."""
        if not 0 < source < PLIC_NUM_SOURCES:
            raise ValueError(f"PLIC source {source} out of range 1..{PLIC_NUM_SOURCES - 1}")
        return IrqLine(self, source)

    def set_level(self, source, level):
        """A device drove `source` to `level`: high sets the pending bit and
        re-evaluates the outputs, low does nothing (sifive_plic_irq_request)."""
        cdef int s
        if level:
            s = source
            if not 0 <= s < NSRC:
                raise ValueError(f"PLIC source {source} out of range")
            self._pending[s >> 5] |= 1u << (s & 31)
            self._update()

    cdef int _best(self, int ctx):
        cdef int w, b, s, best = 0
        cdef uint32_t cand, prio, best_prio = self._threshold[ctx]
        for w in range(WORDS):
            cand = self._pending[w] & ~self._claimed[w] & self._enable[ctx][w]
            while cand:
                b = 0
                while not (cand >> b) & 1:
                    b += 1
                s = 32 * w + b
                prio = self._priority[s] if s <= LAST_PRIORITY else 0
                if prio > best_prio:
                    best, best_prio = s, prio
                cand &= cand - 1
        return best

    def best(self, ctx):
        """The source a claim by context `ctx` would return now (0: none)."""
        if not 0 <= ctx < NCTX:
            raise IndexError(f"no PLIC context {ctx}")
        return self._best(ctx)

    cdef int _update(self) except -1:
        cdef int ctx
        cdef bint level
        for ctx in range(NCTX):
            level = self._best(ctx) != 0
            if level != self._levels[ctx]:
                self._levels[ctx] = level
                self.outputs[ctx](level)
        return 0

    cdef int _claim(self, int ctx) except -1:
        cdef int s = self._best(ctx)
        if s:
            self._pending[s >> 5] &= ~(1u << (s & 31))
            self._claimed[s >> 5] |= 1u << (s & 31)
            self.claims += 1
        self._update()
        return s

    def _bad(self, what, offset, size):
        self.log("guest_errors", f"plic: {what} at +0x{offset:x} (size {size}) ignored")

    # -- MMIO ----------------------------------------------------------------
    def read(self, offset, size):
        """Return the 32-bit register at `offset`; a claim register read claims.
        Anything else reads 0 (and is logged)."""
        cdef long long off, ctx, word, reg
        if size != 4 or offset % 4:
            self._bad("read of the wrong size (QEMU: access fault)", offset, size)
            return 0
        off = offset
        if 0 < off <= 4 * LAST_PRIORITY:
            return self._priority[off // 4]
        if R_PENDING <= off < R_PENDING + 4 * WORDS:
            return self._pending[(off - R_PENDING) // 4]
        ctx, word = divmod(off - R_ENABLE, R_ENABLE_STRIDE)
        if 0 <= ctx < NCTX and word < 4 * WORDS:
            return self._enable[ctx][word // 4]
        ctx, reg = divmod(off - R_CONTEXT, R_CONTEXT_STRIDE)
        if 0 <= ctx < NCTX and reg == 0:
            return self._threshold[ctx]
        if 0 <= ctx < NCTX and reg == 4:
            return self._claim(ctx)
        self._bad("read of an invalid register", offset, size)
        return 0

    def write(self, offset, size, value):
        """Write the 32-bit register at `offset`. Invalid registers, the
        pending bits and completions of sources >= 96 are ignored (logged)."""
        cdef long long off, ctx, word, reg
        cdef uint32_t v
        if size != 4 or offset % 4:
            self._bad(f"write of 0x{value:x} of the wrong size (QEMU: access fault)",
                      offset, size)
            return
        v = value & 0xFFFFFFFF
        off = offset
        if 0 < off <= 4 * LAST_PRIORITY:
            self._priority[off // 4] = v % PRIO_MOD
            self._update()
            return
        if R_PENDING <= off < R_PENDING + 4 * WORDS:
            self._bad(f"write of 0x{v:x} to the read-only pending bits", offset, size)
            return
        ctx, word = divmod(off - R_ENABLE, R_ENABLE_STRIDE)
        if 0 <= ctx < NCTX and word < 4 * WORDS:
            self._enable[ctx][word // 4] = v
            return                        # QEMU 7.2 does not re-evaluate its outputs here
        ctx, reg = divmod(off - R_CONTEXT, R_CONTEXT_STRIDE)
        if 0 <= ctx < NCTX and reg == 0:
            self._threshold[ctx] = v % PRIO_MOD
            self._update()
            return
        if 0 <= ctx < NCTX and reg == 4:
            if v < NSRC:
                self._claimed[v >> 5] &= ~(1u << (v & 31))
                self._update()
            else:
                self._bad(f"completion of invalid source {v}", offset, size)
            return
        self._bad(f"write of 0x{v:x} to an invalid register", offset, size)
