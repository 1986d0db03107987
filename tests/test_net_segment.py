"""The learning switch, its tap and statistics, and the noise generator."""

from __future__ import annotations

import math

import pytest

from emu.core.clock import Clock
from emu.net.fcs import append_fcs
from emu.net.noise import ETH_P_EXPERIMENTAL, NoiseGenerator, parse_noise
from emu.net.segment import Segment

A, B, C = (bytes.fromhex(h) for h in ("02000000000a", "02000000000b", "02000000000c"))
BCAST = b"\xff" * 6


class Box:
    """An endpoint that records what it receives, with the virtual time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.got: list[tuple[int, bytes]] = []
        self.in_send = False

    def receive(self, wire: bytes) -> None:
        assert not self.in_send, "delivered synchronously inside send()"
        self.got.append((self.clock.now, wire))


def frame(dst: bytes, src: bytes, n: int = 0) -> bytes:
    return append_fcs(dst + src + b"\x88\xb5" + n.to_bytes(4, "big") + bytes(42))


def settle(clock: Clock) -> None:
    while (t := clock.next_time()) is not None:
        clock.advance(t)
        clock.run_due()


def setup() -> tuple[Clock, Segment, dict[str, Box], dict[str, object]]:
    clock = Clock()
    seg = Segment(clock)
    boxes = {n: Box(clock) for n in "abc"}
    ports = {n: seg.attach(b, n) for n, b in boxes.items()}
    return clock, seg, boxes, ports


def test_learning_flooding_and_filtering() -> None:
    clock, seg, box, port = setup()
    taps: list[tuple[int, bytes]] = []
    seg.add_tap(lambda t, f: taps.append((t, f)))
    box["a"].in_send = True
    port["a"].send(frame(B, A, 1))            # B unknown: flooded to b and c
    box["a"].in_send = False
    settle(clock)
    assert len(box["b"].got) == 1 and len(box["c"].got) == 1 and not box["a"].got
    port["b"].send(frame(A, B, 2))            # A learned: only a
    settle(clock)
    assert len(box["a"].got) == 1 and len(box["c"].got) == 1
    port["a"].send(frame(B, A, 3))            # B learned now: only b
    settle(clock)
    assert len(box["b"].got) == 2 and len(box["c"].got) == 1
    port["c"].send(frame(BCAST, C, 4))        # broadcast: everyone else
    settle(clock)
    assert len(box["a"].got) == 2 and len(box["b"].got) == 3 and len(box["c"].got) == 1
    port["a"].send(frame(A, A, 5))            # back to its own port: filtered
    settle(clock)
    st = seg.stats()
    assert st["ports"]["a"]["filtered"] == 1 and st["flooded"] == 2 and st["fdb"] == 3
    # The tap saw every accepted frame, without FCS, at its forwarding time.
    assert [f[14:18] for _, f in taps] == [n.to_bytes(4, "big") for n in range(1, 6)]
    assert all(len(f) == 60 for _, f in taps)


def test_bad_fcs_runts_and_giants_are_dropped_at_the_switch() -> None:
    clock, seg, box, port = setup()
    bad = bytearray(frame(BCAST, A))
    bad[20] ^= 1
    port["a"].send(bytes(bad))
    port["a"].send(append_fcs(b"\x01" * 10))
    port["a"].send(append_fcs(BCAST + A + b"\x88\xb5" + bytes(9300)))
    port["a"].send(b"\x00\x01")
    settle(clock)
    st = seg.stats()["ports"]["a"]
    assert (st["crc_errors"], st["runts"], st["giants"], st["rx_frames"]) == (2, 1, 1, 0)
    assert not box["b"].got and not box["c"].got


def test_port_statistics_include_both_links() -> None:
    clock = Clock()
    seg = Segment(clock, seed=1)
    a, b = Box(clock), Box(clock)
    pa = seg.attach(a, "a", up="loss 50%", down="delay 1ms")
    seg.attach(b, "b")
    for i in range(1000):
        pa.send(frame(BCAST, A, i))
    settle(clock)
    st = seg.stats()["ports"]
    assert st["a"]["up"]["sent"] == 1000
    assert st["a"]["up"]["dropped_loss"] + st["a"]["rx_frames"] == 1000
    assert st["b"]["tx_frames"] == st["a"]["rx_frames"] == len(b.got)
    assert set(st["a"]) >= {"rx_frames", "rx_bytes", "crc_errors", "runts", "giants",
                            "tx_frames", "tx_bytes", "flooded", "filtered", "up", "down"}
    with pytest.raises(ValueError, match="already attached"):
        seg.attach(Box(clock), "a")
    with pytest.raises(ValueError, match="bad netem spec"):
        seg.attach(Box(clock), "z", net="loss lots")


def test_detach_discards_traffic() -> None:
    clock, seg, box, port = setup()
    port["a"].send(frame(BCAST, A))
    port["b"].detach()
    settle(clock)
    assert not box["b"].got and len(box["c"].got) == 1
    port["b"].send(frame(BCAST, B))   # a detached port drops silently
    settle(clock)
    assert len(box["a"].got) == 0


# -- noise ---------------------------------------------------------------------
@pytest.mark.parametrize("text, fps, size", [
    ("2000", 2000.0, 60), ("2000pps", 2000.0, 60), ("2.5kpps,128", 2500.0, 128),
    ("5mbit,1500", 5e6 / (1504 * 8), 1500), ("1mbps", 8e6 / (64 * 8), 60),
])
def test_parse_noise(text: str, fps: float, size: int) -> None:
    got = parse_noise(text)
    assert math.isclose(got[0], fps) and got[1] == size


@pytest.mark.parametrize("bad, words", [
    ("", "wrong number of fields"), ("fast", "not a number with a unit"),
    ("10,20,30", "wrong number"), ("100,59", "outside 60..9014"), ("100,x", "whole number"),
    ("5furlongs", "unknown rate unit"), ("0", "must be positive"),
])
def test_bad_noise_specs(bad: str, words: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_noise(bad)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def run_noise(seed: int, fps: float = 20_000, size: int = 100,
              seconds: float = 1.0) -> tuple[NoiseGenerator, list[tuple[int, bytes]]]:
    clock = Clock()
    seg = Segment(clock)
    guest = Box(clock)
    seg.attach(guest, "guest")
    gen = NoiseGenerator(clock, A, fps, size, seed=seed)
    gen.port = seg.attach(gen, "noise")
    gen.start()
    end = int(seconds * 1e9)
    while (t := clock.next_time()) is not None and t <= end:
        clock.advance(t)
        clock.run_due()
    gen.stop()
    return gen, guest.got


def test_noise_rate_size_and_determinism() -> None:
    gen, got = run_noise(seed=7)
    n = len(got)
    assert abs(n - 20_000) < 4.5 * math.sqrt(20_000)        # Poisson count
    assert all(len(w) == 104 for _, w in got)                # size + FCS
    assert all(w[:6] == A and int.from_bytes(w[12:14], "big") == ETH_P_EXPERIMENTAL
               for _, w in got)
    assert [int.from_bytes(w[14:18], "big") for _, w in got] == list(range(n))
    again = run_noise(seed=7)[1]
    other = run_noise(seed=8)[1]
    assert again == got and other != got
    assert gen.stats()["sent"] == n
