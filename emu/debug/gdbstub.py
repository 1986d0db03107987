"""The GDB stub: serves the remote serial protocol (rsp.py) on a TCP socket
and drives the shared Controller, so a real gdb can debug the guest.

Conventions followed (NOTES.md section 6, gdb manual "Remote Protocol"):
- qSupported answers PacketSize, qXfer:features:read+ (target.xml from
  gdbregs.py), swbreak+, hwbreak+ and QStartNoAckMode+;
- g/G p/P m/M (and X) c/s/C/S ? Z0-Z4/z0-z4 D k, qRcmd for `monitor`;
- stop replies are T05 (T02 after Ctrl-C) with `swbreak:`/`hwbreak:`/
  `watch:` reasons when gdb announced them, W on guest exit; a stop on a
  fault breakpoint is preceded by an `O` console packet that names the
  fault (`monitor info stop` shows its walk);
- memory reads go through our Sv39 walker with no A/D updates and never
  touch devices (vmem.py);
- qAttached answers 1, so gdb detaches rather than kills when it quits.

Robustness: nothing a client sends can take the stub down. A bad checksum
gets `-`; oversized packets, non-hex fields and unknown arguments get an
error reply (E01 malformed, E02 too long, E14 bad address, E22 invalid);
unknown packets get the empty reply; a client that disconnects (even in
the middle of a packet) just ends that session and the stub waits for the
next one. An internal failure while handling a packet is logged in one
line and answered E7f.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import os
import select
import socket
import sys
from typing import IO

from emu.core.isa import PRIV_M
from emu.debug import gdbregs, rsp
from emu.debug.commands import CommandError, Session, SessionEnd, lookup
from emu.debug.control import Controller, DebugError, Stop
from emu.debug.vmem import MemError

SIGINT, SIGTRAP = 2, 5
EXIT_KILLED = 137     # what a shell shows for SIGKILL: gdb's `kill` ended the run
E_MALFORMED, E_TOO_LONG, E_FAULT, E_INVALID, E_INTERNAL = (b"E01", b"E02", b"E14", b"E22",
                                                            b"E7f")


class ClientGone(Exception):
    """The client closed the connection."""


class GdbStub:
    """A listening GDB server for one Controller (one client at a time)."""

    def __init__(self, ctl: Controller, host: str = "127.0.0.1", port: int = 1234,
                 log: IO[str] | None = None) -> None:
        self.ctl = ctl
        self.log = log if log is not None else sys.stderr
        self.session = Session(ctl)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(1)
        self.address = self.listener.getsockname()
        self.killed = False
        # EMU_GDB_TRACE=1 logs every packet (the `set debug remote 1` of the stub).
        self.trace = os.environ.get("EMU_GDB_TRACE", "") not in ("", "0")

    def say(self, msg: str) -> None:
        """One log line on the stub's log stream."""
        self.log.write(f"emu: gdb stub: {msg}\n")
        self.log.flush()

    def close(self) -> None:
        """Stop listening."""
        self.listener.close()

    def client_waiting(self) -> bool:
        """True if a client is waiting to be accepted (non-blocking)."""
        try:
            r, _, _ = select.select([self.listener], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(r)

    # -- one client ----------------------------------------------------------
    def serve_one(self) -> str:
        """Accept one client and serve it until it leaves. Returns how it
        ended: "detach", "disconnect" or "kill"."""
        conn, peer = self.listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.say(f"client connected from {peer[0]}:{peer[1]}")
        self.ctl.machine.peers.add("gdb", conn.fileno())     # a real peer from now on
        client = _Client(self, conn)
        try:
            how = client.serve()
        finally:
            self.ctl.machine.peers.remove("gdb")
            conn.close()
            self.ctl.poll = None
        self.say({"detach": "client detached", "kill": "client killed the machine",
                  "disconnect": "client disconnected; waiting for the next one"}[how])
        return how


class _Link:
    """The transport of one connection: RSP framing, acks, retransmission
    of the last packet on `-`, and a queue of decoded events."""

    def __init__(self, conn: socket.socket, stub: GdbStub) -> None:
        self.conn = conn
        self.stub = stub
        self.dec = rsp.Decoder()
        self.noack = False
        self.last_sent = b""
        self.queue: list[rsp.Event] = []
        self.gone = False

    def recv(self, timeout: float | None) -> bool:
        """Read what is available into the event queue. Returns False if
        nothing arrived within `timeout`. Raises ClientGone on EOF."""
        try:
            r, _, _ = select.select([self.conn], [], [], timeout)
            if not r:
                return False
            data = self.conn.recv(65536)
        except (OSError, ValueError):
            data = b""
        if not data:
            self.gone = True
            raise ClientGone()
        self.queue.extend(self.dec.feed(data))
        return True

    def next_event(self) -> rsp.Event:
        """Wait for the next event. Raises ClientGone."""
        while not self.queue:
            self.recv(None)
        return self.queue.pop(0)

    def send(self, payload: bytes) -> None:
        """Send one packet (kept for a `-` retransmission)."""
        pkt = rsp.frame(payload)
        self.last_sent = pkt
        if self.stub.trace:
            self.stub.say(f"-> {payload[:200]!r}")
        try:
            self.conn.sendall(pkt)
        except OSError:
            self.gone = True
            raise ClientGone() from None

    def resend(self) -> None:
        """The client asked (`-`) for the last packet again."""
        if self.last_sent:
            self.conn.sendall(self.last_sent)

    def ack(self, good: bool) -> None:
        """`+` or `-` for a received packet (nothing in no-ack mode)."""
        if not self.noack:
            try:
                self.conn.sendall(b"+" if good else b"-")
            except OSError:
                self.gone = True
                raise ClientGone() from None

    def poll_interrupt(self) -> bool:
        """Controller.poll while running: True on Ctrl-C or a vanished client."""
        try:
            while self.recv(0):
                pass
        except ClientGone:
            return True
        hit = any(e.kind == "interrupt" for e in self.queue)
        self.queue = [e for e in self.queue if e.kind != "interrupt"]
        return hit


class _Client:
    """Protocol state of one connection: packets answered through the
    PACKETS table (first byte of the payload -> handler)."""

    def __init__(self, stub: GdbStub, conn: socket.socket) -> None:
        self.stub = stub
        self.ctl = stub.ctl
        self.link = _Link(conn, stub)
        self.swbreak = False
        self.hwbreak = False

    def send(self, payload: bytes) -> None:
        """Send one packet."""
        self.link.send(payload)

    # -- main loop -----------------------------------------------------------
    def serve(self) -> str:
        """Handle packets until the client leaves. Returns detach|disconnect|kill."""
        link = self.link
        try:
            while True:
                ev = link.next_event()
                if ev.kind == "nack":
                    link.resend()
                    continue
                if ev.kind in ("ack", "interrupt"):
                    continue   # Ctrl-C while stopped: nothing is running
                if ev.kind == "bad_checksum":
                    link.ack(False)
                    continue
                link.ack(True)
                if ev.kind == "oversized":
                    self.send(E_TOO_LONG)
                    continue
                how = self._dispatch(ev.payload)
                if how is not None:
                    return how
        except ClientGone:
            return "disconnect"

    def _dispatch(self, payload: bytes) -> str | None:
        """Answer one packet. Returns a session end (detach/kill) or None."""
        if self.stub.trace:
            self.stub.say(f"<- {payload[:200]!r}")
        try:
            payload = rsp.rle_expand(payload)
            reply = self._handle(payload)
        except ClientGone:
            raise
        except rsp.RspError:
            reply = E_MALFORMED
        except _End as end:
            if end.reply is not None:
                self.send(end.reply)
            return end.how
        except Exception as exc:  # noqa: BLE001 - the stub must survive anything
            self.stub.say(f"internal error on packet {payload[:40]!r}: {exc!r}")
            reply = E_INTERNAL
        if reply is not None:
            self.send(reply)
        return None

    # -- packets ---------------------------------------------------------------
    def _handle(self, p: bytes) -> bytes | None:
        if not p:
            return b""
        if p == b"vCont?":
            # Advertising s makes gdb step with the stub instead of planting
            # its own breakpoint after the instruction (software single-step),
            # which would miss a step into the trap handler.
            return b"vCont;c;C;s;S"
        if p.startswith(b"vCont;"):
            return self._vcont(p[len(b"vCont;"):])
        handler = PACKETS.get(p[:1])
        if handler is None:
            return b""   # unsupported (v*, !, R, ...): the empty reply
        return handler(self, p)

    # One handler per packet letter (gdb manual, "Packets").
    def _p_status(self, p: bytes) -> bytes:
        return self._stop_reply(self.ctl.last_stop)

    def _p_read_g(self, p: bytes) -> bytes:
        return rsp.rle_compress(b"".join(rsp.le_hex(v)
                                         for v in gdbregs.g_values(self.ctl.machine.cpu)))

    def _p_read_reg(self, p: bytes) -> bytes:
        v = gdbregs.read_reg(self.ctl.machine.cpu, rsp.hexint(p[1:], "register"))
        return E_INVALID if v is None else rsp.le_hex(v)

    def _p_thread(self, p: bytes) -> bytes:
        return b"OK"

    def _p_detach(self, p: bytes) -> bytes:
        raise _End("detach", b"OK")

    def _p_kill(self, p: bytes) -> bytes:
        raise _End("kill", None)

    def _query(self, p: bytes) -> bytes:
        name, _, arg = p.partition(b":")
        if name == b"qSupported":
            feats = arg.split(b";")
            self.swbreak = b"swbreak+" in feats
            self.hwbreak = b"hwbreak+" in feats
            return (f"PacketSize={rsp.MAX_PAYLOAD:x};qXfer:features:read+;swbreak+;hwbreak+;"
                    "QStartNoAckMode+").encode()
        if p == b"QStartNoAckMode":
            self.send(b"OK")   # still acknowledged; gdb acks this reply too
            self.link.noack = True
            return None  # type: ignore[return-value]
        if name == b"qXfer" and arg.startswith(b"features:read:"):
            return self._xfer(arg[len(b"features:read:"):])
        if p == b"qAttached" or p.startswith(b"qAttached:"):
            return b"1"
        if p == b"qC":
            return b"QC1"
        if p == b"qfThreadInfo":
            return b"m1"
        if p == b"qsThreadInfo":
            return b"l"
        if p.startswith(b"qSymbol"):
            return b"OK"
        if p.startswith(b"qRcmd,"):
            return self._monitor(p[len(b"qRcmd,"):])
        return b""

    def _xfer(self, arg: bytes) -> bytes:
        annex, _, rng = arg.partition(b":")
        if annex != b"target.xml":
            return E_INVALID
        off_s, _, len_s = rng.partition(b",")
        off, n = rsp.hexint(off_s, "offset"), rsp.hexint(len_s, "length")
        m = self.ctl.machine
        doc = gdbregs.target_xml(fpu=m.image.float_abi != 0,
                                 mmode=m.boot.priv == PRIV_M).encode()
        chunk = doc[off:off + min(n, rsp.MAX_PAYLOAD // 2)]
        return (b"l" if off + len(chunk) >= len(doc) else b"m") + rsp.escape(chunk)

    def _monitor(self, hexcmd: bytes) -> bytes:
        line = rsp.hexdec(hexcmd).decode("utf-8", "replace")
        try:
            out = self.stub.session.execute(line, via_gdb=True)
            words = line.split()
            if words and lookup(words[0].split("/")[0]).moves:
                out += ("\nnote: the machine moved behind gdb's back; "
                        "`maintenance flush register-cache` refreshes gdb's view")
        except CommandError as exc:
            out = (exc.partial + "\n" if exc.partial else "") + f"error: {exc}"
        except SessionEnd:
            out = "error: 'quit' is not available through gdb's monitor (use `detach`)"
        text = (out.rstrip("\n") + "\n").encode() if out else b""
        # Console output travels in O packets, then OK ends the command.
        step = (rsp.MAX_PAYLOAD - 8) // 2
        for i in range(0, len(text), step):
            self.send(b"O" + rsp.hexenc(text[i:i + step]))
        return b"OK"

    def _write_g(self, p: bytes) -> bytes:
        raw = rsp.hexdec(p[1:])
        if len(raw) < 8 or len(raw) % 8:
            return E_MALFORMED
        cpu = self.ctl.machine.cpu
        for i in range(min(len(raw) // 8, gdbregs.NUM_G_REGS)):
            gdbregs.write_reg(cpu, i, int.from_bytes(raw[8 * i:8 * i + 8], "little"))
        return b"OK"

    def _write_p(self, p: bytes) -> bytes:
        reg_s, eq, val_s = p[1:].partition(b"=")
        if not eq:
            return E_MALFORMED
        raw = rsp.hexdec(val_s)
        if not 1 <= len(raw) <= 8:
            return E_MALFORMED
        ok = gdbregs.write_reg(self.ctl.machine.cpu, rsp.hexint(reg_s, "register"),
                               int.from_bytes(raw, "little"))
        return b"OK" if ok else E_INVALID

    def _read_mem(self, p: bytes) -> bytes:
        a_s, comma, n_s = p[1:].partition(b",")
        if not comma:
            return E_MALFORMED
        addr, n = rsp.hexint(a_s, "address"), rsp.hexint(n_s, "length")
        n = min(n, (rsp.MAX_PAYLOAD - 4) // 2)
        got = self.ctl.mem.read_virt_partial(addr, n)
        if n and not got:
            return E_FAULT
        return rsp.rle_compress(rsp.hexenc(got))

    def _write_mem(self, p: bytes) -> bytes:
        binary = p[:1] == b"X"
        head, colon, body = p[1:].partition(b":")
        a_s, comma, n_s = head.partition(b",")
        if not colon or not comma:
            return E_MALFORMED
        addr, n = rsp.hexint(a_s, "address"), rsp.hexint(n_s, "length")
        raw = rsp.unescape(body) if binary else rsp.hexdec(body)
        if len(raw) != n:
            return E_MALFORMED
        if not raw:
            return b"OK"   # gdb probes X support with a zero-length write
        try:
            self.ctl.mem.write_virt(addr, raw)
        except MemError:
            return E_FAULT
        return b"OK"

    def _breakpoint(self, p: bytes) -> bytes:
        fields = p[1:].split(b";")[0].split(b",")
        if len(fields) != 3 or fields[0] not in (b"0", b"1", b"2", b"3", b"4"):
            return E_MALFORMED if len(fields) != 3 else b""
        kind = int(fields[0])
        addr, length = rsp.hexint(fields[1], "address"), rsp.hexint(fields[2], "kind")
        ctl = self.ctl
        insert = p[:1] == b"Z"
        if kind in (0, 1):
            bp = ctl.find_code(addr, hw=kind == 1)
            if insert and bp is None:
                ctl.add_code(addr, hw=kind == 1)
            elif not insert and bp is not None:
                ctl.delete(bp.id)
            return b"OK"
        wkind = {2: "watch", 3: "rwatch", 4: "awatch"}[kind]
        if not 0 < length <= 4096:
            return E_INVALID
        bp = ctl.find_watch(wkind, addr, length)
        try:
            if insert and bp is None:
                ctl.add_watch(wkind, addr, length)
            elif not insert and bp is not None:
                ctl.delete(bp.id)
        except DebugError:
            return E_INVALID
        return b"OK"

    def _vcont(self, actions: bytes) -> bytes:
        """vCont;ACTION[:tid];... - one thread, so the first action rules."""
        first = actions.split(b";")[0].split(b":")[0]
        if first[:1] in (b"c", b"s") and len(first) == 1:
            return self._resume(first)
        if first[:1] in (b"C", b"S") and len(first) > 1:
            return self._resume(first[:1] + first[1:] + b";")
        return E_MALFORMED

    def _resume(self, p: bytes) -> bytes:
        c = p[:1]
        arg = p[1:]
        if c in (b"C", b"S"):
            sig_s, _, arg = arg.partition(b";")
            rsp.hexint(sig_s, "signal")   # validated, then ignored: no signals here
        cpu = self.ctl.machine.cpu
        if arg:
            cpu.pc = rsp.hexint(arg, "address")
        self.ctl.poll = self.link.poll_interrupt
        peers = self.ctl.machine.peers
        peers.add("gdb", self.link.conn.fileno())   # Ctrl-C from gdb ends a host wait
        try:
            st = self.ctl.stepi(1) if c in (b"s", b"S") else self.ctl.cont()
        except DebugError as exc:
            self.send(b"O" + rsp.hexenc(f"emu: {exc}\n".encode()))
            st = self.ctl.last_stop
        finally:
            self.ctl.poll = None
            peers.remove("gdb")
        if self.link.gone:
            raise ClientGone()
        # Keep the monitor's view in step with gdb's: the fault in focus and
        # the registers that later `monitor` context views compare against.
        self.stub.session.show_stop(st)
        return self._stop_reply(st, announce=True)

    def _stop_reply(self, st: Stop, announce: bool = False) -> bytes:
        """T/W reply for `st`; with `announce`, faults and errors are first
        explained in an O packet (gdb prints it)."""
        if st.kind == "exited" or (st.kind == "error" and st.exit_status is not None):
            if announce:
                self.send(b"O" + rsp.hexenc(f"emu: {st.message}\n".encode()))
            return f"W{(st.exit_status or 0) & 0xFF:02x}".encode()
        if announce and st.kind in ("fault", "error", "limit"):
            self.send(b"O" + rsp.hexenc(f"emu: {st.message}\n".encode()))
        sig = SIGINT if st.kind == "interrupted" else SIGTRAP
        parts = [f"T{sig:02x}"]
        if st.kind == "breakpoint" and st.bp is not None:
            if st.bp.kind == "hw" and self.hwbreak:
                parts.append("hwbreak:;")
            elif st.bp.kind == "code" and self.swbreak:
                parts.append("swbreak:;")
        if st.kind == "watchpoint" and st.watch is not None and st.bp is not None:
            kind = st.bp.kind
            addr = max(st.watch[1], st.bp.addr)   # inside the watched range, as gdb checks
            parts.append(f"{kind}:{addr:x};")
        cpu = self.ctl.machine.cpu
        parts.append(f"thread:1;{gdbregs.PC_REGNUM:02x}:{rsp.le_hex(cpu.pc).decode()};"
                     f"02:{rsp.le_hex(cpu.reg('sp')).decode()};")
        return "".join(parts).encode()


PACKETS = {
    b"?": _Client._p_status, b"q": _Client._query, b"Q": _Client._query,
    b"g": _Client._p_read_g, b"G": _Client._write_g,
    b"p": _Client._p_read_reg, b"P": _Client._write_p,
    b"m": _Client._read_mem, b"M": _Client._write_mem, b"X": _Client._write_mem,
    b"c": _Client._resume, b"C": _Client._resume, b"s": _Client._resume, b"S": _Client._resume,
    b"Z": _Client._breakpoint, b"z": _Client._breakpoint,
    b"H": _Client._p_thread, b"T": _Client._p_thread,
    b"D": _Client._p_detach, b"k": _Client._p_kill,
}


class _End(Exception):
    """Ends a session (detach or kill) after sending `reply`."""

    def __init__(self, how: str, reply: bytes | None) -> None:
        super().__init__(how)
        self.how = how
        self.reply = reply


def run_with_stub(ctl: Controller, stub: GdbStub, wait: bool) -> int:
    """`emu run -s`: serve gdb while the machine runs. With `wait` (-S) the
    machine waits for gdb at reset; otherwise it runs and stops when a gdb
    connects (as QEMU does). Returns the exit status for the shell: the
    guest's, or 137 after gdb's `kill`."""
    if wait:
        stub.say(f"listening on {stub.address[0]}:{stub.address[1]}; waiting for gdb at reset")
    else:
        stub.say(f"listening on {stub.address[0]}:{stub.address[1]}")
    need_client = wait
    while True:
        if not need_client:
            # Run freely until the guest ends, a stop needs a client, or one
            # connects; a gdb is a real peer, so a connection ends a host wait.
            ctl.poll = stub.client_waiting
            ctl.machine.peers.add("gdb", stub.listener.fileno())
            try:
                st = ctl.cont()
            finally:
                ctl.poll = None
                ctl.machine.peers.remove("gdb")
            if st.kind == "exited" and not stub.client_waiting():
                m = ctl.machine
                return m.exit_status if m.exit_status is not None else 0
        how = stub.serve_one()
        m = ctl.machine            # gdb may have booted a fresh one (run-to, restart)
        if how == "kill":
            m.exit_status = EXIT_KILLED
            m.stop_reason = "killed by gdb"
            return EXIT_KILLED
        if m.exit_status is not None:
            return m.exit_status
        need_client = how == "disconnect"
        if how == "detach" and ctl.bps:
            # gdb removed its own breakpoints; `monitor` ones would stop a
            # machine nobody watches: detach means "run free to the end".
            stub.say(f"detach: dropping {len(ctl.bps)} monitor breakpoint(s)")
            ctl.delete(None)
