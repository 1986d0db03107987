"""The deadlock detector: a run with work pending and no progress stops with
status 3 and a diagnosis; an idle or busy guest never trips it."""

from __future__ import annotations

from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from emu.tools.deadlock import EXIT_DEADLOCK, DeadlockWatch


def _machine(kernel: str, append: str) -> Machine:
    return Machine(MachineConfig(kernel=kernel, append=append, ram_size=4 << 20, seed=1,
                                 max_insns=2_000_000_000, net=NetConfig(seed=1)))


def test_silent_target_is_a_deadlock_with_a_diagnosis(kernel):
    """The target stops answering mid-swap (the dead-time is 180 s, far away):
    tasks wait on I/O forever; the watch fires after its span."""
    m = _machine(kernel, "init=memhog pages=1500 passes=3 procs=2")
    target = m.network.targets[0]
    m.clock.schedule(40_000_000, lambda: setattr(target, "silent", True))
    watch = DeadlockWatch(m, span_ns=300_000_000)
    m.after_slice.append(watch)
    assert m.run() == EXIT_DEADLOCK, m.stop_reason
    assert m.stop_reason.startswith("deadlock: no progress for")
    d = watch.diagnosis
    assert d.startswith("deadlock: no user instruction retired and no swap I/O completed")
    assert "memory: " in d and "watermarks min" in d
    assert "memhog" in d and "sleeping" in d
    assert "requests in flight" in d and "RX ring" in d
    # one span after the silence, give or take the jump to the next retransmit
    # timer while the hart waits (the RTO is clamped to 2 s)
    assert 340 <= m.now() / 1e6 <= 40 + 300 + 2000


def test_idle_or_busy_guests_are_not_deadlocks(kernel):
    m = _machine(kernel, "init=memhog pages=600 passes=2 procs=2")
    watch = DeadlockWatch(m, span_ns=5_000_000)     # 5 ms: very touchy
    m.after_slice.append(watch)
    assert m.run() == 0, (m.stop_reason, watch.diagnosis)
    assert watch.diagnosis is None


def test_why_names_the_causes_from_the_counters():
    """The diagnosis's why-lines: memory at min, reserves off, a reserve at a
    (non-zero) limit with its refusals during the stall, RX drops during the
    stall, and a silent target - each only when the counters say so."""
    from emu.tools.deadlock import why
    before = {"reserve_denied": 10, "net_refill_fails": 5, "net_rx_frames": 100,
              "aoe_retransmits": 3}
    raw = {"pages": [118], "wmark_min": 118, "reserve_limit": [67, 0, 37],
           "reserve_usage": [0, 0, 37], "reserve_denied": 110, "net_refill_fails": 105,
           "net_rx_frames": 100, "aoe_retransmits": 3, "aoe_inflight": 2}
    lines = why(raw, before, reserve_off=False)
    assert lines[0].startswith("free memory is at the min watermark (118 <= 118")
    assert not any("reserves are off" in x for x in lines)
    limited = [x for x in lines if "at its limit" in x]
    assert limited == ["reserve aoe_rx is at its limit (37 pages): 100 reserve pages refused "
                       "during the stall"]                 # aoe_tx's 0 limit is not "full"
    assert any("dropped 100 received frames" in x for x in lines)
    assert not any("has not answered" in x for x in lines)
    assert any("reserves are off" in x for x in why(raw, before, reserve_off=True))
    silent = dict(raw, pages=[500], reserve_usage=[0, 0, 0], net_refill_fails=5,
                  aoe_retransmits=40)
    assert why(silent, before, reserve_off=False) == [
        "the AoE target has not answered: 37 retransmits and no frame received during the "
        "stall"]
