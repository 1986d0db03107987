"""One direction of a link with Linux netem semantics, in virtual time.

`Link.send(wire)` runs netem's enqueue (Linux net/sched/sch_netem.c,
netem_enqueue) on a frame; frames leave through `deliver(wire)` at their
time to send, fired by the machine's Clock - never synchronously inside
send(), so an endpoint is never re-entered while it transmits. In order:

1. duplicate: with probability P a second copy is made (count = 2);
2. loss: one loss event (random with correlation, or Gilbert-Elliot) takes
   one away (count - 1); count 0 drops the frame. A frame both duplicated
   and lost therefore goes through once, as in netem;
3. corrupt: with probability P one random bit of the frame (not of the FCS,
   which the sender's hardware computed before the damage) is flipped, so
   the receiver's FCS check fails;
4. limit: a frame arriving at a queue of `limit` frames is dropped (tail drop);
5. reorder/delay: unless reordering (`gap` frames since the last reorder,
   then probability P), the frame waits delay +- jitter (uniform, or normal,
   netem's tabledist), plus with `rate` its serialisation time counted from
   the time the last queued frame leaves; the queue is ordered by time to
   send, so jitter alone reorders, as netem's tfifo does. A reordered frame
   skips the delay and goes to the head of the queue;
6. the copy made in step 1 then goes through steps 2-5 itself, never
   duplicated again (netem marks it as a duplicate).

Random choices use netem's correlated generator (get_crandom: the next value
is a weighted mean of a fresh 32-bit value and the last one, weight = the
correlation) fed by this link's own random.Random(seed); a link draws only
for the impairments it has, like netem. `derive_seed` turns the run's --seed
and a link's name into its seed, so the same run always makes the same
choices.

Statistics (LinkStats): sent, delivered, bytes_sent, bytes_delivered,
duplicated, reordered, corrupted, dropped_loss, dropped_limit, queued,
queue_max. Always sent + duplicated == delivered + dropped_loss +
dropped_limit + queued.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from statistics import NormalDist

from emu.core.clock import Clock
from emu.net.fcs import FCS_LEN
from emu.net.netem import NetemSpec, parse_netem

_U32 = 1 << 32
_NORMAL = NormalDist()


def derive_seed(run_seed: int, *names: str) -> int:
    """Return a 64-bit seed for one component from the run's seed and its name.

    Stable across processes and Python versions (SHA-256, not hash()).
    """
    h = hashlib.sha256(repr((int(run_seed),) + names).encode())
    return int.from_bytes(h.digest()[:8], "little")


def _scaled(p: float) -> int:
    """A probability as netem's u32 threshold (tc's set_percent: rint(p * UINT32_MAX))."""
    return int(round(p * (_U32 - 1)))


class _CRandom:
    """netem's get_crandom(): correlated 32-bit random values."""

    __slots__ = ("rng", "rho", "last")

    def __init__(self, rng: random.Random, corr: float) -> None:
        self.rng = rng
        self.rho = _scaled(corr)
        self.last = 0

    def next(self) -> int:
        """The next 32-bit value, correlated with the last one by rho."""
        value = self.rng.getrandbits(32)
        if self.rho == 0:
            return value
        rho = self.rho + 1
        self.last = (value * (_U32 - rho) + self.last * rho) >> 32
        return self.last


class _GilbertElliot:
    """netem's loss_gilb_ell(): a two-state Markov loss model.

    States good/bad; p = P(good->bad), r = P(bad->good), 1-h = P(loss | bad),
    1-k = P(loss | good). The loss draw uses the state the frame arrived in.
    """

    __slots__ = ("rng", "a1", "a2", "a3", "a4", "bad")

    def __init__(self, rng: random.Random, p: float, r: float, one_minus_h: float,
                 one_minus_k: float) -> None:
        self.rng = rng
        self.a1, self.a2 = _scaled(p), _scaled(r)
        self.a3 = _scaled(1.0 - one_minus_h)  # h, as the kernel stores it
        self.a4 = _scaled(one_minus_k)
        self.bad = False

    def lost(self) -> bool:
        """Step the chain once; True if this frame is lost."""
        u = self.rng.getrandbits
        if not self.bad:
            if u(32) < self.a1:
                self.bad = True
            return u(32) < self.a4
        if u(32) < self.a2:
            self.bad = False
        return u(32) > self.a3


@dataclass
class LinkStats:
    """Counters of one link direction (see the module docstring)."""

    sent: int = 0
    delivered: int = 0
    bytes_sent: int = 0
    bytes_delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    dropped_loss: int = 0
    dropped_limit: int = 0
    queued: int = 0
    queue_max: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


class Link:
    """One direction of a link: netem's enqueue, then delivery in virtual time."""

    def __init__(self, clock: Clock, spec: NetemSpec | str | None = None, *,
                 deliver: Callable[[bytes], None] | None = None, seed: int = 0,
                 name: str = "link") -> None:
        """Create a link. `spec` is a NetemSpec or its netem spelling (ValueError
        if bad); `deliver(wire)` receives frames at their time to send; `seed`
        seeds this link's generator unless the spec has its own `seed`."""
        self.clock = clock
        self.name = name
        self.spec = parse_netem(spec)
        self.deliver: Callable[[bytes], None] = deliver or (lambda wire: None)
        self.stats = LinkStats()
        s = self.spec
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
        self._queue: list[tuple[int, int, bytes]] = []  # (time_to_send, order, wire)
        self._order = itertools.count()
        self._head = itertools.count(-1, -1)  # reordered frames jump the queue
        self._last_tts: int | None = None     # latest time to send queued (for rate)

    # -- netem_enqueue ------------------------------------------------------
    def send(self, wire: bytes) -> None:
        """Offer one frame (with FCS) to the link. Never raises for any bytes."""
        st = self.stats
        st.sent += 1
        st.bytes_sent += len(wire)
        self._enqueue(wire, may_duplicate=True)

    def _enqueue(self, wire: bytes, may_duplicate: bool) -> None:
        st = self.stats
        count = 1
        if may_duplicate and self._dup is not None and self._dup_p >= self._dup.next():
            count += 1
        if self._loss_event():
            count -= 1
        if count == 0:
            st.dropped_loss += 1
            return
        original = wire
        if self._corrupt is not None and self._corrupt_p >= self._corrupt.next():
            wire = self._flip_bit(wire)
            st.corrupted += 1
        if len(self._queue) >= self.spec.limit:
            st.dropped_limit += 1
        else:
            self._schedule(wire)
        if count > 1:
            st.duplicated += 1
            self._enqueue(original, may_duplicate=False)

    def _loss_event(self) -> bool:
        if self._ge is not None:
            return self._ge.lost()
        return self._loss is not None and self._loss_p >= self._loss.next()

    def _flip_bit(self, wire: bytes) -> bytes:
        n = len(wire) - FCS_LEN
        if n <= 0:
            return wire
        b = bytearray(wire)
        b[self.rng.getrandbits(32) % n] ^= 1 << (self.rng.getrandbits(32) % 8)
        return bytes(b)

    def _schedule(self, wire: bytes) -> None:
        s, now = self.spec, self.clock.now
        if (s.gap == 0 or self._counter < s.gap - 1
                or self._reorder_p < self._reorder.next()):  # type: ignore[union-attr]
            delay = self._tabledist()
            if s.rate_bps:
                if self._queue and self._last_tts is not None:
                    # The last queued frame is the reference point (netem).
                    delay = max(0, delay - (self._last_tts - now))
                    now = self._last_tts
                delay += (max(0, len(wire) - FCS_LEN) * 8 * 1_000_000_000) // s.rate_bps
            tts = now + delay
            self._counter += 1
            key = next(self._order)
        else:
            tts = now
            self._counter = 0
            key = next(self._head)
            self.stats.reordered += 1
        if self._last_tts is None or tts > self._last_tts or not self._queue:
            self._last_tts = tts
        heapq.heappush(self._queue, (tts, key, wire))
        st = self.stats
        st.queued = len(self._queue)
        st.queue_max = max(st.queue_max, st.queued)
        # One event per frame; each event releases the head of the queue, which
        # is due by then (its time is <= this frame's), so order = queue order.
        self.clock.schedule(tts, self._release)

    def _tabledist(self) -> int:
        s = self.spec
        if not s.jitter_ns:
            return s.delay_ns
        rnd = self._delay.next()  # type: ignore[union-attr]
        if s.distribution == "normal":
            d = s.delay_ns + s.jitter_ns * _NORMAL.inv_cdf((rnd + 0.5) / _U32)
        else:
            d = s.delay_ns - s.jitter_ns + rnd % (2 * s.jitter_ns)
        return max(0, int(d))

    def _release(self) -> None:
        tts, _, wire = heapq.heappop(self._queue)
        st = self.stats
        st.queued = len(self._queue)
        st.delivered += 1
        st.bytes_delivered += len(wire)
        self.deliver(wire)
