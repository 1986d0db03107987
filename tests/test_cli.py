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
    (["run", "-kernel", "/etc/hostname"], "not an ELF"),
    ([], "missing command"),
    (["run", "--net", "loss 5% bogus"], "unknown option"),
    (["run", "--net", "loss 500%"], "loss"),
    (["run", "--target", "foo:1"], "bad --target"),
    (["run", "--target", "file:/nonexistent/disk.img"], "/nonexistent/disk.img"),
    (["run", "--noise", "fast"], "noise"),
])
def test_bad_input_is_one_line_and_status_2(args, needle):
    r = emu(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


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
    for key in ("instructions", "virtual_ns", "mips", "tlb_fills", "page_faults", "traps",
                "interrupts", "exit_status", "mmu", "seed"):
        assert key in st
    assert st["exit_status"] == 0 and st["page_faults_total"] >= 1
    assert st["traps"].get("load_page_fault", 0) + st["traps"].get("store_page_fault", 0) >= 1
    text = log.read_text()
    assert "interrupt cause=5" in text and "fault cause=1" in text
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


def test_run_with_no_arguments_is_the_swap_demo(kernel, tmp_path):
    """`emu run` alone: 64 MiB of memhog on 16 MiB of RAM over a lossy link,
    swapping to the embedded AoE target, 0 mismatches."""
    out = tmp_path / "demo.json"
    r = emu("run", "--stats-json", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "mismatches=0" in r.stdout and "init: swap demo done" in r.stdout
    st = json.loads(out.read_text())
    assert st["kernel"]["aoe"]["retransmits"] > 0
    assert st["ram_bytes"] == 16 << 20
    assert st["swap"]["swap_outs"] * 4096 >= 48 << 20     # the working set went out
    assert st["swap"]["swap_ins"] > 0 and st["link"]["dropped_loss"] > 0
