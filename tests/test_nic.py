"""The NIC as the guest driver sees it: registers, the TX and RX paths end to
end through descriptors in guest RAM, drops and their counters, MTU 1500 and
9000, interrupts, reset, every error code, and the no-double-fetch rule."""

from __future__ import annotations

import pytest

from emu.devices import nic as N
from emu.machine.board import RAM_BASE, slot
from emu.net.fcs import strip_fcs
from tests.test_nic_support import (
    DESC,
    OUR_MAC,
    PEER_MAC,
    RAM_SIZE,
    Driver,
    GuardedMem,
    eth,
    make_nic,
    wire,
)

NIC_BASE = slot("nic").base


def stat_reg(nic: N.Nic, key: str) -> int:
    return nic.read(N.REG_STATS + 4 * N.STAT_NAMES.index(key), 4)


# -- registers -----------------------------------------------------------------

def test_identity_and_defaults() -> None:
    nic, _, sink, _ = make_nic()
    assert nic.name == "nic"
    assert (slot("nic").base, slot("nic").size, slot("nic").irq) == (0x0400_0000, 0x1000, 64)
    assert nic.read(N.REG_ID, 4) == N.ID_MAGIC
    assert nic.read(N.REG_ID, 4).to_bytes(4, "little") == b"eNIC"
    assert nic.read(N.REG_VERSION, 4) == N.VERSION
    assert nic.read(N.REG_MTU, 4) == 9000
    assert nic.read(N.REG_MTU_MAX, 4) == N.MTU_MAX
    assert nic.read(N.REG_RING_MAX, 4) == N.RING_MAX
    assert nic.read(N.REG_NSTATS, 4) == len(N.STAT_NAMES)
    assert nic.read(N.REG_CTRL, 4) == 0
    assert nic.read(N.REG_STATUS, 4) == N.STATUS_LINK
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE
    assert nic.read(N.REG_ERR_INDEX, 4) == N.NO_INDEX
    assert nic.read(N.REG_INT_MASK, 4) == 0
    assert not sink.level
    nic.transmit = None
    assert nic.read(N.REG_STATUS, 4) == 0


def test_mac_registers_and_subword_reads() -> None:
    nic, *_ = make_nic()
    lo, hi = nic.read(N.REG_MAC_LO, 4), nic.read(N.REG_MAC_HI, 4)
    assert lo.to_bytes(4, "little") + hi.to_bytes(2, "little") == OUR_MAC
    assert [nic.read(N.REG_MAC_LO + i, 1) for i in range(4)] == list(OUR_MAC[:4])
    assert nic.read(N.REG_MAC_HI, 2) == int.from_bytes(OUR_MAC[4:], "little")
    nic.write(N.REG_MAC_LO, 4, 0x44332211)
    nic.write(N.REG_MAC_HI, 4, 0xFFFF6655)     # bits 31:16 ignored
    assert nic.mac == bytes.fromhex("112233445566")
    assert nic.read(N.REG_MAC_HI, 4) == 0x6655


def test_mtu_clamps() -> None:
    nic, *_ = make_nic()
    for value, want in ((1500, 1500), (0, N.MTU_MIN), (67, N.MTU_MIN), (9001, N.MTU_MAX),
                        (0xFFFF_FFFF, N.MTU_MAX), (9000, 9000)):
        nic.write(N.REG_MTU, 4, value)
        assert nic.read(N.REG_MTU, 4) == want


def test_constructor_rejects_bad_host_config() -> None:
    mem = GuardedMem()
    with pytest.raises(ValueError):
        make_nic(mem, mtu=9001)
    with pytest.raises(ValueError):
        N.Nic(mem, None, None, b"\x00" * 5)  # type: ignore[arg-type]
    nic, *_ = make_nic(mem, mtu=1500)
    assert nic.read(N.REG_MTU, 4) == 1500


def test_ring_registers_read_back_and_heads_are_read_only() -> None:
    nic, *_ = make_nic()
    for reg, v in ((N.REG_TX_BASE_LO, 0x8000_1000), (N.REG_TX_BASE_HI, 7),
                   (N.REG_TX_SIZE, 64), (N.REG_TX_TAIL, 3), (N.REG_RX_BASE_LO, 0x8000_2000),
                   (N.REG_RX_BASE_HI, 0), (N.REG_RX_SIZE, 128), (N.REG_RX_TAIL, 5)):
        nic.write(reg, 4, v)
        assert nic.read(reg, 4) == v
    bad = nic.stats()["bad_mmio"]
    nic.write(N.REG_TX_HEAD, 4, 9)
    nic.write(N.REG_RX_HEAD, 4, 9)
    assert nic.read(N.REG_TX_HEAD, 4) == nic.read(N.REG_RX_HEAD, 4) == 0
    assert nic.stats()["bad_mmio"] == bad + 2


def test_bad_mmio_is_ignored_and_counted() -> None:
    nic, *_ = make_nic()
    nic.write(N.REG_MTU, 2, 1500)           # sub-word write
    nic.write(N.REG_MTU + 1, 4, 1500)       # unaligned
    nic.write(0x0FFC, 4, 1)                 # undefined
    nic.write(N.REG_ID, 4, 0)               # read-only
    assert nic.read(N.REG_MTU, 4) == 9000
    assert nic.read(0x0FFC, 4) == 0
    assert nic.read(N.REG_MTU + 2, 4) == 0  # straddles two registers
    assert nic.read(N.REG_MTU, 8) == 0      # the bus never sends 8, but be safe
    assert nic.read(N.REG_INT_ACK, 4) == 0  # write-only
    assert nic.stats()["bad_mmio"] == 8


def test_interrupt_mask_ack_and_line_level() -> None:
    nic, mem, sink, _ = make_nic()
    d = Driver(nic, mem)
    d.setup(mask=0)
    nic.receive(wire(eth(dst=OUR_MAC)))
    assert nic.read(N.REG_INT_STATUS, 4) == N.INT_RX
    assert not sink.level                           # masked
    nic.write(N.REG_INT_MASK, 4, 0xFFFF_FFFF)
    assert nic.read(N.REG_INT_MASK, 4) == N.INT_ALL
    assert sink.level
    nic.write(N.REG_INT_ACK, 4, N.INT_TX)           # other cause: no effect
    assert sink.level
    nic.write(N.REG_INT_ACK, 4, N.INT_RX)           # write 1 to clear
    assert not sink.level and nic.read(N.REG_INT_STATUS, 4) == 0
    assert nic.stats()["irqs"] == sink.edges == 1


def test_stats_are_readable_by_the_guest() -> None:
    nic, mem, _, _ = make_nic()
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=bytes(100)))
    nic.receive(b"garbage!")
    s = nic.stats()
    assert list(s) == list(N.STAT_NAMES)
    for key in ("tx_frames", "tx_bytes", "rx_crc_errors"):
        assert stat_reg(nic, key) == s[key] > 0
    assert nic.read(N.REG_STATS + 4 * len(N.STAT_NAMES), 4) == 0


# -- TX ------------------------------------------------------------------------

def test_tx_end_to_end() -> None:
    nic, mem, sink, sent = make_nic()
    d = Driver(nic, mem)
    d.setup()
    frame = eth(payload=b"\x10" + bytes(range(200)))
    d.send(frame)
    assert len(sent) == 1 and strip_fcs(sent[0]) == frame   # FCS appended
    assert nic.read(N.REG_TX_HEAD, 4) == 1
    _, length, flags, status = DESC.unpack(mem.peek(d.tx_desc(0), 16))
    assert (length, flags, status) == (len(frame), 0, N.DESC_S_DONE)
    assert nic.read(N.REG_INT_STATUS, 4) & N.INT_TX and sink.level
    s = nic.stats()
    assert (s["tx_frames"], s["tx_bytes"], s["tx_descs"]) == (1, len(frame), 1)


def test_tx_many_frames_one_doorbell_and_wrap() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem, tx_size=8)
    d.setup()
    frames = [eth(payload=bytes([i]) * (60 + i)) for i in range(20)]
    for k in range(0, 20, 5):                       # 5 frames per doorbell, ring wraps
        for f in frames[k:k + 5]:
            d.send(f, ring=False)
        d.w(N.REG_TX_TAIL, d.tx_tail)
    assert [strip_fcs(w) for w in sent] == frames
    assert nic.read(N.REG_TX_HEAD, 4) == 20 % 8


def test_tx_scatter_gather() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem)
    d.setup()
    hdr, page = eth(payload=bytes(10)), bytes(range(256)) * 16
    d.send(hdr, page[:100], page[100:])
    assert [strip_fcs(w) for w in sent] == [hdr + page]
    assert nic.stats()["tx_descs"] == 3
    for i in range(3):
        assert DESC.unpack(mem.peek(d.tx_desc(i), 16))[3] == N.DESC_S_DONE


def test_tx_pads_short_frames() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem)
    d.setup()
    d.send(eth())                                   # 14 bytes
    assert strip_fcs(sent[0]) == eth() + bytes(N.ETH_ZLEN - 14)
    assert len(sent[0]) == 64


def test_tx_without_link_counts() -> None:
    nic, mem, _, _ = make_nic()
    nic.transmit = None
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=bytes(50)))
    assert nic.stats()["tx_no_link"] == 1 and nic.read(N.REG_TX_HEAD, 4) == 1


def test_tx_posted_before_enable_goes_at_enable() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem)
    d.send(eth(payload=b"early"))                   # tail written while disabled
    assert sent == []
    d.setup()
    assert len(sent) == 1


@pytest.mark.parametrize("mtu", [1500, 9000])
def test_mtu_limits_tx_and_rx(mtu: int) -> None:
    nic, mem, _, sent = make_nic(mtu=mtu)
    d = Driver(nic, mem, buf=9216)
    d.setup()
    biggest = eth(payload=bytes(mtu))
    d.send(biggest)
    assert strip_fcs(sent[0]) == biggest
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(mtu))))
    assert d.reap_rx() == [eth(dst=OUR_MAC, payload=bytes(mtu))]
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(mtu + 1))))
    assert nic.stats()["rx_too_long"] == 1
    d.send(eth(payload=bytes(mtu + 1)))
    assert nic.read(N.REG_ERROR, 4) == N.ERR_TX_FRAME_LEN


def test_mtu_1500_via_register() -> None:
    nic, mem, _, sent = make_nic()
    nic.write(N.REG_MTU, 4, 1500)
    d = Driver(nic, mem, buf=2048)
    d.setup()
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(1500))))
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(1501))))
    assert len(d.reap_rx()) == 1 and nic.stats()["rx_too_long"] == 1


# -- RX ------------------------------------------------------------------------

def test_rx_end_to_end() -> None:
    nic, mem, sink, _ = make_nic()
    d = Driver(nic, mem)
    d.setup()
    frame = eth(dst=OUR_MAC, src=PEER_MAC, payload=bytes(range(100)))
    nic.receive(wire(frame))
    _, length, flags, status = DESC.unpack(mem.peek(d.rx_desc(0), 16))
    assert (length, flags, status) == (len(frame), 0, N.DESC_S_DONE)
    assert mem.peek(d.rx_buf(0), len(frame)) == frame  # FCS not stored
    assert nic.read(N.REG_RX_HEAD, 4) == 1
    assert nic.read(N.REG_INT_STATUS, 4) == N.INT_RX and sink.level
    s = nic.stats()
    assert (s["rx_frames"], s["rx_bytes"], s["rx_descs"]) == (1, len(frame), 1)
    assert d.reap_rx() == [frame]


def test_rx_spans_small_buffers() -> None:
    nic, mem, _, _ = make_nic()
    d = Driver(nic, mem, rx_size=8, buf=2048)
    d.setup(post_rx=0)
    d.post_rx(7, cap=1024)
    frame = eth(dst=OUR_MAC, payload=bytes(range(256)) * 16)  # 4110 bytes: 5 buffers
    nic.receive(wire(frame))
    statuses = [DESC.unpack(mem.peek(d.rx_desc(i), 16))[3] for i in range(5)]
    assert statuses == [N.DESC_S_DONE | N.DESC_S_MORE] * 4 + [N.DESC_S_DONE]
    assert DESC.unpack(mem.peek(d.rx_desc(4), 16))[1] == 4110 - 4 * 1024
    assert nic.stats()["rx_descs"] == 5 and nic.read(N.REG_RX_HEAD, 4) == 5
    parts = [mem.peek(d.rx_buf(i), DESC.unpack(mem.peek(d.rx_desc(i), 16))[1])
             for i in range(5)]
    assert b"".join(parts) == frame


def test_rx_ring_full_drops_and_recovers() -> None:
    nic, mem, sink, _ = make_nic()
    d = Driver(nic, mem, rx_size=4)
    d.setup(mask=N.INT_RX_NOBUF)
    frames = [eth(dst=OUR_MAC, payload=bytes([i]) * 50) for i in range(5)]
    for f in frames:
        nic.receive(wire(f))
    s = nic.stats()
    assert (s["rx_frames"], s["rx_no_buffer"]) == (3, 2)      # 4-slot ring holds 3
    assert nic.read(N.REG_INT_STATUS, 4) & N.INT_RX_NOBUF and sink.level
    assert d.reap_rx() == frames[:3]                          # re-posts the buffers
    nic.receive(wire(frames[4]))
    assert d.reap_rx() == [frames[4]]


def test_rx_not_enough_capacity_drops_without_consuming() -> None:
    nic, mem, _, _ = make_nic()
    d = Driver(nic, mem, rx_size=4, buf=2048)
    d.setup(post_rx=0)
    d.post_rx(2, cap=100)
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(300))))   # needs 4 buffers of 100
    assert nic.stats()["rx_no_buffer"] == 1 and nic.read(N.REG_RX_HEAD, 4) == 0
    small = eth(dst=OUR_MAC, payload=bytes(40))
    nic.receive(wire(small))                                  # fits in the first buffer
    assert d.reap_rx() == [small]


def test_rx_bad_fcs_dropped() -> None:
    nic, mem, sink, _ = make_nic()
    d = Driver(nic, mem)
    d.setup()
    w = bytearray(wire(eth(dst=OUR_MAC, payload=bytes(64))))
    w[20] ^= 0x04                                             # one bit flip
    nic.receive(bytes(w))
    nic.receive(b"\x01\x02")                                  # shorter than an FCS
    assert nic.stats()["rx_crc_errors"] == 2
    assert nic.stats()["rx_frames"] == 0 and not sink.level
    assert nic.read(N.REG_RX_HEAD, 4) == 0


def test_rx_filter_and_promisc() -> None:
    nic, mem, _, _ = make_nic()
    d = Driver(nic, mem)
    d.setup()
    other = eth(dst=bytes.fromhex("020000000001"))
    nic.receive(wire(other))
    assert nic.stats()["rx_filtered"] == 1
    nic.receive(wire(eth(dst=b"\xff" * 6)))                  # broadcast
    nic.receive(wire(eth(dst=bytes.fromhex("01000c000000")))) # multicast
    nic.write(N.REG_CTRL, 4, N.CTRL_ENABLE | N.CTRL_PROMISC)
    nic.receive(wire(other))
    assert nic.stats()["rx_frames"] == 3 and len(d.reap_rx()) == 3


def test_rx_runt_and_disabled() -> None:
    nic, mem, _, _ = make_nic()
    nic.receive(wire(eth(dst=OUR_MAC)))
    assert nic.stats()["rx_disabled"] == 1
    d = Driver(nic, mem)
    d.setup()
    nic.receive(wire(OUR_MAC + b"\x00"))
    assert nic.stats()["rx_runt"] == 1
    nic.write(N.REG_CTRL, 4, 0)
    nic.receive(wire(eth(dst=OUR_MAC)))
    assert nic.stats()["rx_disabled"] == 2


# -- enable / disable / reset --------------------------------------------------

def test_disable_forgets_ring_progress() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"one"))
    nic.write(N.REG_CTRL, 4, 0)
    assert nic.read(N.REG_STATUS, 4) & N.STATUS_ENABLED == 0
    assert nic.read(N.REG_TX_TAIL, 4) == nic.read(N.REG_TX_HEAD, 4) == 0
    nic.write(N.REG_CTRL, 4, N.CTRL_ENABLE)                  # must not resend
    assert len(sent) == 1 and nic.read(N.REG_STATUS, 4) & N.STATUS_ENABLED


def test_reset_restores_power_on_state() -> None:
    nic, mem, sink, sent = make_nic()
    nic.write(N.REG_MTU, 4, 1500)
    nic.write(N.REG_MAC_LO, 4, 0)
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"x"))
    assert sink.level
    nic.write(N.REG_CTRL, 4, N.CTRL_RESET | N.CTRL_ENABLE)   # RESET wins
    assert nic.read(N.REG_CTRL, 4) == 0 and not sink.level
    assert nic.read(N.REG_MTU, 4) == 9000 and nic.mac == OUR_MAC
    for reg in (N.REG_TX_SIZE, N.REG_TX_HEAD, N.REG_TX_TAIL, N.REG_RX_BASE_LO,
                N.REG_INT_STATUS, N.REG_INT_MASK, N.REG_ERROR):
        assert nic.read(reg, 4) == 0
    assert nic.stats()["resets"] == 1 and nic.stats()["tx_frames"] == 1  # counters kept
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"y"))
    assert len(sent) == 2


def test_reset_clears_error_and_device_works_again() -> None:
    nic, mem, sink, sent = make_nic()
    d = Driver(nic, mem)
    d.setup(mask=N.INT_ERROR)
    nic.write(N.REG_TX_TAIL, 4, 999)
    assert nic.read(N.REG_STATUS, 4) & N.STATUS_ERROR and sink.level
    assert nic.read(N.REG_ERROR, 4) == N.ERR_TX_TAIL
    assert nic.read(N.REG_ERR_INDEX, 4) == 999
    nic.receive(wire(eth(dst=OUR_MAC)))                       # halted: dropped
    assert nic.stats()["rx_disabled"] == 1
    nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
    assert nic.read(N.REG_STATUS, 4) == N.STATUS_LINK and not sink.level
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"ok"))
    nic.receive(wire(eth(dst=OUR_MAC, payload=b"ok")))
    assert len(sent) == 1 and len(d.reap_rx()) == 1


# -- the guest misbehaves: every error code ----------------------------------------

def _poke_tx(mem: GuardedMem, d: Driver, i: int, addr: int, length: int, flags: int) -> None:
    mem.poke(d.tx_desc(i), DESC.pack(addr, length, flags, 0))


def _poke_rx(mem: GuardedMem, d: Driver, i: int, addr: int, cap: int, flags: int) -> None:
    mem.poke(d.rx_desc(i), DESC.pack(addr, cap, flags, 0))


RAM_END = RAM_BASE + RAM_SIZE


def _ring_cfg(nic: N.Nic, which: str, base: int, size: int) -> None:
    lo = N.REG_TX_BASE_LO if which == "tx" else N.REG_RX_BASE_LO
    nic.write(lo, 4, base & 0xFFFF_FFFF)
    nic.write(lo + 4, 4, base >> 32)
    nic.write(lo + 8, 4, size)


CASES = {
    "tx_ring_base_unaligned": (N.ERR_TX_RING_BASE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", d.TX_RING + 8, 16), nic.write(N.REG_CTRL, 4, 1))),
    "tx_ring_base_mmio": (N.ERR_TX_RING_BASE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", NIC_BASE, 16), nic.write(N.REG_CTRL, 4, 1))),
    "tx_ring_past_ram": (N.ERR_TX_RING_BASE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", RAM_END - 16 * 8, 16), nic.write(N.REG_CTRL, 4, 1))),
    "tx_ring_size_0": (N.ERR_TX_RING_SIZE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", d.TX_RING, 0), nic.write(N.REG_CTRL, 4, 1))),
    "tx_ring_size_3": (N.ERR_TX_RING_SIZE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", d.TX_RING, 3), nic.write(N.REG_CTRL, 4, 1))),
    "tx_ring_size_huge": (N.ERR_TX_RING_SIZE, lambda nic, mem, d: (
        _ring_cfg(nic, "tx", d.TX_RING, 1 << 31), nic.write(N.REG_CTRL, 4, 1))),
    "tx_tail_at_enable": (N.ERR_TX_TAIL, lambda nic, mem, d: (
        nic.write(N.REG_TX_TAIL, 4, 16), nic.write(N.REG_CTRL, 4, 1))),
    "tx_tail": (N.ERR_TX_TAIL, lambda nic, mem, d: (
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_TX_TAIL, 4, 0xFFFF_FFFF))),
    "tx_desc_addr_outside": (N.ERR_TX_DESC_ADDR, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, 0x1000, 64, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_desc_addr_mmio": (N.ERR_TX_DESC_ADDR, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, NIC_BASE, 64, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_desc_addr_straddles_end": (N.ERR_TX_DESC_ADDR, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, RAM_END - 10, 64, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_desc_addr_wraps_u64": (N.ERR_TX_DESC_ADDR, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, (1 << 64) - 8, 64, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_desc_len_0": (N.ERR_TX_DESC_LEN, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, d.tx_buf(0), 0, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_desc_flags": (N.ERR_TX_DESC_FLAGS, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, d.tx_buf(0), 64, 0x8000), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_frame_runt": (N.ERR_TX_FRAME_LEN, lambda nic, mem, d: (
        _poke_tx(mem, d, 0, d.tx_buf(0), 13, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_TX_TAIL, 4, 1))),
    "tx_frame_over_mtu_in_chain": (N.ERR_TX_FRAME_LEN, lambda nic, mem, d: (
        [_poke_tx(mem, d, i, d.tx_buf(0), 0xFFFF, N.DESC_F_MORE) for i in range(15)],
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_TX_TAIL, 4, 15))),
    "tx_chain_unterminated": (N.ERR_TX_CHAIN, lambda nic, mem, d: (
        [_poke_tx(mem, d, i, d.tx_buf(0), 100, N.DESC_F_MORE) for i in range(15)],
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_TX_TAIL, 4, 15))),
    "rx_ring_base": (N.ERR_RX_RING_BASE, lambda nic, mem, d: (
        _ring_cfg(nic, "rx", 0, 16), nic.write(N.REG_CTRL, 4, 1))),
    "rx_ring_size": (N.ERR_RX_RING_SIZE, lambda nic, mem, d: (
        _ring_cfg(nic, "rx", d.RX_RING, 1), nic.write(N.REG_CTRL, 4, 1))),
    "rx_tail": (N.ERR_RX_TAIL, lambda nic, mem, d: (
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_RX_TAIL, 4, 16))),
    "rx_tail_backwards_over_fetched": (N.ERR_RX_TAIL, lambda nic, mem, d: (
        [_poke_rx(mem, d, i, d.rx_buf(i), 20, 0) for i in range(8)],
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_RX_TAIL, 4, 8),
        nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(160)))),  # fetches all 8: too small
        nic.write(N.REG_RX_TAIL, 4, 2))),
    "rx_desc_addr": (N.ERR_RX_DESC_ADDR, lambda nic, mem, d: (
        _poke_rx(mem, d, 0, RAM_END, 2048, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_RX_TAIL, 4, 1), nic.receive(wire(eth(dst=OUR_MAC))))),
    "rx_desc_len": (N.ERR_RX_DESC_LEN, lambda nic, mem, d: (
        _poke_rx(mem, d, 0, d.rx_buf(0), 0, 0), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_RX_TAIL, 4, 1), nic.receive(wire(eth(dst=OUR_MAC))))),
    "rx_desc_flags": (N.ERR_RX_DESC_FLAGS, lambda nic, mem, d: (
        _poke_rx(mem, d, 0, d.rx_buf(0), 2048, 1), nic.write(N.REG_CTRL, 4, 1),
        nic.write(N.REG_RX_TAIL, 4, 1), nic.receive(wire(eth(dst=OUR_MAC))))),
    "config_busy": (N.ERR_CONFIG_BUSY, lambda nic, mem, d: (
        nic.write(N.REG_CTRL, 4, 1), nic.write(N.REG_RX_SIZE, 4, 16))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_guest_error_is_latched_visible_counted(case: str) -> None:
    code, provoke = CASES[case]
    nic, mem, sink, sent = make_nic()
    d = Driver(nic, mem)
    _ring_cfg(nic, "tx", d.TX_RING, 16)
    _ring_cfg(nic, "rx", d.RX_RING, 16)
    nic.write(N.REG_INT_MASK, 4, N.INT_ERROR)
    provoke(nic, mem, d)
    assert nic.read(N.REG_ERROR, 4) == code, N.ERR_NAMES[nic.read(N.REG_ERROR, 4)]
    assert nic.read(N.REG_STATUS, 4) & (N.STATUS_ERROR | N.STATUS_ENABLED) == N.STATUS_ERROR
    assert nic.read(N.REG_INT_STATUS, 4) & N.INT_ERROR and sink.level
    s = nic.stats()
    assert s["errors"] == 1 and s[f"error_{N.ERR_NAMES[code]}"] == 1
    assert mem.violations == [] and sent == []
    # Halted: doorbells and config writes do nothing until reset.
    nic.write(N.REG_TX_TAIL, 4, 1)
    nic.write(N.REG_CTRL, 4, N.CTRL_ENABLE)
    assert nic.read(N.REG_ERROR, 4) == code and nic.stats()["errors"] == 1
    nic.write(N.REG_CTRL, 4, N.CTRL_RESET)
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"alive"))
    nic.receive(wire(eth(dst=OUR_MAC, payload=b"alive")))
    assert len(sent) == 1 and len(d.reap_rx()) == 1
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE


def test_frames_before_a_bad_descriptor_still_go() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem)
    d.setup()
    d.send(eth(payload=b"a"), ring=False)
    d.send(eth(payload=b"b"), ring=False)
    _poke_tx(mem, d, 2, 0, 64, 0)
    nic.write(N.REG_TX_TAIL, 4, 3)
    assert len(sent) == 2
    assert nic.read(N.REG_TX_HEAD, 4) == 2 and nic.read(N.REG_ERR_INDEX, 4) == 2
    assert nic.read(N.REG_INT_STATUS, 4) == N.INT_TX | N.INT_ERROR


# -- each descriptor is fetched once ------------------------------------------------

def test_tx_descriptors_read_once() -> None:
    nic, mem, _, sent = make_nic()
    d = Driver(nic, mem, tx_size=16)
    d.setup()
    for i in range(5):
        d.send(eth(payload=bytes([i]) * 30), ring=False)
    d.send(eth(), b"frag", b"ment", ring=False)
    mem.reads.clear()
    d.w(N.REG_TX_TAIL, d.tx_tail)
    assert len(sent) == 6
    assert all(mem.reads[d.tx_desc(i)] == 1 for i in range(8))


def test_rx_descriptors_read_once_even_across_drops() -> None:
    nic, mem, _, _ = make_nic()
    d = Driver(nic, mem, rx_size=8)
    d.setup(post_rx=0)
    mem.reads.clear()
    d.post_rx(3, cap=100)
    big = wire(eth(dst=OUR_MAC, payload=bytes(400)))
    for _ in range(5):                      # each attempt needs 5 buffers: dropped
        nic.receive(big)
    assert nic.stats()["rx_no_buffer"] == 5
    d.post_rx(2, cap=100)
    nic.receive(big)
    assert nic.stats()["rx_frames"] == 1
    assert all(mem.reads[d.rx_desc(i)] == 1 for i in range(5)), mem.reads


class RacingMem(GuardedMem):
    """Guest RAM whose descriptors a racing CPU rewrites right after the device
    first fetches them (pointing outside RAM, absurd lengths and flags). A
    device that fetched twice would use the hostile second copy."""

    def __init__(self) -> None:
        super().__init__()
        self.watch: set[int] = set()

    def read(self, addr: int, size: int) -> bytes:
        data = super().read(addr, size)
        if addr in self.watch:
            self.poke(addr, DESC.pack(0xDEAD_0000_0000, 0xFFFF, 0xFFFF, 0))
        return data


def test_no_double_fetch_tx_under_race() -> None:
    mem = RacingMem()
    nic, _, _, sent = make_nic(mem)
    d = Driver(nic, mem)
    d.setup()
    frames = [eth(payload=bytes([i]) * 50) for i in range(4)]   # >= ETH_ZLEN: no padding
    for f in frames[:3]:
        d.send(f, ring=False)
    d.send(frames[3][:20], frames[3][20:], ring=False)
    mem.watch = {d.tx_desc(i) for i in range(5)}
    d.w(N.REG_TX_TAIL, d.tx_tail)
    assert [strip_fcs(w) for w in sent] == frames
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE and mem.violations == []


def test_no_double_fetch_rx_under_race() -> None:
    mem = RacingMem()
    nic, _, _, _ = make_nic(mem)
    d = Driver(nic, mem, rx_size=8)
    d.setup(post_rx=0)
    mem.watch = {d.rx_desc(i) for i in range(8)}
    d.post_rx(7, cap=64)
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(200))))   # 214 bytes: 4 buffers
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(30))))    # 1 buffer
    nic.receive(wire(eth(dst=OUR_MAC, payload=bytes(200))))   # needs 4, 2 left: dropped
    s = nic.stats()
    assert (s["rx_frames"], s["rx_descs"], s["rx_no_buffer"]) == (2, 5, 1)
    assert nic.read(N.REG_ERROR, 4) == N.ERR_NONE and mem.violations == []
    # The buffers got the data the original (pre-race) descriptors pointed at.
    assert mem.peek(d.rx_buf(4), 44) == eth(dst=OUR_MAC, payload=bytes(30))
