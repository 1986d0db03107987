"""The I/O path's twins agree with their references: emu.core.clock,
emu.net.link, emu.net.segment, emu.net.aoe_target, emu.devices.nic and
emu.devices.plic against emu._fast.clock, .link, .segment, .aoe_target,
.nic and .plic (MachineConfig.io picks them).

- Clock: random sequences of schedule/after/cancel/advance/run_due/
  next_time/pending, callbacks that schedule and cancel further events,
  past times and on_earlier: the same firing order, times and return values.
- Link: every netem impairment (loss random and gemodel, correlations,
  duplicate, corrupt, reorder with gap, delay with uniform and normal
  jitter, rate, limit), random frame sizes and gaps: the same frames at the
  same times, byte for byte, and the same counters.
- Segment: random ports with impairments, unicast/broadcast/unknown
  frames, damaged FCS, runts, giants, taps, a detach: the same deliveries,
  tap records and stats().
- The eNIC: the hostile-descriptor fuzz of tests/test_nic_fuzz.py driven
  into each: every register, counter, interrupt edge, transmitted frame,
  DMA read (in order), log line and byte of RAM the same after every
  operation.
- The PLIC: random line levels, claims, completions and register writes,
  valid or not: the same outputs, values, log lines and state.
- The AoE target: the vblade comparison's requests (every command, filter
  and error), intact and damaged: the same replies, counters and disk; and
  bursts into a target with a service time, a seeking disk and few
  buffers: the same replies at the same virtual times, the same drops.
- A whole machine: the swap demo over a badly impaired link with each
  twin retires the same instructions, prints the same and counts the same.
"""

from __future__ import annotations

import random
import struct

import pytest

from emu.core import clock as clock_ref
from emu.core import twins
from emu.net import link as link_ref
from emu.net import segment as segment_ref
from emu.net.fcs import append_fcs
from tests.conftest import need_fast

SPECS = [
    "",
    "loss 5%",
    "loss 20% 50%",
    "loss gemodel 5% 30% 90% 1%",
    "duplicate 10% 25%",
    "corrupt 5%",
    "delay 50us 20us 30%",
    "delay 100us 40us distribution normal",
    "delay 10us reorder 30% 40% gap 3",
    "rate 100mbit limit 5",
    "delay 20us 5us rate 1gbit loss 3% duplicate 5% corrupt 2% reorder 10% limit 50",
]


def _fast(name: str):
    need_fast(twins.available(name), f"the compiled {name} twin")
    return twins.compiled(name)


# -- Clock ------------------------------------------------------------------------
def _clock_script(Clock: type, seed: int) -> list:  # noqa: N803 - a class
    """Drive one clock with a seeded random script; return everything observed."""
    rng = random.Random(seed)
    clock = Clock()
    seen: list = []
    clock.on_earlier = lambda at: seen.append(("earlier", at))
    events = []

    def fire(tag: int) -> None:
        seen.append(("fire", tag, clock.now))
        r = rng.random()
        if r < 0.3:   # a callback schedules more, sometimes due right now
            events.append(clock.after(rng.choice([0, 0, 1, 7, 500]), fire, tag * 10 + 1))
        elif r < 0.4 and events:
            Clock.cancel(rng.choice(events))

    for step in range(3000):
        op = rng.randrange(8)
        if op <= 2:
            at = clock.now + rng.choice([-5, 0, 0, 1, 2, 3, 100, rng.randrange(10_000)])
            events.append(clock.schedule(at, fire, step))
        elif op == 3:
            events.append(clock.after(rng.choice([-3, 0, 5, rng.randrange(5_000)]), fire, step))
        elif op == 4 and events:
            Clock.cancel(rng.choice(events))
        elif op == 5:
            clock.advance(clock.now + rng.choice([-10, 0, 1, 50, rng.randrange(3_000)]))
        elif op == 6:
            seen.append(("ran", clock.run_due()))
        else:
            seen.append(("next", clock.next_time(), clock.pending()))
    while (t := clock.next_time()) is not None:
        clock.advance(t)
        seen.append(("ran", clock.run_due()))
    seen.append([(e.at, e.seq, e.args, e.cancelled) for e in events])
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_clock_twins_agree_on_random_scripts(seed: int) -> None:
    fast = _fast("clock")
    assert _clock_script(fast.Clock, seed) == _clock_script(clock_ref.Clock, seed)


@pytest.mark.parametrize("impl", ["python", "fast"])
def test_clock_refuses_times_past_64_bits_and_clamps_the_past(impl: str) -> None:
    Clock = clock_ref.Clock if impl == "python" else _fast("clock").Clock  # noqa: N806
    clock = Clock()
    clock.advance(1_000)
    assert clock.schedule(5, print).at == 1_000          # the past is now
    assert clock.schedule(clock_ref.TIME_MAX, print).at == clock_ref.TIME_MAX
    with pytest.raises(ValueError, match="beyond 2\\*\\*63-1 ns"):
        clock.schedule(clock_ref.TIME_MAX + 1, print)
    assert clock.pending() == 2


# -- Link -------------------------------------------------------------------------
def _link_run(Link: type, Clock: type, spec: str, seed: int) -> tuple:  # noqa: N803
    rng = random.Random(seed)
    clock = Clock()
    got: list[tuple[int, bytes]] = []
    link = Link(clock, spec, seed=seed, deliver=lambda w: got.append((clock.now, w)))
    for i in range(1500):
        t = clock.now + rng.choice([0, 0, 100, 1_000, rng.randrange(200_000)])
        while (nxt := clock.next_time()) is not None and nxt <= t:
            clock.advance(nxt)
            clock.run_due()
        clock.advance(t)
        size = rng.choice([0, 1, 3, 4, 5, 60, 1514, rng.randrange(9000)])
        body = i.to_bytes(4, "big") + rng.randbytes(max(0, size - 4))
        link.send(append_fcs(body[:size]) if rng.random() < 0.9 else body[:size])
    while (nxt := clock.next_time()) is not None:
        clock.advance(nxt)
        clock.run_due()
    return got, link.stats.as_dict(), link.name, str(link.spec)


@pytest.mark.parametrize("spec", SPECS)
def test_link_twins_deliver_the_same_frames_at_the_same_times(spec: str) -> None:
    fast = _fast("link")
    for seed in (1, 2):
        ref = _link_run(link_ref.Link, clock_ref.Clock, spec, seed)
        assert _link_run(fast.Link, clock_ref.Clock, spec, seed) == ref
        assert _link_run(fast.Link, _fast("clock").Clock, spec, seed) == ref
        assert ref[1]["sent"] == 1500


# -- Segment -----------------------------------------------------------------------
class _Sink:
    """An endpoint recording what reaches it."""

    def __init__(self, clock, log: list, name: str) -> None:  # noqa: ANN001
        self.clock, self.log, self.name = clock, log, name

    def receive(self, wire: bytes) -> None:
        self.log.append((self.name, self.clock.now, wire))


def _segment_run(Segment: type, Clock: type, seed: int) -> tuple:  # noqa: N803
    rng = random.Random(seed)
    clock = Clock()
    seg = Segment(clock, seed=seed, max_frame=1600)
    log: list = []
    seg.add_tap(lambda t, f: log.append(("tap", t, f)))
    macs = [bytes([2, 0, 0, 0, 0, i]) for i in range(5)]
    ports = []
    for i in range(5):
        port = seg.attach(_Sink(clock, log, f"p{i}"), f"p{i}", up=rng.choice(SPECS),
                          down=rng.choice(SPECS))
        port.taps.append(lambda t, f, i=i: log.append((f"ptap{i}", t, f)))
        ports.append(port)
    for step in range(2000):
        clock.advance(clock.now + rng.choice([0, 10, 1_000, rng.randrange(100_000)]))
        clock.run_due()
        i = rng.randrange(5)
        dst = rng.choice(macs + [b"\xff" * 6, bytes([1, 0, 0x5E, 0, 0, 1]),
                                 bytes([2, 9, 9, 9, 9, 9])])
        src = macs[i] if rng.random() < 0.9 else bytes([3, 0, 0, 0, 0, 7])
        size = rng.choice([60, 100, 1514, 1700, rng.randrange(14, 1600)])
        frame = (dst + src + b"\x88\xa2" + step.to_bytes(4, "big") + rng.randbytes(size))[:size]
        r = rng.random()
        wire = append_fcs(frame) if r < 0.9 else (frame[:5] if r < 0.95 else frame + b"bad!")
        ports[i].send(wire)
        if step == 1500:
            ports[3].detach()
    while (nxt := clock.next_time()) is not None:
        clock.advance(nxt)
        clock.run_due()
    return log, seg.stats(), sorted(seg.ports)


@pytest.mark.parametrize("seed", range(4))
def test_segment_twins_switch_the_same_frames(seed: int) -> None:
    fast = _fast("segment")
    ref = _segment_run(segment_ref.Segment, clock_ref.Clock, seed)
    assert _segment_run(fast.Segment, _fast("clock").Clock, seed) == ref
    assert _segment_run(fast.Segment, clock_ref.Clock, seed) == ref
    assert ref[1]["forwarded"] > 1000 and ref[1]["flooded"] > 100


@pytest.mark.parametrize("impl", ["python", "fast"])
def test_segment_refuses_bad_ports_in_one_line(impl: str) -> None:
    Segment = segment_ref.Segment if impl == "python" else _fast("segment").Segment  # noqa: N806
    seg = Segment(clock_ref.Clock())
    seg.attach(_Sink(None, [], "a"), "a")
    with pytest.raises(ValueError, match="already attached"):
        seg.attach(_Sink(None, [], "a"), "a")
    with pytest.raises(ValueError, match="no receive"):
        seg.attach(object(), "b")
    with pytest.raises(ValueError, match="bad netem spec"):
        seg.attach(_Sink(None, [], "c"), "c", net="loss lots")


# -- a whole machine -------------------------------------------------------------------
def test_the_swap_demo_runs_the_same_on_both_io_twins(kernel: str) -> None:
    from emu.guestview import kstats
    from emu.machine.config import MachineConfig
    from emu.machine.machine import Machine
    from emu.net.network import NetConfig

    for name in ("clock", "link", "segment", "nic", "plic", "aoe_target"):
        _fast(name)
    runs = []
    for io in ("python", "fast"):
        m = Machine(MachineConfig(
            kernel=kernel, append="init=memhog pages=300 passes=1 procs=2",
            ram_size=4 << 20, seed=3, max_insns=2_000_000_000, io=io,
            net=NetConfig(net="loss 5% delay 20us 5us duplicate 1% reorder 10% corrupt 0.5%",
                          seed=3, target_service="20us")))
        m.run()
        assert m.exit_status == 0 and b"mismatches=0" in m.console
        k = kstats.collect(m)
        assert k["swap"]["swap_outs"] > 500 and k["aoe"]["retransmits"] > 10
        runs.append((m.icount, m.clock.now, m.stats.slices, m.console, m.network.stats(),
                     type(m.clock).__module__, type(m.network.segment).__module__,
                     type(m.devices["nic"]).__module__, type(m.devices["plic"]).__module__,
                     type(m.network.targets[0]).__module__))
    assert runs[0][:5] == runs[1][:5]
    assert runs[0][5:] == ("emu.core.clock", "emu.net.segment", "emu.devices.nic",
                           "emu.devices.plic", "emu.net.aoe_target")
    assert runs[1][5:] == ("emu._fast.clock", "emu._fast.segment", "emu._fast.nic",
                           "emu._fast.plic", "emu._fast.aoe_target")


# -- the eNIC ----------------------------------------------------------------------------
NIC_REGS = (tuple(range(0, 0x3C, 4)) + tuple(range(0x40, 0x54, 4)) + tuple(range(0x60, 0x74, 4))
            + tuple(range(0x100, 0x100 + 4 * 34, 4)))


def test_nic_twin_constants_are_the_references() -> None:
    from emu.devices import nic as nic_ref

    fast = _fast("nic")
    assert fast.CONSTANTS and all(getattr(nic_ref, k) == v for k, v in fast.CONSTANTS.items())
    assert fast.Nic.name == nic_ref.Nic.name == "nic"


class _PlainRam:
    """The fuzz's view of a plain PhysMem (which the compiled NIC accesses
    directly): the helpers poke and peek it as the CPU would."""

    def __init__(self, mem) -> None:  # noqa: ANN001
        self.mem, self.contains, self.log, self.violations = mem, mem.contains, [], []

    def poke(self, addr: int, data: bytes) -> None:
        off = addr - self.mem.base
        self.mem.view[off:off + len(data)] = data

    def peek(self, addr: int, size: int) -> bytes:
        off = addr - self.mem.base
        return bytes(self.mem.view[off:off + size])


def _nic_fuzz_trace(cls: type, seed: int, configs: int, plain: bool = False) -> list:
    """The hostile-descriptor fuzz of tests/test_nic_fuzz.py driven into one
    NIC class, on the fuzz's logging memory or (`plain`) on a plain PhysMem;
    everything observable after every operation (DMA reads only when logged)."""
    from emu.core.clock import Clock
    from emu.core.memory import PhysMem
    from emu.devices import nic as N  # noqa: N812
    from emu.devices.bus import IrqLine
    from tests import test_nic_fuzz as F  # noqa: N812
    from tests.test_nic_support import IRQ_NIC, OUR_MAC, Sink

    rng = random.Random(seed)
    sink, sent, logs = Sink(), [], []
    ram = PhysMem(F.RAM_BASE, F.FUZZ_RAM) if plain else F.LoggingMem()
    mem = _PlainRam(ram) if plain else ram
    nic = cls(ram, IrqLine(sink, IRQ_NIC), Clock(), OUR_MAC)
    nic.transmit = sent.append
    nic.log = lambda topic, msg: logs.append((topic, msg))
    trace: list = []

    def observe() -> None:
        trace.append((tuple(nic.read(off, 4) for off in NIC_REGS), nic.stats(), sink.level,
                      sink.edges, len(sent), sent[-1] if sent else None, tuple(mem.log),
                      len(mem.violations), len(logs), logs[-1] if logs else None,
                      nic.tx.head, nic.tx.size, nic.rx.head, nic.rx.fetch, tuple(nic.rx.cache)))
        mem.log.clear()

    for _ in range(configs):
        if rng.random() < 0.5:
            nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
        else:
            nic.reset()
        for which, lo in ((0, N.REG_TX_BASE_LO), (1, N.REG_RX_BASE_LO)):
            base, size = F.pick_base(rng, which), F.pick_size(rng)
            nic.write(lo, 4, base & 0xFFFF_FFFF)
            nic.write(lo + 4, 4, (base >> 32) & 0xFFFF_FFFF)
            nic.write(lo + 8, 4, size)
            F.fill_ring(rng, mem, base & F.U64, size)
        nic.write(N.REG_INT_MASK, 4, rng.getrandbits(4))
        if rng.random() < 0.3:
            nic.write(N.REG_MTU, 4, rng.choice([1500, 9000, 68]))
        if rng.random() < 0.3:
            nic.write(N.REG_TX_TAIL, 4, rng.randrange(8))
            nic.write(N.REG_RX_TAIL, 4, rng.randrange(8))
        if rng.random() < 0.95:
            nic.write(N.REG_CTRL, 4, N.CTRL_ENABLE | rng.choice([0, N.CTRL_PROMISC]))
        observe()
        for _ in range(rng.randint(1, 8)):
            F.random_op(rng, nic)
            observe()
        trace.append((hash(mem.peek(F.RAM_BASE, F.FUZZ_RAM)), hash(bytes(ram.written))))
    return trace


def test_nic_twins_agree_under_the_hostile_fuzz() -> None:
    """Every register, counter, interrupt edge, transmitted frame, DMA read (in
    order), log line and byte of RAM the same, after every operation."""
    from emu.devices import nic as nic_ref

    fast = _fast("nic")
    ref = _nic_fuzz_trace(nic_ref.Nic, 77, 5000)
    got = _nic_fuzz_trace(fast.Nic, 77, 5000)
    assert len(got) == len(ref)
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a == b, f"step {i}: the twins differ"
    errors = ref[-2][1]
    assert all(errors[f"error_{n}"] > 0 for n in nic_ref.ERR_NAMES[1:-1])   # not vacuous


def _unlogged(trace: list) -> list:
    return [t if not isinstance(t, tuple) or len(t) == 2 else t[:6] + t[8:] for t in trace]


def test_nic_twin_on_plain_ram_dmas_directly_and_agrees() -> None:
    """On the machine's own PhysMem the compiled NIC reads and writes RAM
    itself: the same registers, frames, RAM bytes and written-page marks
    as the reference on a logging memory."""
    from emu.core.memory import PhysMem
    from emu.devices import nic as nic_ref
    from tests.test_nic_support import IRQ_NIC, OUR_MAC, Sink

    fast = _fast("nic")
    ref = _unlogged(_nic_fuzz_trace(nic_ref.Nic, 78, 3000))
    got = _unlogged(_nic_fuzz_trace(fast.Nic, 78, 3000, plain=True))
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a == b, f"step {i}: the twins differ"

    class Watched(PhysMem):     # not the plain class: the twin goes through the methods
        reads = 0

        def read(self, addr: int, size: int) -> bytes:
            Watched.reads += 1
            return super().read(addr, size)

    from emu.devices.bus import IrqLine
    for mem, via_methods in ((PhysMem(0x8000_0000, 1 << 16), False),
                             (Watched(0x8000_0000, 1 << 16), True)):
        nic = fast.Nic(mem, IrqLine(Sink(), IRQ_NIC), None, OUR_MAC)
        sent: list[bytes] = []
        nic.transmit = sent.append
        frame = bytes(range(60))
        mem.view[0x3000:0x3000 + 60] = frame
        mem.view[0x1000:0x1010] = struct.pack("<QHHI", 0x8000_3000, 60, 0, 0)
        for reg, value in ((nic_ref.REG_TX_BASE_LO, 0x8000_1000), (nic_ref.REG_TX_SIZE, 4),
                           (nic_ref.REG_RX_BASE_LO, 0x8000_2000), (nic_ref.REG_RX_SIZE, 4),
                           (nic_ref.REG_CTRL, nic_ref.CTRL_ENABLE), (nic_ref.REG_TX_TAIL, 1)):
            nic.write(reg, 4, value)
        assert nic.read(nic_ref.REG_ERROR, 4) == 0 and sent == [append_fcs(frame)]
        assert mem.view[0x100C] == nic_ref.DESC_S_DONE and mem.written[1] == 1
        assert (Watched.reads == 2) == via_methods


# -- the PLIC ------------------------------------------------------------------------------
def _plic_trace(cls: type, seed: int) -> list:
    """Random line levels, register reads (claims) and writes (priorities,
    enables, thresholds, completions), valid or not, into one PLIC class."""
    from emu.devices import plic as P  # noqa: N812

    rng = random.Random(seed)
    seen: list = []
    plic = cls(meip=lambda v: seen.append(("meip", v)), seip=lambda v: seen.append(("seip", v)))
    plic.log = lambda topic, msg: seen.append((topic, msg))
    lines = [plic.line(s) for s in range(1, P.PLIC_NUM_SOURCES)]
    for s in range(1, 12):       # a driver's set-up, so that claims find sources
        plic.write(4 * s, 4, rng.randrange(1, 8))
    plic.write(P.PLIC_MENABLE, 4, 0x0F0)
    plic.write(P.PLIC_SENABLE, 4, 0xF0E)

    def offset() -> int:
        ctx = rng.randrange(3)
        return rng.choice([
            4 * rng.randrange(0, 100), P.PLIC_PENDING + 4 * rng.randrange(4),
            P.PLIC_ENABLE + P.PLIC_ENABLE_STRIDE * ctx + 4 * rng.randrange(4),
            P.PLIC_CONTEXT + P.PLIC_CONTEXT_STRIDE * ctx + rng.choice([0, 4, 4, 8]),
            rng.randrange(P.PLIC_SIZE), rng.randrange(P.PLIC_SIZE) & ~3])

    for _ in range(4000):
        r = rng.random()
        if r < 0.35:
            line = rng.choice(lines[:8] if rng.random() < 0.8 else lines)
            line.set(rng.random() < 0.7)
        elif r < 0.6:
            seen.append(("read", plic.read(offset(), rng.choice([4, 4, 4, 1, 2, 8]))))
        else:
            value = rng.choice([rng.getrandbits(32), rng.randrange(100), rng.randrange(9),
                                rng.getrandbits(3), 0xFFFF_FFFF])
            plic.write(offset(), rng.choice([4, 4, 4, 1, 2, 8]), value)
        # (tuples: the reference hands out its own lists)
        seen.append((plic.pending, plic.claimed, tuple(plic.enable), tuple(plic.threshold),
                     tuple(plic.levels), plic.claims, plic.best(0), plic.best(1)))
    seen.append(tuple(plic.priority))
    return seen


@pytest.mark.parametrize("seed", range(4))
def test_plic_twins_agree_on_random_traffic(seed: int) -> None:
    from emu.devices import plic as plic_ref

    fast = _fast("plic")
    ref = _plic_trace(plic_ref.Plic, seed)
    got = _plic_trace(fast.Plic, seed)
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a == b, f"step {i}: the twins differ"
    assert sum(1 for x in ref if x[0] in ("meip", "seip")) > 10      # outputs really moved
    assert sum(1 for x in ref if x[0] == "read" and x[1]) > 100


# -- the AoE target ---------------------------------------------------------------------
def _target_trace(cls: type, mtu: int, seed: int) -> list:
    """The vblade comparison's request sequence (every command, filter and
    error case of tests/test_net_vblade.py), three times, each request also
    with random damage to its headers and length, into one target class;
    every reply, then the counters, the disk and the target's lists."""
    from emu.net.store import MemoryStore
    from tests import test_net_vblade as V  # noqa: N812

    rng = random.Random(seed)
    t = cls(MemoryStore(V.NSECT), shelf=V.SHELF, slot=V.SLOT, mac=V.TARGET_MAC, mtu=mtu)
    frames = [r.frame for r in V.sequence((mtu - 36) // 512)]
    out: list = []
    for _ in range(3):
        for f in frames:
            out.append(t.handle(f))
            g = bytearray(f)
            for _ in range(rng.randrange(1, 4)):
                g[rng.randrange(14, min(len(g), 48))] = rng.getrandbits(8)
            if rng.random() < 0.3:
                del g[rng.randrange(len(g)):]
            out.append(t.handle(bytes(g)))
            out.append(t.stats.as_dict())
    disk = sorted((k, bytes(v)) for k, v in t.store._chunks.items())   # what was written
    out.append((t.stats_dict(), disk, t.store.used_sectors, t.config, tuple(t.masks),
                tuple(t.reserve)))
    return out


@pytest.mark.parametrize("mtu", [1500, 9000])
def test_aoe_target_twins_answer_every_request_alike(mtu: int) -> None:
    fast = _fast("aoe_target")
    from emu.net import aoe_target as target_ref

    ref = _target_trace(target_ref.AoETarget, mtu, mtu)
    got = _target_trace(fast.AoETarget, mtu, mtu)
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        assert a == b, f"step {i}: the twins differ"
    counts = ref[-1][0]
    assert min(counts[k] for k in ("reads", "writes", "identify", "config", "mask", "reserve",
                                   "ignored", "truncated", "aoe_errors", "ata_errors")) > 0


class _Port:
    def __init__(self, clock, log: list) -> None:  # noqa: ANN001
        self.clock, self.log = clock, log

    def send(self, wire: bytes) -> None:
        self.log.append((self.clock.now, wire))


def _target_endpoint_trace(cls: type, Clock: type) -> list:  # noqa: N803
    """Requests arriving in bursts at a target with a service time, a
    seeking disk and 4 buffers: the same replies at the same times, the
    same drops."""
    from emu.net import aoe_target as target_ref
    from emu.net.disk import Disk, model
    from emu.net.store import MemoryStore
    from tests import test_net_vblade as V  # noqa: N812

    rng = random.Random(5)
    clock, sent = Clock(), []
    store = MemoryStore(1 << 16)
    t = cls(store, shelf=V.SHELF, slot=V.SLOT, mac=V.TARGET_MAC, clock=clock, bufcnt=4,
            service_ns=20_000, sector_ns=100, disk=Disk(model("hdd"), store.nsectors))
    t.port = _Port(clock, sent)
    t.announce()
    frames = [r.frame for r in V.sequence(17)]
    for i in range(600):
        t.silent = i >= 500          # a target whose replies stop reaching the wire
        f = rng.choice(frames)
        t.receive(append_fcs(f) if rng.random() < 0.95 else f)
        if rng.random() < 0.5:
            clock.advance(clock.now + rng.randrange(30_000_000))
            clock.run_due()
    while (nxt := clock.next_time()) is not None:
        clock.advance(nxt)
        clock.run_due()
    assert isinstance(t.stats_dict()["disk"], dict)
    return [sent, t.stats.as_dict(), target_ref.AoETarget.stats_dict(t)]


def test_aoe_target_twins_serve_in_the_same_virtual_time() -> None:
    fast = _fast("aoe_target")
    from emu.net import aoe_target as target_ref

    ref = _target_endpoint_trace(target_ref.AoETarget, clock_ref.Clock)
    assert _target_endpoint_trace(fast.AoETarget, clock_ref.Clock) == ref
    assert _target_endpoint_trace(fast.AoETarget, _fast("clock").Clock) == ref
    st = ref[1]
    assert st["dropped_busy"] > 10 and st["crc_errors"] > 5 and st["replies"] > 300
