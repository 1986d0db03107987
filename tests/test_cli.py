"""`emu` from the shell: exit statuses, one-line errors, the report, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def emu(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True,
                          text=True, timeout=300, env=e)


def test_version_names_the_active_twins():
    r = emu("--version")
    assert r.returncode == 0 and r.stdout.startswith("emu ")
    assert "compiled twins" in r.stdout or "pure" in r.stdout
    r = emu("--version", env={"EMU_PURE": "1"})
    assert "pure-Python path (EMU_PURE=1)" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["run", "--bogus"], "unrecognized arguments"),
    (["run", "-m", "1X"], "bad memory size"),
    (["run", "-m", "2M"], "out of range"),
    (["run", "--mmu", "nope"], "invalid choice"),
    (["run", "--max-insns", "ten"], "not an integer"),
    (["run", "-d", "bogus"], "unknown -d topic"),
    (["run", "-kernel", "/nonexistent/k.elf"], "cannot open kernel"),
    (["run", "-kernel", "/bin/sh"], "not a RISC-V ELF"),
    (["run", "-bios", "/nonexistent/fw.bin"], "cannot open firmware"),
    ([], "missing command"),
    (["run", "--net", "loss 5% bogus"], "unknown option"),
    (["run", "--net", "loss 500%"], "loss"),
    (["run", "--target", "foo:1"], "bad --target"),
    (["run", "--target", "file:/nonexistent/disk.img"], "/nonexistent/disk.img"),
    (["run", "--noise", "fast"], "noise"),
    (["run", "--pcap", "x.pcap", "--pcap-snaplen", "-1"], "--pcap-snaplen"),
    (["run", "--pcap-snaplen", "lots"], "not an integer"),
])
def test_bad_input_is_one_line_and_status_2(args, needle):
    r = emu(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_report_is_one_table_with_one_number_format(kernel, tmp_path):
    """The report: thousands separators on every count, REPORT_WIDTH columns
    when stderr is not a terminal (COLUMNS when set), no trailing spaces,
    and the capture's size on disk and frames."""
    import re

    from emu.tools.report import REPORT_WIDTH
    pcap, js = tmp_path / "r.pcap", tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    args = [sys.executable, "-m", "emu", "run", "-append", "init=demo", "--pcap", str(pcap),
            "--stats-json", str(js)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "emu: guest shutdown (status 0)" and "instructions" in lines[1]
    assert not [ln for ln in lines if ln != ln.rstrip()]                 # no padding
    widths = [len(ln) for ln in lines]
    assert 80 < max(widths) <= REPORT_WIDTH                              # not cut at 80
    assert not [ln for ln in lines if re.search(r"(?<![\d,.x])\d{4,}", ln)]  # 1,234 always
    st = json.loads(js.read_text())
    cap = st["network"]["pcap"]
    assert cap["file_bytes"] == os.path.getsize(pcap) and cap["snaplen"] == 64
    row = next(ln for ln in lines if ln.startswith("capture"))
    assert f"{cap['frames']:,} frame" in row and f"{cap['file_bytes']:,} bytes" in row
    narrow = subprocess.run(args, capture_output=True, text=True, timeout=120,
                            env=env | {"COLUMNS": "60"})
    assert max(len(ln) for ln in narrow.stderr.splitlines()) <= 60


def test_wrong_elves_are_rejected(asm, tmp_path):
    plain = "ENTRY(_start) SECTIONS { . = 0x80200000; .text : { *(.text) } }"
    x86 = asm(".globl _start\n_start: jmp _start\n", target="x86_64", ld=plain)
    rv32 = asm(".globl _start\n_start: j _start\n", target="riscv32", ld=plain)
    low = asm(".globl _start\n_start: j _start\n",
              ld="ENTRY(_start) SECTIONS { . = 0x10000; .text : { *(.text) } }")
    for path, needle in ((x86, "not a RISC-V ELF"), (rv32, "not a 64-bit ELF"),
                         (low, "outside RAM")):
        r = emu("run", "-kernel", path)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.splitlines()) == 1, \
            r.stderr
    trunc = tmp_path / "trunc.elf"
    trunc.write_bytes(open(x86, "rb").read()[:80])
    r = emu("run", "-kernel", str(trunc))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_run_prints_console_report_and_json(kernel, tmp_path):
    out = tmp_path / "s.json"
    log = tmp_path / "int.log"
    r = emu("run", "-append", "init=demo", "--stats-json", str(out), "-d", "int,mmu",
            "-D", str(log))
    assert r.returncode == 0, r.stderr
    assert "instructions" in r.stderr and "page faults" in r.stderr
    st = json.loads(out.read_text())
    for key in ("instructions", "virtual_ns", "mips", "tlb_fills", "code_pages", "page_faults",
                "traps",
                "interrupts", "exit_status", "mmu", "seed"):
        assert key in st
    assert st["exit_status"] == 0 and st["page_faults_total"] >= 1
    assert st["traps"].get("load_page_fault", 0) + st["traps"].get("store_page_fault", 0) >= 1
    text = log.read_text()
    assert "riscv_cpu_do_interrupt: hart:0, async:1, cause:0000000000000005" in text
    assert "desc=s_timer" in text and "fault cause=1" in text
    assert r.stdout.count("\n") >= 5          # the guest console reached stdout


def test_max_insns_exit_124_and_panic_exit_1(kernel):
    assert emu("run", "-q", "--max-insns", "1000").returncode == 124
    r = emu("run", "-q", "-append", "panic")
    assert r.returncode == 1 and "panic:" in r.stdout


def test_stdin_feeds_the_uart(asm):
    """`--stdin on`: host input reaches the guest's UART receive register."""
    src = r"""
.section .text.entry
.globl _start
_start:
    li t6, 0x10000000
1:  lb a3, 5(t6)
    andi a3, a3, 1
    beqz a3, 1b
    lbu a1, 0(t6)
    li t0, 0xF0000000
    or a1, a1, t0
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    ecall
"""
    elf = asm(src)
    r = subprocess.run([sys.executable, "-m", "emu", "run", "-q", "--stdin", "on",
                        "-kernel", elf], input=b"*", capture_output=True, timeout=60)
    assert r.returncode == ord("*"), r.stderr


def test_missing_twin_warns_once_and_runs_pure(kernel):
    code = ("import sys; sys.modules['emu._fast.sv39'] = None; "
            "sys.modules['emu._fast.budget'] = None; "
            "from emu.cli.main import main; "
            "raise SystemExit(main(['run', '-q', '-append', 'init=demo']))")
    env = {k: v for k, v in os.environ.items() if k != "EMU_PURE"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "pure-Python path" in warnings[0]
    assert "sv39" in warnings[0] and "budget" in warnings[0], warnings     # every one, once
    assert "frames" not in warnings[0], warnings


def test_demo_is_the_swap_demo(kernel, tmp_path):
    """`emu demo` (what `make run` runs): 64 MiB of memhog on 16 MiB of RAM
    over a lossy link, swapping to the embedded AoE target, 0 mismatches."""
    out = tmp_path / "demo.json"
    r = emu("demo", "--stats-json", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "mismatches=0" in r.stdout and "init: swap demo done" in r.stdout
    st = json.loads(out.read_text())
    assert st["kernel"]["aoe"]["retransmits"] > 0
    assert st["ram_bytes"] == 16 << 20
    assert st["swap"]["swap_outs"] * 4096 >= 48 << 20     # the working set went out
    assert st["swap"]["swap_ins"] > 0 and st["link"]["dropped_loss"] > 0
    assert st["network"]["targets"]["e0.0"]["nsectors"] * 512 == 128 << 20


def test_run_alone_is_plain_and_says_so(kernel, tmp_path):
    """`emu run` with no flags boots the kernel with an empty command line
    on a perfect link: the process and paging demo, nothing implicit."""
    out = tmp_path / "run.json"
    r = emu("run", "--stats-json", str(out))
    assert r.returncode == 0, r.stderr
    assert "cmdline: ''" in r.stdout and "init: demo done" in r.stdout
    assert "swap demo" not in r.stdout
    st = json.loads(out.read_text())
    assert st["link"] == {} or not any(st["link"].values())
    assert st["network"]["targets"]["e0.0"]["nsectors"] * 512 == 64 << 20
    assert st["clock"]["mode"] == "virtual" and st["deterministic"]


def _subcommands() -> dict:
    import argparse

    from emu.cli.main import build_parser
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_of_every_subcommand_and_its_stated_defaults(name):
    """`emu X --help` exits 0, and every default its help states is the real
    one: stated through %(default)s, or - for an option whose default is
    computed (None) - in words that name no value."""
    r = emu(name, "--help")
    assert r.returncode == 0 and "usage: emu " + name in r.stdout, r.stderr
    parser = _subcommands()[name]
    for action in parser._actions:
        text = action.help or ""
        if "default" not in text.lower():
            continue
        if action.default is not None and action.default is not False:
            assert "%(default)" in text, f"{name} {action.option_strings}: states its " \
                f"default by hand: {text!r}"
        else:
            assert "%(default)" not in text, (name, action.option_strings)


def test_run_defaults_in_help_are_what_runs():
    from emu.cli.main import build_parser
    from emu.tools import flags
    args = build_parser().parse_args(["run"])
    cfg = flags.config_from_args(args)
    assert (cfg.ram_size, cfg.append, cfg.seed, cfg.clock) == (16 << 20, "", 0, "auto")
    assert cfg.net.net == "" and cfg.net.targets == ("mem:64M",)
    assert cfg.net.target_service == "0us" and cfg.net.noise is None
    demo = flags.config_from_args(build_parser().parse_args(["demo"]))
    assert demo.append == "init=swapdemo" and demo.net.targets == ("mem:128M",)
    assert demo.net.net == "loss 1% delay 50us 20us" and demo.net.target_service == "20us"
    one = flags.config_from_args(build_parser().parse_args(["demo", "--target", "mem:32M"]))
    assert one.net.targets == ("mem:32M",)        # replaces the default, not beside it


def test_log_topics_help_and_every_topic_logs(asm, tmp_path):
    """`-d help` lists the topics and exits 0; each listed topic logs what
    QEMU's does (tested on a guest that does each thing once)."""
    from emu.machine.tracelog import TOPICS
    r = emu("run", "-d", "help")
    assert r.returncode == 0 and r.stdout.startswith("Log items (comma separated):")
    for topic in TOPICS:
        assert topic in r.stdout
    src = r"""
.globl _start
_start:
    li t0, 0x10000008       # past the UART's 8 registers: QEMU faults, emu logs
    lb t1, 0(t0)
    li a7, 0x123456         # an SBI extension nobody has
    ecall
    li t0, 0x4000           # no RAM and no device there: an access fault
    la t1, handler
    csrw stvec, t1
    ld t2, 0(t0)
handler:
    li a7, 0x53525354       # SRST: shutdown, status 0
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
"""
    elf = asm(src)
    log = tmp_path / "d.log"
    r = emu("run", "-q", "-kernel", elf, "-D", str(log), "-d", ",".join(TOPICS))
    assert r.returncode == 0, r.stderr
    text = log.read_text()
    want = {"in_asm": "IN: _start", "exec": "Trace 0: ", "cpu": " pc       ",
            "int": "desc=fault_load", "mmu": "mmu: ", "sbi": "eid=0x123456",
            "unimp": "eid=0x123456 fid=0 is not implemented",
            "guest_errors": "uart: read at +0x8 (size 1) outside the 8 registers"}
    assert set(want) == set(TOPICS)
    for topic, needle in want.items():
        assert needle in text, f"-d {topic}: no {needle!r} in the log"
    assert "no RAM and no device there" in text


def test_debug_rejects_what_only_a_run_has_and_writes_stats(kernel, tmp_path):
    for flag in (["--plot", "x.png"], ["--progress", "on"], ["--deadlock", "1s"], ["-q"]):
        r = emu("debug", *flag)
        assert r.returncode == 2 and "unrecognized arguments" in r.stderr, flag
        assert len(r.stderr.strip().splitlines()) == 1
    out = tmp_path / "d.json"
    r = subprocess.run([sys.executable, "-m", "emu", "debug", "--stats-json", str(out)],
                       input="continue\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    st = json.loads(out.read_text())
    assert st["exit_status"] == 0 and st["instructions"] > 1_000_000


def test_closed_pipe_ends_the_run_quietly(kernel, tmp_path):
    """`emu run | head`: no error line, status 141 as SIGPIPE gives, and
    --stats-json still written."""
    out = tmp_path / "s.json"
    p = subprocess.Popen([sys.executable, "-m", "emu", "run", "-append", "test",
                          "--stats-json", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141
    assert err == "", err
    st = json.loads(out.read_text())
    assert st["exit_status"] == 141 and st["stop_reason"] == "console pipe closed"


@pytest.mark.parametrize("sig, status", [(2, 130), (15, 143)])
def test_signal_ends_the_run_with_everything_written(kernel, tmp_path, sig, status):
    """Ctrl-C / SIGTERM mid-run: exit 130 / 143, the report printed, the
    pcap complete (tshark reads it), --stats-json written, the disk image
    flushed."""
    import shutil
    import signal
    import time
    pcap, js, disk = tmp_path / "r.pcap", tmp_path / "r.json", tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    p = subprocess.Popen([sys.executable, "-m", "emu", "demo", "--pcap", str(pcap),
                          "--stats-json", str(js), "--target", f"file:{disk}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    deadline = time.monotonic() + 300
    while os.stat(disk).st_blocks == 0 and time.monotonic() < deadline:
        time.sleep(0.2)                     # until swapping has written to the image
    time.sleep(0.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == status, err
    name = signal.Signals(sig).name
    assert f"emu: {'interrupted' if sig == 2 else 'terminated'} ({name})" in err
    assert "instructions" in err                       # the report
    st = json.loads(js.read_text())
    assert st["exit_status"] == status and st["network"]["pcap"]["frames"] > 0
    if shutil.which("tshark"):
        r = subprocess.run(["tshark", "-r", str(pcap)], capture_output=True, text=True)
        assert r.returncode == 0 and "cut short" not in r.stderr, r.stderr
        assert len(r.stdout.splitlines()) == st["network"]["pcap"]["frames"]
    elif os.environ.get("CI") == "true":
        pytest.fail("tshark missing in CI")
    written = st["kernel"]["swap"]["bytes_out"]
    assert written > 0
    with open(disk, "rb") as f:
        data = f.read()
    assert data.count(b"\0") < len(data)      # the swapped-out pages reached the file
