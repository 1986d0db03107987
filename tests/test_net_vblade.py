"""Real peers over veth pairs: our AoE target against vblade, and the bridge to vblade.

Two veth pairs with identical MACs on each side: vblade serves one, our
`AoEServer` (the `emu aoe-target` code, in a thread) the other, each from an
identical sparse file of 2**28 + 4096 sectors (so LBA48 addresses past the
28-bit range exist). The same request sequence (config query/set/test,
identify, LBA28 and LBA48 reads and writes across the device, out-of-range
and oversized requests, flush, unknown commands, filters, duplicates, mask
and reserve lists) goes to both; every reply must be byte-for-byte equal
(compared field by field for the report), except FLUSH's error register,
which vblade leaves uninitialised. Then `--target iface:NAME`: an initiator
on the emulated segment reaches a real vblade through the bridge. Needs root,
`ip` and `vblade`: skipped with the reason outside CI when missing, a
failure in CI.
"""

from __future__ import annotations

import os
import random
import secrets
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emu.core.clock import Clock
from emu.net import frames as F
from emu.net.ata import identify_capacity
from emu.net.initiator import Initiator
from emu.net.network import NetConfig, Network
from emu.net.rawsock import PACKET_OUTGOING, open_packet_socket, recv_frame
from emu.net.store import FileStore
from emu.tools.aoe_server import AoEServer

pytestmark = pytest.mark.peer

GUEST = bytes.fromhex("525400123456")
SHELF, SLOT = 3, 7
NSECT = (1 << 28) + 4096
CLIENT_MAC = bytes.fromhex("02aa00000001")
TARGET_MAC = bytes.fromhex("02bb00000002")
OTHER_MAC = bytes.fromhex("02cc00000003")
REPLY_WAIT = 0.3      # seconds to wait for a reply before the next request
SILENCE_WAIT = 1.0    # then a final wait: a late reply is still recorded


def require(*tools: str) -> None:
    """Skip (outside CI) or fail (in CI) unless root and `tools` are available."""
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        msg = f"needs {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}: CI must install them (apt-get install vblade tshark iproute2)")
        pytest.skip(f"{msg}; not in CI, so skipping")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def veth_pair(mtu: int) -> Iterator[tuple[str, str]]:
    """A fresh veth pair (client side, target side) with fixed MACs; removed after."""
    base = f"ev{os.getpid() % 10000}{secrets.token_hex(2)}"
    a, b = base + "c", base + "t"
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    try:
        ip("link", "set", a, "address", CLIENT_MAC.hex(":"), "mtu", str(mtu))
        ip("link", "set", b, "address", TARGET_MAC.hex(":"), "mtu", str(mtu))
        ip("link", "set", a, "up")
        ip("link", "set", b, "up")
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True)


@contextmanager
def vblade_on_veth(img: Path, size: int, mtu: int = 9000) -> Iterator[str]:
    """Debian's vblade serving a fresh sparse `img` of `size` bytes as e0.0
    on one end of a veth pair; yields the other end (for iface:NAME). The
    caller has called require("ip", "vblade")."""
    with open(img, "wb") as f:
        f.truncate(size)
    with veth_pair(mtu) as (host_side, vblade_side):
        vb = subprocess.Popen(["vblade", "0", "0", vblade_side, str(img)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            yield host_side
        finally:
            vb.kill()
            vb.communicate()


@dataclass
class Req:
    """One request of the sequence, and what to compare in its replies."""

    name: str
    frame: bytes
    ignore: tuple[str, ...] = ()
    replies: dict[str, list[bytes]] = field(default_factory=dict)


def sequence(scnt: int) -> list[Req]:
    """The request sequence; `scnt` is the targets' sectors per frame."""
    tag = iter(range(0x1000, 0x2000))
    t, s = TARGET_MAC, CLIENT_MAC

    def cfg(name: str, ccmd: int, cs: bytes = b"", **kw: int) -> Req:
        return Req(name, F.build_config(t, s, kw.pop("major", SHELF), kw.pop("minor", SLOT),
                                        next(tag), ccmd=ccmd, config=cs, **kw))

    def ata(name: str, cmd: int, lba: int = 0, n: int = 1, data: bytes = b"", aflags: int = 0,
            dst: bytes = t, ignore: tuple[str, ...] = (), **kw: int) -> Req:
        return Req(name, F.build_ata(dst, s, kw.pop("major", SHELF), kw.pop("minor", SLOT),
                                     next(tag), aflags=aflags, scnt=n, cmdstat=cmd, lba=lba,
                                     data=data, **kw), ignore)

    def raw(name: str, cmd: int, payload: bytes, **kw: int) -> Req:
        return Req(name, F.build_aoe(t, s, SHELF, SLOT, cmd, next(tag), payload=payload, **kw))

    W, E = F.AFLAG_W, F.AFLAG_E
    pat = bytes(range(256)) * 2 * scnt
    pat2 = bytes(reversed(pat))
    big = (1 << 28)
    dup = ata("write LBA48 (sent twice: duplicate)", 0x34, big + 100, scnt, pat, W | E)
    seq = [
        cfg("config read, broadcast address", 0, major=0xFFFF, minor=0xFF),
        cfg("config read", 0),
        cfg("config test exact, none set (silent)", 1, b"x"),
        cfg("config set if empty", 3, b"emu-test-1"),
        cfg("config read, string set", 0),
        cfg("config test exact, match", 1, b"emu-test-1"),
        cfg("config test exact, shorter (silent)", 1, b"emu-test"),
        cfg("config test prefix, match", 2, b"emu"),
        cfg("config test prefix, mismatch (silent)", 2, b"xyz"),
        cfg("config set, different (config error)", 3, b"other"),
        cfg("config set, same string", 3, b"emu-test-1"),
        cfg("config force set", 4, b"v2"),
        cfg("config bad subcommand", 7, b"zz"),
        Req("config read, length 2000 past the frame", F.build_config(
            t, s, SHELF, SLOT, next(tag))[:30] + (2000).to_bytes(2, "big")),
        Req("config set, length 2000 (silent)", F.build_config(
            t, s, SHELF, SLOT, next(tag), ccmd=3)[:30] + (2000).to_bytes(2, "big")),
        ata("identify", 0xEC),
        ata("identify, 0 sectors (bad argument)", 0xEC, n=0),
        ata("write LBA28 at 0", 0x30, 0, scnt, pat, W),
        ata("read LBA28 at 0", 0x20, 0, scnt),
        ata("write LBA48 past 2**28", 0x34, big + 10, scnt, pat2, W | E),
        ata("read LBA48 past 2**28", 0x24, big + 10, scnt, aflags=E),
        ata("read LBA28 at 2**28 (masked to 0)", 0x20, big, scnt),
        ata("read LBA28 at 2**28+10 (masked to 10)", 0x20, big + 10, 1),
        ata("write LBA28 across 2**28-1", 0x30, big - 1, 2 if scnt >= 2 else 1,
            pat2[:1024 if scnt >= 2 else 512], W),
        ata("read LBA48 across 2**28-1", 0x24, big - 1, 2 if scnt >= 2 else 1, aflags=E),
        ata("read LBA48 last sectors", 0x24, NSECT - scnt, scnt, aflags=E),
        ata("read LBA48 spanning the end (IDNF)", 0x24, NSECT - 1, 2, aflags=E),
        ata("read LBA48 at the end (IDNF)", 0x24, NSECT, 1, aflags=E),
        ata("read LBA48 at 2**48-1 (IDNF)", 0x24, (1 << 48) - 1, 1, aflags=E),
        ata("write LBA48 at the end (IDNF)", 0x34, NSECT, 1, pat[:512], W | E),
        ata("read, too many sectors (bad argument)", 0x24, 0, scnt + 1, aflags=E),
        ata("write, data shorter than count (bad argument)", 0x34, 0, 2, pat[:512], W | E),
        ata("read 0 sectors", 0x24, 5, 0, aflags=E),
        ata("flush", 0xE7, n=0, ignore=("errfeat",)),
        ata("flush with a sector count", 0xE7, n=1, ignore=("errfeat",)),
        ata("check power mode, count 255", 0xE5, n=0xFF),
        ata("check power mode, count 0", 0xE5, n=0),
        ata("check power mode, count 1 (silent)", 0xE5, n=1),
        ata("unknown ATA command", 0x99, n=1),
        ata("unknown ATA command, write flag", 0x99, n=1, aflags=W),
        raw("unknown AoE command", 5, b"hello"),
        ata("another shelf (silent)", 0x20, major=SHELF + 1),
        ata("another slot (silent)", 0x20, minor=SLOT + 1),
        ata("broadcast shelf, our slot", 0x20, 0, 1, major=0xFFFF),
        ata("response flag set (silent)", 0x20, flags=F.FLAG_R),
        ata("another unicast MAC", 0x20, 0, 1, dst=OTHER_MAC),
        ata("AoE version 2", 0x20, 0, 1, ver=2),
        dup, dup,
        ata("read back the duplicated write", 0x24, big + 100, scnt, aflags=E),
        raw("mask list read", 2, b"\x00\x00\x00\x00"),
        raw("mask add us and another", 2, b"\x00\x01\x00\x02" + b"\x00\x01" + CLIENT_MAC
            + b"\x00\x01" + OTHER_MAC),
        raw("mask list read, 2 entries", 2, b"\x00\x00\x00\x00"),
        raw("mask bad directive", 2, b"\x00\x01\x00\x01" + b"\x00\x07" + OTHER_MAC),
        raw("mask bad command", 2, b"\x00\x05\x00\x00"),
        # No mask deletions: vblade 25's rmmask() bounds the list by nmasks bytes
        # instead of entries and crashes (memmove of a negative length).
        raw("reserve list read", 3, b"\x00\x00"),
        raw("reserve force set to another MAC", 3, b"\x02\x01" + OTHER_MAC),
        ata("read while reserved by another (reserved)", 0x20, 0, 1),
        ata("identify while reserved (allowed)", 0xEC),
        raw("reserve set while reserved by another", 3, b"\x01\x00"),
        raw("reserve set, list past the frame (bad argument)", 3, b"\x02\x0b" + OTHER_MAC),
        raw("reserve force set, empty", 3, b"\x02\x00"),
        raw("reserve bad command", 3, b"\x09\x00"),
        ata("read after release", 0x20, 0, 1),
    ]
    return seq


class Client:
    """A raw-socket AoE initiator on one interface; replies are kept by tag."""

    def __init__(self, iface: str) -> None:
        self.sock = open_packet_socket(iface)
        self.got: dict[bytes, list[bytes]] = {}

    def drain(self) -> None:
        """Read everything waiting (replies are recorded by tag)."""
        while (got := recv_frame(self.sock)) is not None:
            frame, pkttype = got
            if pkttype != PACKET_OUTGOING and len(frame) >= 24 and frame[14] & F.FLAG_R:
                self.got.setdefault(frame[20:24], []).append(frame)

    def send(self, frame: bytes) -> None:
        self.sock.send(F.pad(frame))  # a real NIC pads to 60 bytes; veth does not


def exchange(clients: list[Client], frame: bytes, wait: float) -> None:
    """Send `frame` through every client; wait until each has a reply or `wait` s."""
    tag = frame[20:24]
    before = [len(c.got.get(tag, [])) for c in clients]
    for c in clients:
        c.send(frame)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        select.select([c.sock for c in clients], [], [], 0.005)
        for c in clients:
            c.drain()
        if all(len(c.got.get(tag, [])) > n for c, n in zip(clients, before, strict=True)):
            return


def describe(frame: bytes) -> dict[str, object]:
    try:
        d = F.parse(frame).as_dict()
    except F.FrameError as exc:
        return {"unparsable": str(exc)}
    d["length"] = len(frame)
    return d


def brief(a: object, b: object) -> object:
    """A short account of two differing values (long byte strings: where they part)."""
    if isinstance(a, bytes) and isinstance(b, bytes):
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                  min(len(a), len(b)))
        return f"vblade {len(a)} bytes, emu {len(b)} bytes, first difference at {at}"
    return (a, b)


@pytest.fixture
def tools() -> None:
    require("ip", "vblade")


@pytest.mark.parametrize("mtu", [1500, 9000])
def test_embedded_target_answers_like_vblade(tools: None, tmp_path: object, mtu: int) -> None:
    scnt = (mtu - 36) // 512
    paths = []
    for name in ("vblade.img", "emu.img"):
        p = os.path.join(str(tmp_path), name)
        with open(p, "wb") as f:
            f.truncate(NSECT * 512)
        paths.append(p)
    with veth_pair(mtu) as (vc, vt), veth_pair(mtu) as (ec, et):
        vblade = subprocess.Popen(["vblade", str(SHELF), str(SLOT), vt, paths[0]],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        store = FileStore(paths[1])
        host = socket.gethostname()
        server = AoEServer(et, store, SHELF, SLOT, model="Coraid EtherDrive vblade",
                           firmware="V25", serial=f"{SHELF}.{SLOT}:{host}"[:19],
                           fwver=0x4019)
        stop = threading.Event()
        thread = threading.Thread(target=server.serve_forever, args=(stop, 0.05), daemon=True)
        clients = {"vblade": Client(vc), "emu": Client(ec)}
        try:
            thread.start()
            time.sleep(0.5)  # both announce themselves at start: record and forget
            for c in clients.values():
                c.drain()
                c.got.clear()
            assert vblade.poll() is None, vblade.communicate()[0]
            seq = sequence(scnt)
            for req in seq:
                exchange(list(clients.values()), req.frame, REPLY_WAIT)
            time.sleep(SILENCE_WAIT)  # late replies still count
            for c in clients.values():
                c.drain()
            for req in seq:
                for who, c in clients.items():
                    req.replies[who] = c.got.get(req.frame[20:24], [])
            alive = vblade.poll() is None
        finally:
            stop.set()
            thread.join(5)
            server.close()
            store.close()
            vblade.kill()
            out = vblade.communicate()[0].decode(errors="replace")
        assert alive, f"vblade died: {out}"
        assert f"e{SHELF}.{SLOT}, {NSECT} sectors" in out, out

    mismatches = []
    for req in seq:
        a, b = req.replies["vblade"], req.replies["emu"]
        if len(a) != len(b):
            mismatches.append(f"{req.name}: vblade sent {len(a)} replies, emu {len(b)}")
            continue
        for ra, rb in zip(a, b, strict=True):
            da, db = describe(ra), describe(rb)
            for k in req.ignore:
                da.pop(k, None)
                db.pop(k, None)
            diff = {k: brief(da.get(k), db.get(k)) for k in sorted(set(da) | set(db))
                    if da.get(k) != db.get(k)}
            if diff:
                mismatches.append(f"{req.name}: {diff}")
            elif not req.ignore:
                assert ra == rb, req.name
    assert not mismatches, "\n".join(mismatches)

    # The sequence must have exercised real answers, not two silences.
    got = {r.name: r.replies["vblade"] for r in seq}
    assert sum(1 for r in seq if r.replies["vblade"]) >= len(seq) - 12
    ident = got["identify"][0][36:]
    assert identify_capacity(ident) == (0x0FFF_FFFF, NSECT)
    assert got["read LBA28 at 0"][0][36:] == bytes(range(256)) * 2 * scnt
    assert got["read LBA28 at 2**28 (masked to 0)"][0][36:] == bytes(range(256)) * 2 * scnt
    assert got["read LBA48 spanning the end (IDNF)"][0][25] == 0x10
    assert got["config set, different (config error)"][0][15] == F.ERR_CONFIG
    assert got["config test exact, none set (silent)"] == []
    assert len(got["write LBA48 (sent twice: duplicate)"]) == 2  # re-executed: two replies
    assert got["read while reserved by another (reserved)"][0][15] == F.ERR_RESERVED


def test_aoe_target_command_line_errors(tools: None, tmp_path: object,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from emu.tools.aoe_server import serve

    assert serve("no-such-if0", os.path.join(str(tmp_path), "missing.img"), 1, 1) == 1
    img = os.path.join(str(tmp_path), "d.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    assert serve("no-such-if0", img, 1, 1) == 1
    assert serve("no-such-if0", img, 0xFFFF, 1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("emu aoe-target: ") for line in err), err
    assert "interface named 'no-such-if0'" in err[1] and "out of range" in err[2]


# -- --target iface:NAME: the guest reaches a real vblade through the bridge ------
def test_guest_reaches_vblade_through_the_bridge(tools: None, tmp_path: object) -> None:
    img = os.path.join(str(tmp_path), "disk.img")
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    with veth_pair(9000) as (host_side, vblade_side):
        vb = subprocess.Popen(["vblade", "4", "2", vblade_side, img],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        clock = Clock()
        net = Network(clock, NetConfig(targets=(f"iface:{host_side}",), mtu=9000))
        try:
            assert not net.deterministic
            ini = Initiator(clock, GUEST, shelf=4, slot=2, rto_ns=500_000_000)
            ini.port = net.attach_guest(ini, GUEST)
            time.sleep(0.3)
            results: dict[str, F.AoEFrame | None] = {}
            page = random.Random(1).randbytes(4096)
            ini.config_query(lambda r: results.__setitem__("config", r))
            ini.identify(lambda r: results.__setitem__("identify", r))
            ini.write(100, page, lambda r: results.__setitem__("write", r))
            deadline = time.monotonic() + 10
            while len(results) < 3 and time.monotonic() < deadline:
                net.poll()
                clock.advance(clock.now + 10_000)   # 10 us of virtual time a round
                clock.run_due()
                time.sleep(0.0005)
            ini.read(100, 8, lambda r: results.__setitem__("read", r))
            while len(results) < 4 and time.monotonic() < deadline:
                net.poll()
                clock.advance(clock.now + 10_000)
                clock.run_due()
                time.sleep(0.0005)
        finally:
            net.close()
            vb.kill()
            vb.communicate()
    assert set(results) == {"config", "identify", "write", "read"}, results
    assert results["config"].scnt == 17 and results["config"].src != GUEST
    assert identify_capacity(bytes(results["identify"].data)) == (16384, 16384)
    assert results["write"].cmdstat == 0x40
    assert bytes(results["read"].data) == page
    st = net.stats()["bridges"][host_side]
    assert st["to_host"] >= 4 and st["from_host"] >= 4 and st["to_host_errors"] == 0
    with open(img, "rb") as f:
        f.seek(100 * 512)
        assert f.read(4096) == page
