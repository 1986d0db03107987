# cython: language_level=3
"""Compiled twin of emu/net/link.py: one direction of a link with Linux
netem semantics, in virtual time.

Same names, contract and random draws as the reference (its docstring
walks through netem's enqueue step by step; this file follows it line for
line). The queue is a heap of _Queued records ordered by their C fields
(time to send, order), the counters are C integers behind a live
LinkStats, and a frame on a perfect link costs no Python-level work
beyond the clock's schedule call and the delivery callback. The pieces
that are not on a hot path - parsing the spec, deriving seeds, the
Gilbert-Elliot chain - are the reference's own."""

from emu.net.fcs import FCS_LEN
from emu.net.link import _GilbertElliot, derive_seed  # noqa: F401  (derive_seed: same names)
from emu.net.netem import parse_netem
from statistics import NormalDist

cdef unsigned long long _U32 = 1 << 32
_NORMAL = NormalDist()

STAT_FIELDS = ("sent", "delivered", "bytes_sent", "bytes_delivered", "duplicated",
               "reordered", "corrupted", "dropped_loss", "dropped_limit", "queued",
               "queue_max")


cdef unsigned long long _scaled(double p):
    """A probability as netem's u32 threshold (tc's set_percent: rint(p * UINT32_MAX))."""
    return <unsigned long long>round(p * (_U32 - 1))


cdef class _CRandom:
    """netem's get_crandom(): correlated 32-bit random values."""

    cdef object getrandbits
    cdef unsigned long long rho, last

    def __init__(self, rng, double corr):
        self.getrandbits = rng.getrandbits
        self.rho = _scaled(corr)
        self.last = 0

    cdef unsigned long long next(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef unsigned long long value = self.getrandbits(32), rho
        if self.rho == 0:
            return value
        rho = self.rho + 1
        # both products are < 2**32 * (2**32 - rho) and 2**32 * rho: no overflow
        self.last = (value * (_U32 - rho) + self.last * rho) >> 32
        return self.last


cdef class LinkStats:
    """Counters of one link direction (see the reference's module docstring)."""

    cdef public long long sent, delivered, bytes_sent, bytes_delivered, duplicated
    cdef public long long reordered, corrupted, dropped_loss, dropped_limit, queued, queue_max

    def as_dict(self):
        """The counters as a plain dict."""
        return {name: getattr(self, name) for name in STAT_FIELDS}

    def __repr__(self):
        return "LinkStats(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


cdef class _Queued:
    """A frame waiting in the link's queue."""

    cdef long long tts, key
    cdef bytes wire


cdef inline bint _before(_Queued a, _Queued b):
    return a.tts < b.tts or (a.tts == b.tts and a.key < b.key)


cdef class Link:
    """One direction of a link: netem's enqueue, then delivery in virtual time."""

    cdef public object clock, name, spec, deliver, rng
    cdef public LinkStats stats
    cdef _CRandom _dup, _loss, _corrupt, _reorder, _delay
    cdef object _ge
    cdef unsigned long long _dup_p, _loss_p, _corrupt_p, _reorder_p
    cdef long long _counter, _order, _head, _last_tts, _limit, _gap, _delay_ns, _jitter_ns
    cdef long long _rate_bps
    cdef bint _have_last, _normal
    cdef list _queue
    cdef object _release_cb

    def __init__(self, clock, spec=None, *, deliver=None, seed=0, name="link"):
        """Create a link. `spec` is a NetemSpec or its netem spelling (ValueError
        if bad); `deliver(wire)` receives frames at their time to send; `seed`
        seeds this link's generator unless the spec has its own `seed`."""
        import random
        self.clock = clock
        self.name = name
        self.spec = s = parse_netem(spec)
        self.deliver = deliver or (lambda wire: None)
        self.stats = LinkStats()
        self.rng = random.Random(s.seed if s.seed is not None else seed)
        self._dup = _CRandom(self.rng, s.duplicate_corr) if s.duplicate else None
        self._dup_p = _scaled(s.duplicate)
        self._ge = _GilbertElliot(self.rng, *s.gemodel) if s.gemodel else None
        self._loss = _CRandom(self.rng, s.loss_corr) if s.loss and not s.gemodel else None
        self._loss_p = _scaled(s.loss)
        self._corrupt = _CRandom(self.rng, s.corrupt_corr) if s.corrupt else None
        self._corrupt_p = _scaled(s.corrupt)
        self._reorder = _CRandom(self.rng, s.reorder_corr) if s.reorder else None
        self._reorder_p = _scaled(s.reorder)
        self._delay = _CRandom(self.rng, s.delay_corr) if s.jitter_ns else None
        self._counter = 0                 # frames delayed since the last reorder
        self._queue = []                  # heap of _Queued by (tts, key)
        self._order = 0
        self._head = -1                   # reordered frames jump the queue
        self._have_last = False           # _last_tts: latest time to send queued (rate)
        self._last_tts = 0
        self._limit, self._gap = s.limit, s.gap
        self._delay_ns, self._jitter_ns, self._rate_bps = s.delay_ns, s.jitter_ns, s.rate_bps
        self._normal = s.distribution == "normal"
        self._release_cb = self._release

    # -- netem_enqueue ------------------------------------------------------
    def send(self, wire):
        """Offer one frame (with FCS) to the link. Never raises for any bytes."""
        cdef bytes w = bytes(wire)
        self.stats.sent += 1
        self.stats.bytes_sent += len(w)
        self._enqueue(w, True)

    cdef int _enqueue(self, bytes wire, bint may_duplicate) except -1:
        cdef LinkStats st = self.stats
        cdef int count = 1
        cdef bytes original = wire
        if may_duplicate and self._dup is not None and self._dup_p >= self._dup.next():
            count += 1
        if self._loss_event():
            count -= 1
        if count == 0:
            st.dropped_loss += 1
            return 0
        if self._corrupt is not None and self._corrupt_p >= self._corrupt.next():
            wire = self._flip_bit(wire)
            st.corrupted += 1
        if len(self._queue) >= self._limit:
            st.dropped_limit += 1
        else:
            self._schedule(wire)
        if count > 1:
            st.duplicated += 1
            self._enqueue(original, False)
        return 0

    cdef bint _loss_event(self) except -1:
        if self._ge is not None:
            return bool(self._ge.lost())
        return self._loss is not None and self._loss_p >= self._loss.next()

    cdef bytes _flip_bit(self, bytes wire):
        cdef Py_ssize_t n = len(wire) - FCS_LEN
        if n <= 0:
            return wire
        b = bytearray(wire)
        i = self.rng.getrandbits(32) % n
        b[i] ^= 1 << (self.rng.getrandbits(32) % 8)
        return bytes(b)

    cdef int _schedule(self, bytes wire) except -1:
        cdef long long now = self.clock.now, delay, tts, key
        cdef Py_ssize_t payload
        cdef _Queued q
        if (self._gap == 0 or self._counter < self._gap - 1
                or self._reorder_p < self._reorder.next()):
            delay = self._tabledist()
            if self._rate_bps:
                if self._queue and self._have_last:
                    # The last queued frame is the reference point (netem).
                    delay = max(0, delay - (self._last_tts - now))
                    now = self._last_tts
                payload = max(0, len(wire) - FCS_LEN)
                delay += (payload * 8 * 1_000_000_000) // self._rate_bps
            tts = now + delay
            self._counter += 1
            key = self._order
            self._order += 1
        else:
            tts = now
            self._counter = 0
            key = self._head
            self._head -= 1
            self.stats.reordered += 1
        if not self._have_last or tts > self._last_tts or not self._queue:
            self._last_tts = tts
            self._have_last = True
        q = _Queued.__new__(_Queued)
        q.tts, q.key, q.wire = tts, key, wire
        self._push(q)
        st = self.stats
        st.queued = len(self._queue)
        if st.queued > st.queue_max:
            st.queue_max = st.queued
        # One event per frame; each event releases the head of the queue, which
        # is due by then (its time is <= this frame's), so order = queue order.
        self.clock.schedule(tts, self._release_cb)
        return 0

    cdef long long _tabledist(self) except? -1:
        cdef unsigned long long rnd
        cdef long long d
        if not self._jitter_ns:
            return self._delay_ns
        rnd = self._delay.next()
        if self._normal:
            d = int(self._delay_ns + self._jitter_ns * _NORMAL.inv_cdf((rnd + 0.5) / _U32))
        else:
            d = (self._delay_ns - self._jitter_ns
                 + <long long>(rnd % <unsigned long long>(2 * self._jitter_ns)))
        return d if d > 0 else 0

    # -- the queue (heapq's algorithm on the C fields) -------------------------
    cdef void _push(self, _Queued item):
        cdef list h = self._queue
        cdef Py_ssize_t i = len(h), parent
        h.append(item)
        while i > 0:
            parent = (i - 1) >> 1
            if not _before(item, <_Queued>h[parent]):
                break
            h[i] = h[parent]
            i = parent
        h[i] = item

    cdef _Queued _pop(self):
        cdef list h = self._queue
        cdef _Queued top = <_Queued>h[0]
        cdef _Queued last = <_Queued>h.pop()
        cdef Py_ssize_t n = len(h), i = 0, child
        if n == 0:
            return top
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and _before(<_Queued>h[child + 1], <_Queued>h[child]):
                child += 1
            if not _before(<_Queued>h[child], last):
                break
            h[i] = h[child]
            i = child
        h[i] = last
        return top

    def _release(self):
        cdef _Queued q = self._pop()
        cdef LinkStats st = self.stats
        st.queued = len(self._queue)
        st.delivered += 1
        st.bytes_delivered += len(q.wire)
        self.deliver(q.wire)
