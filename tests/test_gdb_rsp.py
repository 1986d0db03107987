"""The GDB remote-protocol codec (emu/debug/rsp.py): framing, checksums,
escapes, run-length encoding, hex fields and the byte-level decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.debug import gdbregs, rsp


def test_frame_and_checksum_match_the_manual():
    # The gdb manual's example: $m0,4#... ; checksum is the byte sum mod 256.
    assert rsp.checksum(b"OK") == (ord("O") + ord("K")) & 0xFF
    assert rsp.frame(b"OK") == b"$OK#9a"
    assert rsp.frame(b"") == b"$#00"


@given(st.binary(max_size=300))
def test_escape_roundtrip_and_no_special_bytes_left(data):
    esc = rsp.escape(data)
    assert rsp.unescape(esc) == data
    assert not set(esc) & set(b"#$*")       # escaped as '}' + byte ^ 0x20


@given(st.binary(max_size=400).map(lambda b: b.hex().encode()))
def test_rle_roundtrip_on_hex_payloads(payload):
    packed = rsp.rle_compress(payload)
    assert rsp.rle_expand(packed) == payload
    assert b"#" not in packed and b"$" not in packed
    assert all(32 <= b <= 126 for b in packed)


def test_rle_known_example_and_errors():
    assert rsp.rle_expand(b"0* ") == b"0000"          # ' ' = 29 + 3 -> 3 more
    with pytest.raises(rsp.RspError):
        rsp.rle_expand(b"*!")                         # nothing to repeat
    with pytest.raises(rsp.RspError):
        rsp.rle_expand(b"0*")                         # count missing
    with pytest.raises(rsp.RspError):
        rsp.unescape(b"ab}")


def test_hex_fields_reject_garbage():
    assert rsp.hexint(b"80200000") == 0x80200000
    assert rsp.hexdec(b"00ff") == b"\x00\xff"
    for bad in (b"", b"xyz", b"1" * 17, b"-1"):
        with pytest.raises(rsp.RspError):
            rsp.hexint(bad)
    for bad in (b"0", b"zz", b"0g"):
        with pytest.raises(rsp.RspError):
            rsp.hexdec(bad)
    assert rsp.le_hex(0x1122, 2) == b"2211"


def test_decoder_events_in_order():
    d = rsp.Decoder()
    evs = d.feed(b"+-\x03junk" + rsp.frame(b"g") + b"$m0,4#00" + rsp.frame(b"?"))
    assert [e.kind for e in evs] == ["ack", "nack", "interrupt", "packet", "bad_checksum",
                                     "packet"]
    assert evs[3].payload == b"g" and evs[5].payload == b"?"


def test_decoder_byte_by_byte_resync_and_oversize():
    d = rsp.Decoder(max_payload=16)
    out = []
    for b in b"$abc$" + rsp.frame(b"qC")[1:]:     # a raw '$' restarts the packet
        out += d.feed(bytes([b]))
    assert [(e.kind, e.payload) for e in out] == [("packet", b"qC")]
    big = b"x" * 40
    assert [e.kind for e in d.feed(rsp.frame(big))] == ["oversized"]
    assert [e.kind for e in d.feed(b"$" + big + b"#zz")] == ["bad_checksum"]
    d.feed(b"$half")
    assert d.mid_packet
    d.reset()
    assert not d.mid_packet


def test_target_xml_has_the_features_gdb_needs():
    xml = gdbregs.target_xml()
    for needle in ("riscv:rv64", "org.gnu.gdb.riscv.cpu", "org.gnu.gdb.riscv.csr",
                   "org.gnu.gdb.riscv.virtual", 'name="priv"', 'name="satp"',
                   'name="sstatus"', 'name="scause"', 'name="stval"', 'name="sepc"',
                   'name="stvec"', 'name="pc"', 'name="zero"'):
        assert needle in xml
    assert 'regnum="4161"' in xml and f'regnum="{65 + 0x180}"' in xml


def test_target_xml_describes_the_fpu_and_m_mode_only_when_the_guest_has_them():
    plain = gdbregs.target_xml()
    assert "org.gnu.gdb.riscv.fpu" not in plain and 'name="mstatus"' not in plain
    full = gdbregs.target_xml(fpu=True, mmode=True)
    assert "org.gnu.gdb.riscv.fpu" in full and 'name="f31"' in full and 'name="fcsr"' in full
    assert 'name="mstatus"' in full and f'regnum="{65 + 0x300}"' in full
