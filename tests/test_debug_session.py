"""`emu debug` sessions: scripted command loops (commands on stdin) that stop
at a demand-zero fault, show its walk, step into the handler and back to the
retried instruction; deterministic replay; and the rule that debugging never
changes what the guest does."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from emu.debug.context import fault_query
from emu.debug.control import Controller
from emu.debug.faults import FaultFilter
from emu.guestview.kview import kernel_view
from emu.machine.config import MachineConfig


def debug(kernel: str, script: str, *flags: str) -> subprocess.CompletedProcess:
    """Run `emu debug` with `script` on stdin."""
    return subprocess.run([sys.executable, "-m", "emu", "debug", "-kernel", kernel, *flags],
                          input=script, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def demand_zero(kernel):
    """(fault number, FaultInfo) of the run's first demand-zero fault, found
    with the Controller API (stop at every fault, ask the kernel view)."""
    ctl = Controller(MachineConfig(kernel=kernel), console=io.BytesIO())
    ctl.add_fault(FaultFilter())
    for _ in range(200):
        st = ctl.cont()
        assert st.kind == "fault", st.message
        view = kernel_view(ctl.machine, fault_query(st.fault))
        if view.startswith("demand-zero"):
            return st.fault.seq, st.fault
    pytest.fail("the guest takes no demand-zero fault in its first 200 faults")


def blocks(out: str) -> dict[str, str]:
    """Split a transcript into {command: its output} (last one wins)."""
    parts = re.split(r"^\(emu\) (.*)$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_demand_zero_fault_walk_step_into_handler_and_back(kernel, demand_zero):
    n, f = demand_zero
    acc = {"r": "read", "w": "write", "x": "fetch"}[f.access]
    script = (f"run-to fault {n}\nbt\nstepi\nbt\ninfo traps\nfinish\n"
              f"walk 0x{f.va:x} {f.access} u\nstepi\nquit\n")
    r = debug(kernel, script)
    assert r.returncode == 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    b = blocks(r.stdout)
    stop = b[f"run-to fault {n}"]
    # The stop: before delivery, pc on the faulting instruction, the walk and why.
    assert f"run-to: {f.name} (cause {f.cause}) at va 0x{f.va:x}, pc 0x{f.epc:x}" in stop
    assert "(fault held: `stepi` enters the handler)" in stop
    assert f"walk: {acc} 0x{f.va:x} from U-mode" in stop
    assert re.search(r"L2  pte@0x[0-9a-f]+ = 0x[0-9a-f]{16}  V-------  pointer", stop)
    assert re.search(r"stopped: invalid PTE \(V=0\) at level \d", stop)
    assert "kernel's view: demand-zero:" in stop
    assert f"=> 0x{f.epc:x}" in stop
    # Into the handler: pc = stvec, scause/sepc/stval now set, a trap frame in bt.
    into = r.stdout.split("(emu) stepi", 1)[1]   # the first stepi
    assert re.search(r"entered the trap handler at 0x[0-9a-f]+ <\w+> for "
                     + re.escape(f.name) + f" \\(sepc 0x{f.epc:x}\\)", into)
    assert "trap depth 1" in into
    assert re.search(rf"scause\s+0x0*{f.cause:x}\*", into)   # changed: marked with *
    assert f"<{f.name} trap from U-mode>" in b["bt"]
    assert f"#0 {f.name} (cause {f.cause}) from U-mode, sepc 0x{f.epc:x}" in b["info traps"]
    # Back: the handler's sret returns to the same instruction, now mapped.
    back = b["finish"]
    assert f"returned from the {f.name} trap to 0x{f.epc:x}" in back
    assert "the faulting instruction runs again" in back
    assert "trap depth 0" in back
    assert re.search(r"stopped: leaf at level 0 \(4 KiB page\) -> physical 0x", back)
    assert "kernel's view: present: mapped to physical" in back
    assert "stopped: leaf at level 0" in b[f"walk 0x{f.va:x} {f.access} u"]
    # And the retried instruction now executes.
    last = r.stdout.rsplit("(emu) stepi", 1)[1]
    assert f"pc 0x{f.epc + 4:x}" in last


def test_run_to_fault_twice_gives_the_same_stop(kernel, demand_zero):
    n, _ = demand_zero
    r = debug(kernel, f"run-to fault {n}\nrun-to fault {n}\ninfo stop\n")
    assert r.returncode == 0, r.stderr
    parts = r.stdout.split(f"(emu) run-to fault {n}\n")
    assert len(parts) == 3
    first, second = (p.split("── stop", 1)[1].split("(emu)", 1)[0] for p in parts[1:])
    assert first == second and "demand-zero" in first
    # The guest's console replays identically too.
    assert parts[1].split("── stop")[0] == parts[2].split("── stop")[0]


def test_run_to_insn_is_exact_and_repeatable(kernel):
    ctl = Controller(MachineConfig(kernel=kernel), console=io.BytesIO())
    st1 = ctl.run_to_insn(123_457)
    regs1 = (ctl.machine.icount, ctl.machine.cpu.gprs(), ctl.machine.cpu.pc)
    st2 = ctl.run_to_insn(123_457)
    assert ctl.machine.icount == 123_457 and st1.message == st2.message
    assert regs1 == (ctl.machine.icount, ctl.machine.cpu.gprs(), ctl.machine.cpu.pc)


def test_debugging_does_not_change_the_guest(kernel):
    """Breakpoints, steps through traps and srets, watchpoints and fault
    breakpoints, then continue: the guest still ends exactly as undisturbed."""
    out = io.BytesIO()
    ctl = Controller(MachineConfig(kernel=kernel), console=out)
    fn = "vmfault" if "vmfault" in ctl.symbols.by_name else "trap"
    bp = ctl.add_code(ctl.symbols.by_name[fn])
    st = ctl.cont()
    assert st.kind == "breakpoint" and st.pc == ctl.symbols.by_name[fn]
    assert ctl.stepi(3).kind == "step"
    assert ctl.step_line(over=True).kind in ("step", "finish")
    assert ctl.finish().kind == "finish"
    ctl.delete(bp.id)
    st = ctl.finish(trap=True)                      # through the sret, back to user
    assert st.kind == "finish" and ctl.machine.cpu.priv == 0
    fb = ctl.add_fault(FaultFilter(priv=0, access="w"))
    st = ctl.cont()
    assert st.kind == "fault" and st.fault.access == "w" and st.pc == st.fault.epc
    ctl.stepi(40)                                    # into the handler and on
    w = ctl.add_watch("watch", st.fault.va & ~7, 8)
    st2 = ctl.cont()
    assert st2.kind in ("watchpoint", "fault"), st2.message
    ctl.delete(None)
    assert not ctl.bps and fb.hits >= 1 and w.id
    end = ctl.cont()
    assert end.kind == "exited" and end.exit_status == 0, end.message
    plain = subprocess.run([sys.executable, "-m", "emu", "run", "-q", "-kernel", kernel],
                           capture_output=True, timeout=120)
    assert out.getvalue() == plain.stdout


def test_fault_breakpoint_filters_nth_and_pid(kernel):
    ctl = Controller(MachineConfig(kernel=kernel), console=io.BytesIO())
    ctl.add_fault(FaultFilter(priv=0, nth=3))
    st = ctl.cont()
    assert st.kind == "fault" and st.fault.seq >= 3
    pid = st.fault.pid
    assert pid is not None, "the kernel's process table should name the faulting process"
    ctl.delete(None)
    ctl.add_fault(FaultFilter(pid=pid + 1))
    st = ctl.cont()
    assert st.kind == "fault" and st.fault.pid == pid + 1


def test_bad_commands_are_one_line_errors(kernel):
    script = "\n".join(["frobnicate", "x/8zz 0x0", "x/4xg 0x10", "break nosuch", "walk",
                        "break fault bogus", "stepi 0", "delete 99", "info nothing",
                        "finish trap", "run-to fault 0", "xp/2xg 0x1000", "r",
                        "info registers", "quit"]) + "\n"
    r = debug(kernel, script)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 13, r.stdout
    assert "x0/zero" in r.stdout and "satp" in r.stdout


def test_info_net_shows_rings_links_and_targets(tmp_path):
    """After the machine-level NIC round trip, `info net` shows the NIC's
    rings and counters, the guest port's links and the target's figures."""
    from tests.conftest import compile_c
    from tests.test_machine_net import GUEST
    elf = compile_c(tmp_path, GUEST, "netguest")
    r = debug(elf, "continue\ninfo net\nquit\n")
    assert r.returncode == 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    out = blocks(r.stdout)["info net"]
    assert "NIC 52:54:00:12:34:56 mtu 9000" in out
    assert re.search(r"RX ring 0x[0-9a-f]+ size 8 head 1 tail 7", out), out
    assert "tx_frames=1" in out and "rx_frames=1" in out
    assert "port guest:" in out and "up   link: sent=1" in out
    assert "target e0.0: 64 MiB, bufcnt 16, 17 sectors/frame" in out and "config=1" in out


def test_swapped_out_page_and_info_swap(kernel):
    """A fault on a page memhog's pass 2 finds on swap: the kernel view names
    the slot and its swap-map count; `info swap` summarises the map."""
    r = debug(kernel, "break fault cause=13 nth=300\ncontinue\ninfo swap\nquit\n",
              "-append", "init=memhog pages=1500 passes=2 procs=2", "-m", "4M")
    assert r.returncode == 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert re.search(r"kernel's view: swapped out to slot \d+ \(sectors \d+\.\.\d+ of the AoE "
                     r"device\).*swap map: 1 PTE\(s\) hold the slot", r.stdout), r.stdout[-3000:]
    out = blocks(r.stdout)["info swap"]
    assert re.search(r"swap area: 8,192 slots of 4 KiB \(32 MiB\), [\d,]+ in use", out), out
    assert re.search(r"swap map: .*[\d,]+ slots 1 PTE", out), out
    assert "AoE: " in out
