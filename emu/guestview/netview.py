"""`info net`: the NIC's rings and counters, each virtio-net device (its
slot, MAC, status, queues, receive backlog and counters), the segment's
links, the AoE targets - what a frame's journey looks like right now.

Layer: guestview (reads the machine; below the tools and the debugger).
"""

from __future__ import annotations

from typing import Any

from emu.devices import nic as N


def _nonzero(d: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    items = [f"{k}={v}" for k, v in d.items()
             if isinstance(v, int) and not isinstance(v, bool) and v and k not in skip]
    return " ".join(items) or "-"


def info_net(machine: Any) -> str:
    """Return the `info net` text for `machine` (reads device registers
    without side effects)."""
    nic = machine.nic
    r = lambda reg: nic.read(reg, 4)  # noqa: E731 - a short local reader
    st = r(N.REG_STATUS)
    state = [name for bit, name in ((N.STATUS_ENABLED, "enabled"), (N.STATUS_ERROR, "ERROR"),
                                    (N.STATUS_LINK, "link")) if st & bit] or ["disabled"]
    mac = bytes(machine.config.mac).hex(":")
    err = r(N.REG_ERROR)
    err_name = N.ERR_NAMES[err] if err < len(N.ERR_NAMES) else str(err)
    lines = [f"NIC {mac} mtu {r(N.REG_MTU)}  {' '.join(state)}"
             + (f"  error {err_name}" if st & N.STATUS_ERROR else ""),
             f"  interrupts status 0x{r(N.REG_INT_STATUS):x} mask 0x{r(N.REG_INT_MASK):x}"]
    for ring, base_lo, base_hi, size, head, tail in (
            ("TX", N.REG_TX_BASE_LO, N.REG_TX_BASE_HI, N.REG_TX_SIZE, N.REG_TX_HEAD,
             N.REG_TX_TAIL),
            ("RX", N.REG_RX_BASE_LO, N.REG_RX_BASE_HI, N.REG_RX_SIZE, N.REG_RX_HEAD,
             N.REG_RX_TAIL)):
        base = r(base_lo) | r(base_hi) << 32
        n = r(size)
        h, t = r(head), r(tail)
        owned = (t - h) % n if n else 0
        who = "device owns" if ring == "TX" else "empty buffers posted"
        lines.append(f"  {ring} ring 0x{base:x} size {n} head {h} tail {t} ({who}: {owned})")
    lines.append(f"  counters: {_nonzero(nic.stats())}")
    lines += _virtio_nets(machine)
    net = machine.network.stats()
    seg = net["segment"]
    lines.append(f"segment: forwarded {seg['forwarded']} flooded {seg['flooded']} "
                 f"learned MACs {seg['fdb']}"
                 + ("" if net["deterministic"] else "  (bridged: not deterministic)"))
    for name, port in seg["ports"].items():
        lines.append(f"  port {name}: {_nonzero(port, ('up', 'down'))}")
        for direction in ("up", "down"):
            lines.append(f"    {direction:4} link: {_nonzero(port[direction])}")
    for name, t in net["targets"].items():
        lines.append(f"target {name}: {t['nsectors'] * 512 >> 20} MiB, bufcnt {t['bufcnt']}, "
                     f"{t['scnt']} sectors/frame; "
                     f"{_nonzero(t, ('shelf', 'slot', 'scnt', 'bufcnt', 'nsectors'))}")
    if net.get("noise"):
        lines.append(f"noise: {_nonzero(net['noise'])}")
    return "\n".join(lines)


def _virtio_nets(machine: Any) -> list[str]:
    """Two lines per virtio-net device: identity and state, counters."""
    from emu.devices.virtio.net import VirtioNet, format_mac
    out = []
    for t in machine.virtio:
        dev = t.device
        if not isinstance(dev, VirtioNet):
            continue
        live = [f"q{i} {q.num} entries, avail {q.last_avail} used {q.used_idx}"
                for i, q in enumerate(t.live) if q is not None]
        out.append(f"virtio-net {t.name} {format_mac(dev.mac)} mtu {dev.mtu or 1500}  "
                   f"status 0x{t.status:x}{'  NEEDS RESET' if t.broken else ''}  "
                   f"backlog {len(dev.backlog)}  " + ("; ".join(live) or "queues not set up"))
        out.append(f"  counters: {_nonzero(dev.stats())}")
    return out
