"""Network benchmarks: the AoE frame codec and the emulated round trip.

Run: `pytest bench/test_bench_net.py --benchmark-only` (or `make bench`).
One call = one frame, so pytest-benchmark's OPS column reads frames/s.

- group `net-parse`: parse a swap-sized frame (an ATA read reply carrying one
  4 KiB page, MTU 9000) with the Cython twin, the Python reference and the
  scapy model, one table. Issue targets: fast >= 1,000,000 frames/s and
  >= 50x scapy (printed, and stored in extra_info; benchmarks never assert
  on time).
- group `net-build`: build that frame with the three.
- group `net-roundtrip`: one 4 KiB read through initiator -> segment -> link
  -> target -> link -> initiator in virtual time, with the fast codec and
  with the reference (both ends use it).
"""

from __future__ import annotations

import pytest
from scapy.layers.l2 import Ether

from bench import summary
from emu.core.clock import Clock
from emu.net import aoe_target, initiator
from emu.net import frames as ref
from emu.net.aoe_target import AoETarget
from emu.net.initiator import Initiator
from emu.net.layers import AoE, AoEATA
from emu.net.segment import Segment
from emu.net.store import MemoryStore

fast = pytest.importorskip("emu._fast.frames", reason="compiled twin not built")

DST, SRC = bytes.fromhex("525400123456"), bytes.fromhex("02ae00000000")
PAGE = bytes(range(256)) * 16
FIELDS = dict(flags=ref.FLAG_R, aflags=ref.AFLAG_E, scnt=0, cmdstat=0x40, lba=123456,
              data=PAGE)
FRAME = ref.build_ata(DST, SRC, 0, 0, 0xDEADBEEF, **FIELDS)
RESULTS: dict[str, dict[str, float]] = {"parse": {}, "build": {}}


def _scapy_parse(frame: bytes) -> object:
    return Ether(frame)[AoEATA].lba


def _scapy_build() -> bytes:
    return bytes(Ether(dst=DST.hex(":"), src=SRC.hex(":"), type=0x88A2)
                 / AoE(flags=ref.FLAG_R, major=0, minor=0, cmd=0, tag=0xDEADBEEF)
                 / AoEATA(aflags=ref.AFLAG_E, scnt=0, cmdstat=0x40, lba=123456, data=PAGE))


PARSERS = {"fast": lambda: fast.parse(FRAME).lba, "reference": lambda: ref.parse(FRAME).lba,
           "scapy": lambda: _scapy_parse(FRAME)}
BUILDERS = {"fast": lambda: fast.build_ata(DST, SRC, 0, 0, 0xDEADBEEF, **FIELDS),
            "reference": lambda: ref.build_ata(DST, SRC, 0, 0, 0xDEADBEEF, **FIELDS),
            "scapy": _scapy_build}


def _record(benchmark: object, op: str, impl: str) -> None:
    fps = 1.0 / benchmark.stats.stats.mean  # type: ignore[attr-defined]
    RESULTS[op][impl] = fps
    summary.record(f"Frame {op}", {"scapy": "reference", "reference": "pure",
                                   "fast": "compiled"}[impl], fps)
    benchmark.extra_info["frames_per_s"] = round(fps)  # type: ignore[attr-defined]
    if impl == "fast" and "scapy" in RESULTS[op]:
        benchmark.extra_info["x_scapy"] = round(fps / RESULTS[op]["scapy"], 1)  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="net-parse")
@pytest.mark.parametrize("impl", ["scapy", "reference", "fast"])
def test_parse(benchmark: object, impl: str) -> None:
    assert PARSERS[impl]() == 123456
    benchmark(PARSERS[impl])  # type: ignore[operator]
    _record(benchmark, "parse", impl)
    r = RESULTS["parse"]
    if impl == "fast" and len(r) == 3:
        print(f"\nparse: fast {r['fast']:,.0f} frames/s, reference {r['reference']:,.0f}, "
              f"scapy {r['scapy']:,.0f}; fast/scapy = {r['fast'] / r['scapy']:.0f}x "
              "(targets: >= 1,000,000 frames/s, >= 50x)")


@pytest.mark.benchmark(group="net-build")
@pytest.mark.parametrize("impl", ["scapy", "reference", "fast"])
def test_build(benchmark: object, impl: str) -> None:
    assert BUILDERS[impl]() == FRAME
    benchmark(BUILDERS[impl])  # type: ignore[operator]
    _record(benchmark, "build", impl)
    r = RESULTS["build"]
    if impl == "fast" and len(r) == 3:
        print(f"\nbuild: fast {r['fast']:,.0f} frames/s, reference {r['reference']:,.0f}, "
              f"scapy {r['scapy']:,.0f}; fast/scapy = {r['fast'] / r['scapy']:.0f}x")


@pytest.mark.benchmark(group="net-roundtrip")
@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_roundtrip(benchmark: object, impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fast if impl == "fast" else ref
    for name in ("parse", "build_ata", "build_config", "pad"):
        monkeypatch.setattr(aoe_target, name, getattr(mod, name))
    for name in ("parse", "build_ata", "build_config", "pad"):
        monkeypatch.setattr(initiator, name, getattr(mod, name))
    clock = Clock()
    seg = Segment(clock)
    t = AoETarget(MemoryStore(1 << 16), shelf=0, slot=0, mtu=9000)
    t.attach(seg, "e0.0")
    ini = Initiator(clock, DST, shelf=0, slot=0, target_mac=t.mac)
    ini.port = seg.attach(ini, "guest", net="delay 10us")
    done: list[int] = []

    def one_read() -> None:
        ini.read(8, 8, lambda r: done.append(r.data_len))
        while (nt := clock.next_time()) is not None:
            clock.advance(nt)
            clock.run_due()

    benchmark(one_read)  # type: ignore[operator]
    assert done and set(done) == {4096} and ini.stats.retransmits == 0
    benchmark.extra_info["roundtrips_per_s"] = round(1.0 / benchmark.stats.stats.mean)  # type: ignore[attr-defined]
