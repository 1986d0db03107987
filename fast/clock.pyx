# cython: language_level=3
"""Compiled twin of emu/core/clock.py: virtual time and the event queue.

Same names and contract as the reference (its docstring says what the
clock promises). The queue is a binary heap of Event objects kept in a
list and ordered by the C fields (at, seq), so pushing and popping compare
two integers instead of building and comparing tuples; callbacks are still
Python callables, called with their arguments when due."""

cdef long long _TIME_MAX = 0x7FFF_FFFF_FFFF_FFFF


cdef class Event:
    """A callback due at virtual time `at` (ns); `seq` breaks ties FIFO."""

    cdef public long long at
    cdef public long long seq
    cdef public object callback
    cdef public tuple args
    cdef public bint cancelled

    def __init__(self, long long at, long long seq, callback, tuple args=(),
                 bint cancelled=False):
        self.at = at
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = cancelled

    def __repr__(self):
        return (f"Event(at={self.at}, seq={self.seq}, callback={self.callback!r}, "
                f"args={self.args!r}, cancelled={bool(self.cancelled)})")


cdef inline bint _before(Event a, Event b):
    return a.at < b.at or (a.at == b.at and a.seq < b.seq)


cdef class Clock:
    """Virtual nanoseconds plus a deterministic queue of future events."""

    cdef public long long now
    cdef public object on_earlier
    cdef list _heap
    cdef long long _seq

    def __init__(self):
        self.now = 0
        self._heap = []
        self._seq = 0
        # Called with an event's time when it is scheduled ahead of every
        # other (the run loop shortens the slice that is running to it).
        self.on_earlier = None

    # -- the heap (heapq's algorithm, on the C fields) ----------------------
    cdef void _push(self, Event ev):
        cdef list h = self._heap
        cdef Py_ssize_t i = len(h), parent
        cdef Event p
        h.append(ev)
        while i > 0:
            parent = (i - 1) >> 1
            p = <Event>h[parent]
            if not _before(ev, p):
                break
            h[i] = p
            i = parent
        h[i] = ev

    cdef Event _pop(self):
        cdef list h = self._heap
        cdef Event top = <Event>h[0]
        cdef Event last = <Event>h.pop()
        cdef Py_ssize_t n = len(h), i = 0, child
        if n == 0:
            return top
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and _before(<Event>h[child + 1], <Event>h[child]):
                child += 1
            if not _before(<Event>h[child], last):
                break
            h[i] = h[child]
            i = child
        h[i] = last
        return top

    cdef Event _add(self, object at, object callback, tuple args):
        cdef long long t
        cdef Event ev
        if at > _TIME_MAX:
            raise ValueError(f"event time {at} ns is beyond 2**63-1 ns")
        t = self.now if at < self.now else int(at)
        ev = Event.__new__(Event)
        ev.at = t
        ev.seq = self._seq
        self._seq += 1
        ev.callback = callback
        ev.args = args
        ev.cancelled = False
        earlier = len(self._heap) == 0 or t < (<Event>self._heap[0]).at
        self._push(ev)
        if earlier and self.on_earlier is not None:
            self.on_earlier(t)
        return ev

    # -- the reference's API --------------------------------------------------
    def schedule(self, at, callback, *args):
        """Schedule `callback(*args)` at absolute virtual time `at` (ns).

        Times in the past are clamped to now; ValueError beyond 2**63-1 ns.
        Returns the event (cancellable).
        """
        return self._add(at, callback, args)

    def after(self, delay, callback, *args):
        """Schedule `callback(*args)` `delay` ns from now. Returns the event."""
        d = int(delay)
        return self._add(self.now + (d if d > 0 else 0), callback, args)

    @staticmethod
    def cancel(event):
        """Cancel a scheduled event (no-op if it already fired)."""
        event.cancelled = True

    def next_time(self):
        """Return the time of the earliest pending event, or None if none."""
        cdef list h = self._heap
        while h and (<Event>h[0]).cancelled:
            self._pop()
        return (<Event>h[0]).at if h else None

    def pending(self):
        """Return the number of live (not cancelled) events."""
        cdef Event ev
        cdef Py_ssize_t n = 0
        for ev in self._heap:
            if not ev.cancelled:
                n += 1
        return n

    def advance(self, long long to):
        """Move time forward to `to` (never backwards) without firing events."""
        if to > self.now:
            self.now = to

    def run_due(self):
        """Fire every event due at or before now, in order. Returns how many fired.

        Callbacks may schedule further events; those due now fire in this call.
        """
        cdef list h = self._heap
        cdef Event ev
        cdef Py_ssize_t fired = 0
        while h and (<Event>h[0]).at <= self.now:
            ev = self._pop()
            if ev.cancelled:
                continue
            ev.callback(*ev.args)
            fired += 1
        return fired
