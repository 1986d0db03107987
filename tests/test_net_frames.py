"""Differential test of the AoE frame codec: Python reference, Cython twin, scapy model.

Each run builds 10,000 random frames with all three (byte-for-byte equal),
parses them with all three (field-for-field equal), then parses a damaged
copy of each (truncated, bit-flipped, re-typed, with a bad count or random
bytes): all three must accept or reject the same frames; the twins must
raise the same exception type with the same message, the model the same type.
Set EMU_TEST_SEED to explore other random frames.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from emu.net import frames as ref
from emu.net.frames import CMD_ATA, CMD_CONFIG, CMD_MASK, CMD_RESERVE, FrameError
from emu.net.layers import model_build, model_parse

try:
    from emu._fast import frames as fast
except ImportError:
    if os.environ.get("CI") == "true":
        raise  # in CI the twin must have been built
    pytest.skip("compiled twin not built (python setup.py build_ext --inplace); not in CI",
                allow_module_level=True)

N_FRAMES = 10_000
SEED = int(os.environ.get("EMU_TEST_SEED", "20240611"))


def _rand_fields(rng: random.Random) -> dict[str, Any]:
    """Random but well-formed fields for one frame (any command)."""
    f: dict[str, Any] = {
        "dst": rng.randbytes(6), "src": rng.randbytes(6), "ver": rng.choice([1, 1, 1, 0, 15]),
        "flags": rng.randrange(16), "error": rng.randrange(256),
        "major": rng.randrange(65536), "minor": rng.randrange(256), "tag": rng.getrandbits(32),
    }
    kind = rng.random()
    if kind < 0.5:
        f["cmd"] = CMD_ATA
        nsect = rng.choice([0, 0, 1, 2, 8, 17])
        f.update(aflags=rng.randrange(256), errfeat=rng.randrange(256),
                 scnt=rng.randrange(256), cmdstat=rng.randrange(256), lba=rng.getrandbits(48),
                 data=rng.randbytes(nsect * 512 + rng.choice([0, 0, 24, rng.randrange(600)])))
    elif kind < 0.8:
        f["cmd"] = CMD_CONFIG
        f.update(bufcnt=rng.randrange(65536), fwver=rng.randrange(65536),
                 scnt=rng.randrange(256), aoever=rng.randrange(16), ccmd=rng.randrange(16),
                 config=rng.randbytes(rng.choice([0, 1, 5, 64, 1024, rng.randrange(1025)])))
    elif kind < 0.88:
        f["cmd"] = CMD_MASK
        n = rng.randrange(6)
        f["data"] = (bytes([0, rng.randrange(3), rng.randrange(4), n])
                     + b"".join(bytes([0, rng.randrange(3)]) + rng.randbytes(6) for _ in range(n)))
    elif kind < 0.95:
        f["cmd"] = CMD_RESERVE
        n = rng.randrange(6)
        f["data"] = bytes([rng.randrange(3), n]) + rng.randbytes(6 * n)
    else:
        f["cmd"] = rng.randrange(4, 256)
        f["data"] = rng.randbytes(rng.randrange(64))
    return f


def _build(mod: Any, f: dict[str, Any]) -> bytes:
    hdr = (f["dst"], f["src"], f["major"], f["minor"])
    common = {"flags": f["flags"], "error": f["error"], "ver": f["ver"]}
    if f["cmd"] == CMD_ATA:
        return mod.build_ata(*hdr, f["tag"], aflags=f["aflags"], errfeat=f["errfeat"],
                             scnt=f["scnt"], cmdstat=f["cmdstat"], lba=f["lba"],
                             data=f["data"], **common)
    if f["cmd"] == CMD_CONFIG:
        return mod.build_config(*hdr, f["tag"], bufcnt=f["bufcnt"], fwver=f["fwver"],
                                scnt=f["scnt"], aoever=f["aoever"], ccmd=f["ccmd"],
                                config=f["config"], **common)
    return mod.build_aoe(*hdr, f["cmd"], f["tag"], payload=f["data"], **common)


def _damage(rng: random.Random, frame: bytes) -> bytes:
    """A damaged copy: the kinds of trouble a receiver meets."""
    b = bytearray(frame)
    kind = rng.randrange(9)
    if kind == 0:                      # truncated anywhere
        return bytes(b[:rng.randrange(len(b) + 1)])
    if kind == 1:                      # truncated near a boundary
        return bytes(b[:rng.choice([13, 14, 23, 24, 25, 26, 27, 28, 31, 32, 33, 35, 36])])
    if kind == 2:                      # a bit flip anywhere
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif kind == 3:                    # another ethertype (IPv4, VLAN, 802.3 length)
        b[12:14] = rng.choice([b"\x08\x00", b"\x81\x00", b"\x05\xdc", b"\x88\xa3"])
    elif kind == 4 and len(b) >= 32:   # bogus config string length
        b[30:32] = rng.randrange(65536).to_bytes(2, "big")
    elif kind == 5 and len(b) >= 28:   # bogus list counts
        b[rng.choice([25, 27])] = rng.randrange(256)
    elif kind == 8 and len(b) >= 32:   # config string at/over the 1024-byte limit
        n = rng.choice([1023, 1024, 1025, 1100])
        b[30:32] = n.to_bytes(2, "big")
        b = b[:32] + bytearray(rng.randbytes(n + rng.randrange(-2, 3)))
    elif kind == 6:                    # Ethernet padding / trailing junk
        b += rng.randbytes(rng.randrange(1, 48))
    else:                              # random bytes that claim to be AoE
        b = bytearray(rng.randbytes(rng.randrange(60)))
        if len(b) >= 14:
            b[12:14] = b"\x88\xa2"
    return bytes(b)


def _outcome(fn: Any, frame: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(frame)
    except FrameError as exc:
        return type(exc).__name__, str(exc)


def test_codec_matches_scapy_on_random_frames() -> None:
    rng = random.Random(SEED)
    rejected = accepted_damaged = 0
    for i in range(N_FRAMES):
        f = _rand_fields(rng)
        wire = model_build(f)
        assert _build(ref, f) == wire, f"seed {SEED} frame {i}: reference build differs"
        assert _build(fast, f) == wire, f"seed {SEED} frame {i}: fast build differs"
        want = model_parse(wire)
        assert ref.parse(wire).as_dict() == want, f"seed {SEED} frame {i}: reference parse"
        assert fast.parse(wire).as_dict() == want, f"seed {SEED} frame {i}: fast parse"

        bad = _damage(rng, wire)
        r = _outcome(lambda x: ref.parse(x).as_dict(), bad)
        c = _outcome(lambda x: fast.parse(x).as_dict(), bad)
        m = _outcome(model_parse, bad)
        ctx = f"seed {SEED} frame {i} damaged={bad.hex()}"
        assert r == c, f"{ctx}: twins disagree {r} vs {c}"
        assert r[0] == m[0], f"{ctx}: codec {r[0]} ({r[1]}) vs scapy {m[0]} ({m[1]})"
        if r[0] == "ok":
            assert r[1] == m[1], f"{ctx}: fields differ"
            accepted_damaged += 1
        else:
            rejected += 1
    # The damage must exercise both outcomes substantially, or the test is toothless.
    assert rejected > N_FRAMES // 5 and accepted_damaged > N_FRAMES // 5, (
        rejected, accepted_damaged)


@pytest.mark.parametrize("mod", [ref, fast], ids=["reference", "fast"])
def test_rejection_reasons(mod: Any) -> None:
    d, s = b"\x02" * 6, b"\x04" * 6
    ata = mod.build_ata(d, s, 1, 2, 3, scnt=1, cmdstat=0x20)
    cfg = mod.build_config(d, s, 1, 2, 3, config=b"abc")
    cases = [
        (b"", ref.TruncatedFrame, "shorter than an Ethernet header"),
        (ata[:20], ref.TruncatedFrame, "shorter than the AoE header"),
        (ata[:35], ref.TruncatedFrame, "ATA frame of 35 bytes"),
        (b"\x00" * 12 + b"\x08\x00" + b"\x00" * 46, ref.NotAoE, "0x0800 is not AoE"),
        (cfg[:33], ref.TruncatedFrame, "config string of 3 bytes truncated to 1"),
        (cfg[:30] + b"\x04\x01" + b"x" * 1025, ref.MalformedFrame, "1025 exceeds 1024"),
        (mod.build_aoe(d, s, 1, 2, CMD_MASK, 3, payload=b"\x00\x00\x00\x02" + b"\x00" * 8),
         ref.TruncatedFrame, "mask list of 2 directives"),
        (mod.build_aoe(d, s, 1, 2, CMD_RESERVE, 3, payload=b"\x00\x01"),
         ref.TruncatedFrame, "reserve list of 1 MACs"),
    ]
    for frame, exc, text in cases:
        with pytest.raises(exc, match=text):
            mod.parse(frame)
    # Ethernet padding after a complete frame is accepted; the data is zero-copy.
    f = mod.parse(bytearray(ref.pad(ata)))
    assert f.data_len == 24 and isinstance(f.data, memoryview) and f.scnt == 1


@pytest.mark.parametrize("mod", [ref, fast], ids=["reference", "fast"])
def test_build_rejects_bad_fields(mod: Any) -> None:
    d, s = b"\x02" * 6, b"\x04" * 6
    bad = [
        (lambda: mod.build_ata(d, s, 1, 2, 3, lba=1 << 48), "lba=281474976710656"),
        (lambda: mod.build_ata(d, s, 65536, 2, 3), "major=65536"),
        (lambda: mod.build_ata(d, s, 1, 2, -1), "tag=-1"),
        (lambda: mod.build_ata(d[:5], s, 1, 2, 3), "MAC addresses"),
        (lambda: mod.build_config(d, s, 1, 2, 3, config=b"x" * 1025), "exceeds 1024"),
        (lambda: mod.build_config(d, s, 1, 2, 3, ccmd=16), "ccmd=16"),
        (lambda: mod.build_aoe(d, s, 1, 2, 256, 3), "cmd=256"),
    ]
    for fn, text in bad:
        with pytest.raises(ref.FieldError, match=text):
            fn()


def test_codec_selects_a_twin() -> None:
    from emu.net import codec

    assert codec.parse(ref.build_ata(b"\x01" * 6, b"\x02" * 6, 1, 1, 9)).tag == 9
    if os.environ.get("EMU_PURE", "") in ("", "0"):
        assert codec.IS_FAST
