"""Deadlock detection: a slice-end observer that stops a run which makes no
progress while work is pending, and explains why.

Progress is either a user instruction retiring (the hart seen in U-mode at a
slice end, or a trap taken from U-mode) or a swap I/O completing (the guest
kernel's AoE replies and swap page counts moving). Work is pending when the
kernel's gauges say tasks are blocked or AoE requests are outstanding
(kstats `tasks_blocked`, `aoe_inflight`); a kernel without those gauges is
not watched, and an idle guest with nothing pending is never a deadlock.
After `span_ns` of virtual time without progress while pending, the run
stops with exit status 3 and `diagnosis` holds the explanation: free pages
against the watermarks, the reserves, every task and what it waits on, AoE
requests in flight, the NIC's rings and drop counters.

Layer: tools.
"""

from __future__ import annotations

from typing import Any

from emu.guestview import kstats

EXIT_DEADLOCK = 3


class DeadlockWatch:
    """Watches `machine` (append it to machine.after_slice)."""

    def __init__(self, machine: Any, span_ns: int = 2_000_000_000) -> None:
        self.machine = machine
        self.span_ns = span_ns
        self.check_every = max(1, span_ns // 50)
        self._next_check = 0
        self._last_progress_ns = 0
        self._last_marks: tuple[int, ...] | None = None
        self._at_progress: dict[str, Any] = {}
        self.diagnosis: str | None = None
        self.stall_start_ns: int | None = None   # set with the diagnosis

    def _marks(self, raw: dict[str, Any]) -> tuple[int, ...]:
        m = self.machine
        return (m.stats.user_slices, m.stats.user_traps, raw.get("aoe_replies", 0),
                raw.get("swap_ins", 0), raw.get("swap_outs", 0))

    def __call__(self) -> None:
        """Slice-end observer: stop the machine once it is deadlocked."""
        m = self.machine
        now = m.now()
        if now < self._next_check or m.exit_status is not None:
            return
        self._next_check = now + self.check_every
        raw = kstats.read_raw(m)
        if raw is None or "tasks_blocked" not in raw:
            self._last_progress_ns = now          # not watchable: never fires
            return
        marks = self._marks(raw)
        pending = raw.get("tasks_blocked", 0) + raw.get("aoe_inflight", 0)
        if marks != self._last_marks or not pending:
            self._last_marks = marks
            self._last_progress_ns = now
            self._at_progress = raw
            return
        stalled = now - self._last_progress_ns
        if stalled >= self.span_ns:
            self.stall_start_ns = self._last_progress_ns
            self.diagnosis = diagnose(m, stalled, self._at_progress)
            m.exit_status = EXIT_DEADLOCK
            m.stop_reason = (f"deadlock: no progress for {stalled / 1e6:,.0f} ms of virtual "
                             "time while work was pending")


def why(raw: dict[str, Any], before: dict[str, Any], reserve_off: bool) -> list[str]:
    """Return the likely causes of a stall, one line each, from the kernel's
    counters now (`raw`) and at the last progress (`before`, may be {}):
    memory at min with no reserve (or a reserve at its limit) while the NIC
    drops the frames that would complete the write-back, or a target that
    stopped answering. [] when nothing stands out."""
    def grew(key: str) -> int:
        return raw.get(key, 0) - before.get(key, raw.get(key, 0)) if before else raw.get(key, 0)

    out = []
    free, wmin = raw.get("pages", [0])[0], raw.get("wmark_min", 0)
    at_min = free <= wmin
    if at_min:
        out.append(f"free memory is at the min watermark ({free} <= {wmin} pages): "
                   "ordinary allocations fail")
    if at_min and reserve_off:
        out.append("reserves are off (reserve=off): nobody may allocate below min, "
                   "not even the swap path")
    limits, usage = raw.get("reserve_limit") or [], raw.get("reserve_usage") or []
    for r, name in kstats.RESERVE_NAMES.items():
        if r < len(limits) and limits[r] and usage[r] >= limits[r]:
            out.append(f"reserve {name} is at its limit ({usage[r]} pages): "
                       f"{grew('reserve_denied'):,} reserve pages refused during the stall")
    nobuf = grew("net_refill_fails")
    if nobuf:
        out.append(f"the NIC driver dropped {nobuf:,} received frames for want of an RX buffer "
                   "during the stall: the AoE replies that would complete the write-back "
                   "cannot get in")
    heard = grew("net_rx_frames") + grew("net_refill_fails")
    if raw.get("aoe_inflight") and not heard and grew("aoe_retransmits"):
        out.append(f"the AoE target has not answered: {grew('aoe_retransmits'):,} retransmits "
                   "and no frame received during the stall")
    return out


def diagnose(machine: Any, stalled_ns: int, before: dict[str, Any] | None = None) -> str:
    """Return the multi-line explanation of a stalled run; `before` is the
    raw kstats at the last progress (for what changed during the stall)."""
    k = kstats.collect(machine)
    raw = kstats.read_raw(machine) or {}
    mem = k.get("memory", {})
    wm = mem.get("watermarks", {})
    from emu.guestview.reserveview import reserve_off
    lines = [f"deadlock: no user instruction retired and no swap I/O completed for "
             f"{stalled_ns / 1e6:,.0f} ms of virtual time while work was pending"]
    lines.extend(f"  why: {w}" for w in why(raw, before or {}, reserve_off(machine)))
    lines += [
             f"memory: {mem.get('pages_free', '?')} free pages of {mem.get('pages_total', '?')}; "
             f"watermarks min {wm.get('min', '?')} low {wm.get('low', '?')} "
             f"high {wm.get('high', '?')}"]
    reserve = k.get("reserve")
    if reserve:
        for name, r in reserve.items():
            if isinstance(r, dict):
                lines.append(f"reserve {name}: usage {r.get('usage')} peak {r.get('peak')} "
                             f"limit {r.get('limit')} pages")
    lines.append(f"tasks blocked: {raw.get('tasks_blocked', '?')}")
    try:
        from emu.guestview.kproc import kernel_of
        kern = kernel_of(machine)
        for p in (kern.procs() if kern else []):
            waits = f" on {kern.describe_chan(p.chan)}" if p.chan else ""
            lines.append(f"  pid {p.pid} ({p.name}): {p.state_name}{waits}")
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never crash the report
        lines.append(f"  (process table unreadable: {exc})")
    aoe = k.get("aoe", {})
    lines.append(f"AoE: {raw.get('aoe_inflight', '?')} requests in flight; "
                 f"{aoe.get('requests', 0):,} sent, {aoe.get('retransmits', 0):,} retransmits, "
                 f"{aoe.get('replies', 0):,} replies; rto {aoe.get('rto_ns', 0) / 1e3:,.0f} us, "
                 f"window {aoe.get('window', '?')}")
    drops = (k.get("net") or {}).get("drops") or {}
    if drops:
        lines.append("guest network drops: " + " ".join(f"{a}={b}" for a, b in drops.items()))
    from emu.guestview.netview import info_net
    lines.extend(info_net(machine).splitlines())
    return "\n".join(lines)
