"""The GDB stub against real clients: gdb-multiarch in batch mode, and a
malformed-packet fuzzer (>= 10,000 packets) after which a clean session
still works. Everything runs on localhost sockets, against
`emu run -S -gdb tcp::PORT` in a subprocess."""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest

from emu.debug import rsp

IN_CI = os.environ.get("CI") == "true"
GDB = shutil.which("gdb-multiarch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """`emu run -S -gdb tcp::PORT` in a subprocess, ready to accept."""

    def __init__(self, kernel: str, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emu", "run", "-S", "-gdb", f"tcp::{self.port}",
             "-kernel", kernel, *(extra or ("-q",))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._stderr_line(20)
        assert "listening on 127.0.0.1" in line, line

    def _stderr_line(self, timeout: float) -> str:
        r, _, _ = select.select([self.proc.stderr], [], [], timeout)
        assert r, "the stub did not start"
        return self.proc.stderr.readline().decode()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"emu did not exit: {err.decode()[-2000:]}")
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def stub(kernel):
    s = Stub(kernel)
    yield s
    s.kill()


def need_gdb() -> None:
    if GDB is None:
        if IN_CI:
            pytest.fail("gdb-multiarch is missing in CI (.ci/run installs it)")
        pytest.skip("gdb-multiarch is not installed here (apt-get install gdb-multiarch); "
                    "CI installs it and runs this test")


def test_real_gdb_session(stub, kernel, tmp_path):
    need_gdb()
    fn = "vmfault" if b"vmfault" in open(kernel, "rb").read() else "trap"
    script = tmp_path / "session.gdb"
    script.write_text("\n".join([
        "set pagination off", "set confirm off",
        f"target remote :{stub.port}",
        f"break {fn}", "continue",
        "info registers pc sp ra satp sstatus priv",
        "x/2xg $sp",
        "stepi", "print $pc",
        "monitor info mem",
        "delete",
        "monitor break fault user w",
        "continue",
        "monitor info stop",
        "info registers pc priv",
    ]) + "\n")
    r = subprocess.run([GDB, "-q", "-batch", "-nx", "-x", str(script), kernel],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    # The kernel's symbols and a breakpoint at a kernel function.
    assert f"Breakpoint 1, {fn} (" in out, out
    assert "priv           0x1\tprv:1 [Supervisor]" in out
    assert "satp           0x8" in out                           # Sv39 on
    # Memory read at a virtual address (the stack).
    sp = int(out.split("sp             0x")[1].split()[0], 16)
    assert f"0x{sp:x}:\t0x" in out
    # stepi moved on inside the function (print $pc shows where).
    assert re.search(r"\$1 = \(void \(\*\)\(\)\) 0x[0-9a-f]+ <" + fn + r"\+\d+>", out), out
    # monitor speaks the shared command table.
    assert "vaddr            paddr            size             attr" in out
    assert "---------------- ---------------- ---------------- -------" in out
    assert re.search(r"Fault breakpoint \d+: w user", out)
    # The continue stops on the fault, explained by an O packet and the monitor.
    assert re.search(r"emu: fault breakpoint \d+: store page fault \(cause 15\) at va 0x", out)
    assert "Program received signal SIGTRAP" in out
    assert "walk: write 0x" in out and "kernel's view:" in out
    assert "prv:0 [User/Application]" in out
    assert "Remote connection closed" not in out
    # gdb detached on quit: the machine runs free to the guest's clean end.
    code, stdout, stderr = stub.finish()
    assert code == 0, stderr
    assert "client detached" in stderr and "internal error" not in stderr


class Client:
    """A bare RSP client (ack mode) for the fuzzer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _byte(self) -> int:
        while not self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stub closed the connection")
            self.buf += data
        b = self.buf[0]
        del self.buf[0]
        return b

    def ack(self) -> bytes:
        return bytes([self._byte()])

    def packet(self) -> bytes:
        while self._byte() != 0x24:
            pass
        body = bytearray()
        while (b := self._byte()) != 0x23:
            body.append(b)
        cs = bytes([self._byte(), self._byte()])
        assert int(cs, 16) == rsp.checksum(bytes(body)), "stub sent a bad checksum"
        return rsp.rle_expand(bytes(body))

    def request(self, payload: bytes) -> bytes:
        """Send a well-formed packet; return the final reply (after O packets)."""
        self.sock.sendall(rsp.frame(payload))
        assert self.ack() == b"+"
        while True:
            p = self.packet()
            if not (p.startswith(b"O") and p != b"OK"):
                return p


TEMPLATES = [
    b"?", b"g", b"p20", b"p0", b"p2", b"p1c1", b"p1041", b"p1c3", b"m80200000,40",
    b"m0,4", b"m80001000,100", b"qSupported:multiprocess+;swbreak+;hwbreak+",
    b"qXfer:features:read:target.xml:0,200", b"qXfer:features:read:target.xml:200,400",
    b"qAttached", b"qC", b"qfThreadInfo", b"qsThreadInfo", b"Hg0", b"Hc-1",
    b"vMustReplyEmpty", b"vCont?", b"Z0,80200000,4", b"z0,80200000,4", b"Z1,80200010,4",
    b"z1,80200010,4", b"Z2,80001000,8", b"z2,80001000,8", b"Z4,80f00000,4",
    b"z4,80f00000,4", b"M80f00000,4:01020304", b"X80f00010,2:ab", b"P5=0000000000000000",
    b"qRcmd," + rsp.hexenc(b"info mem"), b"qRcmd," + rsp.hexenc(b"walk 0x80200000"),
    b"qRcmd," + rsp.hexenc(b"x/4xg 0x80200000"), b"qRcmd," + rsp.hexenc(b"info breakpoints"),
    b"qOffsets", b"qTStatus", b"qSymbol::",
]
# (payload, exact reply): malformed input gets an error reply, unknown gets "".
MALFORMED = [
    (b"m80200000", b"E01"), (b"mzz,4", b"E01"), (b"m1,zz", b"E01"), (b"M1,2:zz", b"E01"),
    (b"M80f00000,4:0102", b"E01"), (b"pzz", b"E01"), (b"P5", b"E01"), (b"P5=zz", b"E01"),
    (b"G0", b"E01"), (b"qRcmd,6", b"E01"), (b"qRcmd,zz", b"E01"), (b"X1,4:ab", b"E01"),
    (b"Z0,zz,4", b"E01"), (b"Z0,1", b"E01"), (b"Z9,0,0", b""), (b"p99999", b"E22"),
    (b"qXfer:features:read:other.xml:0,10", b"E22"), (b"m0,4", b"E14"),
    (b"\x7f\x80\xff", b""), (b"vFrobnicate", b""),
]
RUN_CONTROL = (b"c", b"C", b"s", b"S", b"k", b"D", b"R", b"r", b"i", b"I", b"!", b"vCont;",
               b"vRun", b"vKill", b"vAttach", b"QStartNoAckMode", b"qRcmd")


def _mutate(rng: random.Random, p: bytes) -> bytes:
    b = bytearray(p)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes([rng.randrange(256)])
        elif op == 2 and b:
            del b[min(i, len(b) - 1)]
        else:
            b[i:i] = rng.choice([b",", b":", b";", b"=", b"ffffffffffffffff", b"}", b"*"])
    return bytes(b.replace(b"$", b"").replace(b"#", b""))


def test_fuzz_malformed_packets_then_a_clean_session(stub):
    rng = random.Random(1234)
    client = Client(stub.port)
    sent = errors = disconnects = 0
    t0 = time.time()
    while sent < 10_000:
        kind = rng.randrange(100)
        if kind < 30:                                   # well-formed templates
            client.request(rng.choice(TEMPLATES))
        elif kind < 55:                                 # mutated, checksum recomputed
            p = _mutate(rng, rng.choice(TEMPLATES))
            if p.startswith(RUN_CONTROL):
                p = b"?"
            client.request(p)
        elif kind < 65:                                 # known-malformed, exact answers
            p, want = rng.choice(MALFORMED)
            assert client.request(p) == want, p
            errors += want.startswith(b"E")
        elif kind < 80:                                 # bad checksum -> '-'
            p = rng.choice(TEMPLATES)
            cs = (rsp.checksum(p) + rng.randrange(1, 256)) & 0xFF
            bad = b"$" + p + b"#" + (f"{cs:02x}".encode() if rng.random() < 0.8 else b"zq")
            client.sock.sendall(bad)
            assert client.ack() == b"-"
        elif kind < 84:                                 # oversized -> E02
            assert client.request(b"m" + b"0" * (rsp.MAX_PAYLOAD + 10)) == b"E02"
            errors += 1
        elif kind < 92:                                 # line noise between packets
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            client.sock.sendall(noise.translate(None, b"$+-\x03"))
            client.request(b"?")
        elif kind < 96:                                 # Ctrl-C while stopped: ignored
            client.sock.sendall(b"\x03")
            client.request(b"qC")
        else:                                           # disconnect mid-packet
            client.sock.sendall(b"$" + rng.choice(TEMPLATES)[: rng.randrange(1, 6)])
            client.close()
            disconnects += 1
            client = Client(stub.port)
        sent += 1
    client.close()
    assert errors > 500 and disconnects > 100
    # A clean session on a new connection still works.
    c = Client(stub.port)
    assert b"PacketSize=4000" in c.request(b"qSupported:swbreak+;hwbreak+")
    stop = c.request(b"?")
    assert stop[:1] in (b"T", b"S", b"W"), stop
    regs = c.request(b"g")
    assert len(regs) == 33 * 16 and all(ch in b"0123456789abcdef" for ch in regs)
    xml = c.request(b"qXfer:features:read:target.xml:0,3000")
    assert xml.startswith(b"l") and b"org.gnu.gdb.riscv.virtual" in xml
    assert len(c.request(b"m80200000,4")) == 8
    c.sock.sendall(rsp.frame(b"qRcmd," + rsp.hexenc(b"info registers")))
    assert c.ack() == b"+"
    text = b""
    while (p := c.packet()) != b"OK":
        text += rsp.hexdec(p[1:])
    assert b"x0/zero" in text and b"satp" in text
    c.sock.sendall(rsp.frame(b"k"))
    assert c.ack() == b"+"
    code, _, err = stub.finish(30)
    assert code == 137, err[-2000:]
    assert "internal error" not in err, err[-2000:]
    assert time.time() - t0 < 60


@pytest.mark.parametrize("args, needle", [
    (["run", "-S"], "-S waits for gdb"),
    (["debug", "-S"], "-S waits for gdb"),
    (["run", "-gdb", "tcp::99999"], "bad -gdb address"),
    (["run", "-gdb", "udp:1"], "bad -gdb address"),
])
def test_gdb_flag_errors_are_one_line(args, needle):
    r = subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_port_in_use_is_one_line(kernel):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "emu", "run", "-gdb", f"tcp::{port}",
                            "-kernel", kernel], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot listen on 127.0.0.1" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_debug_repl_hands_the_session_to_gdb_and_back(kernel):
    """`emu debug -gdb`: a gdb-speaking client takes over while the REPL
    waits, then the prompt continues with the machine where gdb left it."""
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "emu", "debug", "-gdb", f"tcp::{port}",
                          "-kernel", kernel], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                c = Client(port)
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("no stub")
        c.request(b"qSupported")
        assert c.request(b"Z0,%x,4" % _symbol(kernel, "main")) == b"OK"
        assert c.request(b"vCont;c").startswith(b"T05")
        c.sock.sendall(rsp.frame(b"D"))
        assert c.ack() == b"+" and c.packet() == b"OK"
        c.close()
        out, err = p.communicate("info stop\nquit\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert "gdb connected" in out and "gdb detached; back to the (emu) prompt" in out
    main = _symbol(kernel, "main")
    assert f"breakpoint 1 at 0x{main:x} <main>" in out.split("(emu) info stop")[1]


def _symbol(kernel: str, name: str) -> int:
    from emu.core.memory import PhysMem
    from emu.machine.loader import load_elf
    return load_elf(kernel, PhysMem(0x8000_0000, 16 << 20)).symbols.by_name[name]


def test_kill_from_gdb_ends_with_137_in_the_report_and_json(kernel, tmp_path):
    """gdb's `k`: exit 137, and the report and --stats-json say so (not
    `exit status None`)."""
    out = tmp_path / "k.json"
    s = Stub(kernel, "--stats-json", str(out))
    try:
        c = Client(s.port)
        c.request(b"?")
        c.sock.sendall(rsp.frame(b"k"))
        assert c.ack() == b"+"
        code, _, err = s.finish(30)
    finally:
        s.kill()
    assert code == 137, err[-2000:]
    assert "emu: killed by gdb" in err and "None" not in err, err[-2000:]
    assert re.search(r"exit status\s+137", err), err[-2000:]
    st = json.loads(out.read_text())
    assert st["exit_status"] == 137 and st["stop_reason"] == "killed by gdb"
    assert st["clock"]["peers"] == ["gdb"] and not st["deterministic"]


def monitor(c: Client, line: str) -> str:
    """One `monitor LINE` (qRcmd): the text of its O packets."""
    c.sock.sendall(rsp.frame(b"qRcmd," + rsp.hexenc(line.encode())))
    assert c.ack() == b"+"
    text = b""
    while (p := c.packet()) != b"OK":
        text += rsp.hexdec(p[1:])
    return text.decode()


def test_monitor_speaks_the_gdb_habits_too(stub):
    """Through gdb's monitor: print, x, info tlb, info registers NAME work;
    display is the REPL's (gdb has its own) and is refused in one line;
    `info registers` without names keeps QEMU's monitor layout."""
    c = Client(stub.port)
    try:
        assert monitor(c, "p/x $pc") == "$1 = 0x80200000\n"
        assert monitor(c, "p $ + 4") == "$2 = (void (*)()) 0x80200004 <_entry+4>\n"
        assert monitor(c, "x/2xw $pc").startswith("0x80200000 <")
        assert monitor(c, "info registers pc") == \
            "pc             0x80200000\t0x80200000 <_entry>\n"
        assert "x0/zero" in monitor(c, "info registers")
        assert "soft TLB (QEMU's, probed page by page)" in monitor(c, "info tlb")
        assert monitor(c, "display $pc") == \
            "error: 'display' is not available through gdb's monitor\n"
        assert monitor(c, "p nosuch") == 'error: No symbol "nosuch" in current context.\n'
    finally:
        c.close()
