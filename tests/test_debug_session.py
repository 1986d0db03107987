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
    # info registers, gdb's general group: ra..t6 and pc, no CSRs
    regs = blocks(r.stdout)["info registers"].strip().splitlines()
    assert [ln.split()[0] for ln in regs][:2] == ["ra", "sp"] and regs[-1].startswith("pc ")
    assert re.fullmatch(r"pc {13}0x80200000\t0x80200000 <\w+>", regs[-1]), regs[-1]
    assert not any(ln.startswith(("zero", "satp")) for ln in regs)


def test_info_net_shows_rings_links_and_targets(tmp_path):
    """After the machine-level NIC round trip, `info net` shows the NIC's
    rings and counters, the guest port's links and the target's figures."""
    from tests.conftest import compile_c
    from tests.test_machine_net import SOURCE
    elf = compile_c(tmp_path, SOURCE, "netguest")
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


# -- the gdb habits (issue 14, part 6) ---------------------------------------------------
def plain(text: str) -> str:
    """A REPL block as gdb would print it: our `error: ` prefix removed."""
    return re.sub(r"^error: ", "", text.strip("\n"), flags=re.M)


def symbol_addr(kernel: str, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    with open(kernel, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return next(s["st_value"] for s in tab.iter_symbols() if s.name == name)


def rodata(kernel: str) -> int:
    from elftools.elf.elffile import ELFFile
    with open(kernel, "rb") as f:
        return ELFFile(f).get_section_by_name(".rodata")["sh_addr"]


# Typed into gdb-multiarch (against `emu run -S`) and into `emu debug` at the
# same stop; the outputs must be identical. `x/i` is left out: gdb's
# disassembler (binutils) and ours (capstone) spell instructions apart.
GDB_SAME = [
    "x/4xg $sp", "x", "x/3xw", "x/2dg $sp", "x/3ub $sp", "x/2ow $sp", "x/2tw $sp", "x/2ag $sp",
    "x/4cb {ro}", "x/2s {ro}", "x/2fg $sp", "x/fw $sp", "x/2xh $pc", "x/3a $sp", "x/9xb $sp",
    "x/5dh $sp", "p $_", "p $__", "x/-2xg $sp",
    "p $a0", "p/x $a0", "p $sp", "p $pc", "p $ra", "p/x $pc", "p $a0 + 1", "p $sp + 16",
    "p $pc + 4", "p/d $sp", "p/t 10", "p/c 65", "p/o 8", "p/x -1", "p/z 5", "p/a $ra",
    "p 0xffffffff", "p 2147483648", "p $satp", "p/x $satp", "p $priv", "p 7 / 2", "p -7 / 2",
    "p -7 % 2", "p $", "p $$2", "p", "p/u -1", "p vmfault", "p &vmfault", "p vmfault + 4",
    "p &ticks", "p ticks", "p &proc", "p/c 300", "p/t -1", "p (char)65", "p/x (char)-1",
    "p 0x7fffffff + 1", "p -1 + 0xffffffff", "p $sp - $sp", "p/x $sp + 4", "p 1.5", "p 1.1",
    "p/f 3", "p 'A'", "p (long)-1", "p (unsigned char)300", "p *(long *)$sp", "p {long}$sp",
    "p $a0 == 0", "p !0", "p ~0", "p 1 << 4", "p sizeof(long)", "p $nonexistent", "p -$a0",
    "p $x10", "p $fp", "p $zero", "p/x 1.5", "p/f $a0", "p *$sp", "p *0x80200000", "p *$a0",
    "p/x *$pc", "p $a0->pid", "p ((struct proc *)$a0)->pid", "p ((struct proc *)$a0)->nosuch",
    "p ((struct proc *)$a0)->name", "p proc[1].state", "p &proc[1]", "p &proc[1].name",
    "p proc[0].context", "p/x proc[0].context", "p proc[0].vma[0]", "p *(struct proc *)$a0",
    "p proc", "p sizeof(struct proc)", "p (enum procstate)1", "p (enum procstate)9",
    "p proc[0].kfn", "p ((long *)$sp)[1]", "p $sp[1]",
    "whatis $pc", "whatis vmfault", "whatis &proc", "whatis 1 + 1L", "whatis ticks",
    "whatis proc[0].vma", "whatis (char)1", "output 5", "output/x 255",
    "p 10/0", "p $sp * 2", "p/i 1", "p/2x 1", "p/xb 1", "p nosuch",
    "info registers pc sp ra a0 satp priv fp x10 s0 zero sstatus", "info registers",
    "info all-registers", "info registers foo",
]


def test_repl_prints_what_gdb_prints(kernel):
    """The gdb habits, checked against gdb itself: each command above gives,
    at the same stop, exactly the text gdb-multiarch gives (our REPL only
    prefixes errors with `error: `)."""
    from tests.test_gdb_stub import GDB, Stub, need_gdb
    need_gdb()
    bp = symbol_addr(kernel, "vmfault")
    cmds = [c.replace("{ro}", f"0x{rodata(kernel):x}") for c in GDB_SAME]
    args = [GDB, "-q", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"]
    stub = Stub(kernel)
    try:
        args += ["-ex", f"target remote :{stub.port}", "-ex", f"break *0x{bp:x}",
                 "-ex", "continue"]
        for c in cmds:
            args += ["-ex", f"echo <<<{c}>>>\\n", "-ex", c]
            if c.startswith("output"):          # output ends no line
                args += ["-ex", "echo \\n"]
        g = subprocess.run(args + [kernel], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120).stdout
    finally:
        stub.kill()
    parts = re.split(r"^<<<(.*)>>>$", g, flags=re.M)
    theirs = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    theirs[cmds[-1]] = theirs[cmds[-1]].split("\n[Inferior 1")[0]
    r = debug(kernel, f"break *0x{bp:x}\ncontinue\n" + "\n".join(cmds) + "\nquit\n")
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stderr
    ours = {c: plain(t) for c, t in blocks(r.stdout).items()}
    assert set(cmds) <= set(theirs) and set(cmds) <= set(ours)
    diff = [f"{c}:\n  gdb:  {theirs.get(c)!r}\n  ours: {ours.get(c)!r}" for c in cmds
            if theirs.get(c) != ours.get(c)]
    assert not diff, "\n".join(diff)


def test_x_carries_format_size_and_address_like_gdb(kernel):
    """x/NFU: the last format and unit stay, `x` continues after the last
    unit (and reuses the count without a format), an empty line repeats
    `x` without its address, $_ and $__ follow, counts can be negative."""
    script = ["break vmfault", "continue", "x/2xg $sp", "", "x/3dw", "x", "p $_", "p $__",
              "x/-2xg $sp", "x/2i $pc", "x/2c $sp", "x/s $sp", "x/0x $sp", "x/8q $sp",
              "x/2sh $sp", "x/4xg 0x10", "quit"]
    r = debug(kernel, "\n".join(script) + "\n")
    out = r.stdout
    b = blocks(out)
    sp = int(re.search(r" sp   0x([0-9a-f]+)", out).group(1), 16)
    first = out.split("(emu) x/2xg $sp\n", 1)[1].split("(emu)")[0]
    assert re.fullmatch(rf"0x{sp:x}:\t0x[0-9a-f]{{16}}\t0x[0-9a-f]{{16}}\n", first), first
    assert b[""].startswith(f"\n0x{sp + 16:x}:\t0x")          # Enter: the next two
    assert re.match(rf"\n0x{sp + 32:x}:\t-?\d+\t-?\d+\t-?\d+\n$", b["x/3dw"])
    assert re.match(rf"\n0x{sp + 44:x}:\t-?\d+\t-?\d+\t-?\d+\n$", b["x"])  # count kept
    assert b["p $_"].strip() == f"$1 = (int32_t *) 0x{sp + 52:x}"
    assert re.fullmatch(r"\$2 = -?\d+", b["p $__"].strip())
    assert b["x/-2xg $sp"].strip().startswith(f"0x{sp - 16:x}:\t")
    insns = b["x/2i $pc"].strip().splitlines()
    assert re.match(r"=> 0x[0-9a-f]+ <vmfault>:\t\w+\t", insns[0])
    assert re.match(r"   0x[0-9a-f]+ <vmfault\+4>:\t", insns[1])
    assert re.fullmatch(rf"0x{sp:x}:\t-?\d+ '.+'\t-?\d+ '.+'", b["x/2c $sp"].strip())
    assert re.fullmatch(rf'0x{sp:x}:\t".*"', b["x/s $sp"].strip())
    assert plain(b["x/0x $sp"]).startswith("count must be")
    assert plain(b["x/8q $sp"]) == 'Undefined output format "q".'
    assert "wide strings" in plain(b["x/2sh $sp"])
    assert plain(b["x/4xg 0x10"]).startswith("Cannot access memory at address 0x10")


def test_display_shows_at_every_stop_until_undisplayed(kernel):
    script = ["break vmfault", "continue", "display $a0", "display/i $pc", "display/x $sp",
              "info display", "stepi", "undisplay 2", "delete display 9", "stepi",
              "undisplay", "stepi", "i display", "display", "quit"]
    r = debug(kernel, "\n".join(script) + "\n")
    b = blocks(r.stdout)
    assert re.fullmatch(r"1: \$a0 = \d+", b["display $a0"].strip())
    assert re.fullmatch(r"2: x/i \$pc\n=> 0x[0-9a-f]+ <vmfault>:\t.+", b["display/i $pc"].strip())
    assert re.fullmatch(r"3: /x \$sp = 0x[0-9a-f]+", b["display/x $sp"].strip())
    assert b["info display"].strip() == ("Auto-display expressions now in effect:\n"
                                         "Num Enb Expression\n1:   y  $a0\n2:   y  /1bi $pc\n"
                                         "3:   y  /x $sp")
    stops = r.stdout.split("(emu) stepi\n")[1:]
    # after the context view, every display in order, the instruction one at the new pc
    first = stops[0].split("(emu)")[0]
    tail = first[first.index("\n1: $a0 = "):]
    assert re.search(r"\n1: \$a0 = \d+\n2: x/i \$pc\n=> 0x[0-9a-f]+ <vmfault\+4>:\t.+\n"
                     r"3: /x \$sp = 0x[0-9a-f]+\n$", tail), tail
    assert b["delete display 9"].strip() == "No display number 9."
    second = stops[1].split("(emu)")[0]
    assert "\n1: $a0 = " in second and "2: x/i" not in second and "\n3: /x $sp" in second
    third = stops[2].split("(emu)")[0]
    assert "1: $a0" not in third and "3: /x" not in third
    assert b["display"].strip() == ""
    assert b["i display"].strip() == "There are no auto-display expressions now."


def test_info_registers_and_breakpoints_in_gdbs_layout(kernel):
    script = ["break vmfault", "watch &ticks", "rwatch 0x80210000 4", "break fault user w",
              "continue", "info registers pc sp a0 x10 priv", "info registers system",
              "info registers pc nosuch", "info breakpoints", "info watchpoints", "delete",
              "i b", "i wat", "quit"]
    r = debug(kernel, "\n".join(script) + "\n")
    b = blocks(r.stdout)
    regs = b["info registers pc sp a0 x10 priv"].strip().splitlines()
    assert re.fullmatch(r"pc {13}0x[0-9a-f]+\t0x[0-9a-f]+ <vmfault>", regs[0])
    assert re.fullmatch(r"sp {13}(0x[0-9a-f]+)\t\1", regs[1])
    a0 = int(regs[2].split()[1], 16)
    assert regs[2] == f"a0             0x{a0:x}\t{a0}"
    assert regs[3] == f"x10            {f'0x{a0:x}':<20}{a0}"      # an alias: gdb's plain layout
    assert regs[4] == "priv           0x1\tprv:1 [Supervisor]"
    system = [ln.split()[0] for ln in b["info registers system"].strip().splitlines()]
    assert system == ["sstatus", "sie", "stvec", "scounteren", "sscratch", "sepc", "scause",
                      "stval", "sip", "satp", "priv"]
    partial = b["info registers pc nosuch"].strip().splitlines()
    assert partial[0].startswith("pc ") and partial[1] == "error: Invalid register `nosuch'"
    table = b["info breakpoints"].strip().splitlines()
    assert table[0] == "Num     Type            Disp Enb Address            What"
    assert re.fullmatch(r"1       breakpoint      keep y   0x[0-9a-f]{16} in vmfault at vm\.c:\d+",
                        table[1]), table[1]
    assert table[2] == "\tbreakpoint already hit 1 time"
    assert re.fullmatch(r"2       hw watchpoint   keep y {22}0x[0-9a-f]+ len 8", table[3])
    assert table[4] == "3       read watchpoint keep y                      0x80210000 len 4"
    assert table[5] == "4       catchpoint      keep y                      fault w user"
    watches = b["info watchpoints"].strip().splitlines()
    assert [ln[:2] for ln in watches] == ["Nu", "2 ", "3 "]
    assert b["i b"].strip() == "No breakpoints or watchpoints."
    assert b["i wat"].strip() == "No watchpoints."


def test_help_explains_commands_like_gdb(kernel):
    r = debug(kernel, "help x\nhelp c\nhelp info registers\nhelp info\nhelp foo\nhelp p\nquit\n")
    b = blocks(r.stdout)
    assert b["help x"].strip().splitlines()[:3] == [
        "Examine memory: x/FMT ADDRESS.", "Usage: x[/FMT] [ADDRESS]",
        "ADDRESS is an expression for the memory address to examine."]
    assert b["help c"].strip().splitlines()[:3] == [
        "continue, c, cont", "Run until a breakpoint, fault or exit.", "Usage: continue"]
    assert b["help info registers"].strip().splitlines()[0] == \
        "info registers, info r, info reg, info regs"
    assert "List of info subcommands:" in b["help info"]
    assert "info tlb -- what QEMU's soft TLB holds now" in b["help info"]
    assert plain(b["help foo"]) == 'Undefined command: "foo".  Try "help".'
    assert b["help p"].strip().startswith("print, p, inspect\nPrint the value of an expression")


def test_tab_completion_candidates(kernel):
    from emu.debug.repl import ConsoleWriter, Repl
    ctl = Controller(MachineConfig(kernel=kernel), console=io.BytesIO())
    repl = Repl(ctl, ConsoleWriter(io.StringIO()), stdin=io.StringIO(), stdout=io.StringIO())
    c = repl.complete_line
    assert c("inf") == ["info"]
    assert c("info re") == ["registers", "reserve"]
    assert c("i tl") == ["tlb"] and c("info ") [:3] == ["all-registers", "breakpoints", "display"]
    assert c("help dis") == ["disas", "display"] and c("help info wa") == ["watchpoints"]
    assert c("p vmfa") == ["vmfault"] and c("b *vmfa") == ["*vmfault"]
    assert {"$sp", "$satp", "$sstatus"} <= set(c("x/4xg $s")) and "$pc" not in c("p $s")
    assert c("continue ") == [] and c("zzz") == []


def test_tab_completion_and_history_on_a_terminal(kernel, tmp_path):
    """On a terminal, readline completes `inf<TAB> tl<TAB>` to `info tlb ` and
    the history file keeps what was typed."""
    import contextlib
    import os
    import pty
    import select
    import time
    pytest.importorskip("readline", reason="this Python has no readline: no completion")
    hist = tmp_path / "history"
    pid, fd = pty.fork()
    if pid == 0:   # the child: emu debug on the pty
        os.environ["EMU_DEBUG_HISTORY"] = str(hist)
        os.environ["TERM"] = "dumb"
        os.execv(sys.executable, [sys.executable, "-m", "emu", "debug", "-kernel", kernel])
    seen = b""

    def until(needle: bytes, timeout: float = 60) -> None:
        nonlocal seen
        end = time.time() + timeout
        while needle not in seen:
            r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
            assert r, f"no {needle!r} in {seen[-2000:]!r}"
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    status = None
    try:
        until(b"(emu) ")
        os.write(fd, b"inf\ttl\t\n")
        until(b"soft TLB (QEMU's")
        os.write(fd, b"quit\n")
        end = time.time() + 60
        while time.time() < end:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
            with contextlib.suppress(OSError):
                if select.select([fd], [], [], 0.1)[0]:
                    seen += os.read(fd, 65536)
            time.sleep(0.02)
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None and os.waitstatus_to_exitcode(status) == 0, seen[-2000:]
    assert b"info tlb" in seen
    assert [ln.rstrip() for ln in hist.read_text().splitlines()[-2:]] == ["info tlb", "quit"]


def test_info_tlb_shows_the_cached_pages_and_a_stale_one(kernel, demand_zero):
    """At a held user-mode fault: what U-mode has cached agrees with the page
    table (the faulting page is not cached: refused fills never are). A PTE
    rewritten behind the TLB's back (no sfence.vma) shows up as STALE.
    Probing and the whole debug session leave the guest's run unchanged."""
    from emu.debug.tlbinfo import info_tlb
    from emu.mmu import walk_trace
    n, f = demand_zero
    out = io.BytesIO()
    ctl = Controller(MachineConfig(kernel=kernel), console=out)
    at_reset = info_tlb(ctl.machine)
    assert "satp 0x0 (bare (no translation))" in at_reset
    assert "S-mode (current): nothing cached" in at_reset
    st = ctl.run_to_fault(n)
    assert st.kind == "fault"
    text = info_tlb(ctl.machine)
    u = text.split("U-mode (current): ", 1)[1].split("\nS-mode")[0].splitlines()
    rows = [ln.split() for ln in u[2:]]
    assert rows and all(r[3] == "ok" for r in rows), text
    vas = {int(r[0], 16) for r in rows}
    assert f.va & ~0xFFF not in vas and (f.epc & ~0xFFF) in vas   # the code page is cached
    assert "S-mode: " in text and "probed " in text
    # rewrite the PTE of the cached code page to point elsewhere, without sfence.vma
    m = ctl.machine
    code = f.epc & ~0xFFF
    tr = walk_trace(m.mem.buf, m.mem.base, m.cpu.csr("satp"), code, "fetch", 0)
    pte_addr, pte = tr.steps[-1].pte_addr, tr.steps[-1].raw
    m.mem.write_u64(pte_addr, pte + (1 << 10))                    # next physical page
    stale = info_tlb(m)
    assert re.search(rf"0x{code:016x}  0x[0-9a-f]+ +r-x +STALE: now maps 0x{tr.paddr + 4096:x}",
                     stale), stale
    m.mem.write_u64(pte_addr, pte)
    assert ctl.cont().kind == "exited"
    plain_run = subprocess.run([sys.executable, "-m", "emu", "run", "-q", "-kernel", kernel],
                               capture_output=True, timeout=120)
    assert out.getvalue() == plain_run.stdout
